"""The twin's clock controller, pure parts: which sockets hold the clock
(an exchange in flight) and when the fallback starts and stops."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "emulator_images" / "twin"))

from twinrt import clockd  # noqa: E402
from twinrt.netdiag import TCP_ESTABLISHED, TCP_LISTEN, TCP_SYN_SENT, SockInfo, classify  # noqa: E402

NS = 1_000_000_000


def sock(proto: str = "tcp", state: int = TCP_ESTABLISHED, dport: int = 443, rq: int = 0, wq: int = 0,
         sent: int | None = None, recv: int | None = None) -> SockInfo:
    return SockInfo(proto, state, 40000, dport, rq, wq, b"c" * 8, sent, recv)


def test_what_counts_as_an_exchange_in_flight() -> None:
    assert classify(sock(state=TCP_SYN_SENT)) == "connecting"
    assert classify(sock(wq=10)) == "data not yet acknowledged"
    assert classify(sock(rq=5)) == "data not yet read"
    # tcpi_last_data_* are "ms ago": sent 5 ms ago, last received 900 ms ago -> awaiting the answer
    assert classify(sock(sent=1500, recv=9000)) == "awaiting an answer"
    assert classify(sock(sent=900, recv=5)) == "data moved just now"  # e.g. TLS 1.3 tickets after the request
    assert classify(sock(sent=9000, recv=5000)) is None  # answered: a keep-alive connection at rest
    assert classify(sock(sent=3000, recv=3000)) == "awaiting an answer"  # same ms: a TLS client's reply
    assert classify(sock(state=TCP_LISTEN)) is None
    assert classify(sock(state=TCP_LISTEN, rq=1)) == "connection waiting to be accepted"
    assert classify(sock("udp", state=7, dport=53)) == "name lookup"
    assert classify(sock("udp", state=7, dport=9999)) is None
    assert classify(sock("udp", state=7, dport=9999, rq=3)) == "unread datagram"


class _Crawl:
    """Just the state ``Controller._crawling`` reads and writes."""

    def __init__(self, after_s: float = 10.0, floor: float = 1000.0) -> None:
        self.cfg = clockd.Config(start_epoch=0.0, fallback_after_s=after_s, fallback_floor=floor)
        self.window: deque[tuple[int, int]] = deque()
        self.quiet_real = 0

    def tick(self, dt_s: float, jumped_s: float = 0.0, exchange: bool = False, busy: tuple[str, ...] = ("x R",)
             ) -> bool | None:
        ob = clockd.Observation(busy=list(busy), exchange=exchange)
        return clockd.Controller._crawling(self, ob, int(dt_s * NS), int(jumped_s * NS))  # type: ignore[arg-type]


def test_fallback_needs_a_full_window_of_quiet_crawling() -> None:
    c = _Crawl()
    assert all(c.tick(0.01) is None for _ in range(999))  # 9.99 s: not yet
    assert c.tick(0.02) is True  # 10 s of busy time without a jump
    # time in exchanges and adb commands is not counted at all
    c2 = _Crawl()
    assert all(c2.tick(1.0, exchange=True) is None for _ in range(30))
    assert all(c2.tick(1.0, busy=("adb command sh",)) is None for _ in range(30))
    assert c2.quiet_real == 0


def test_idle_jumps_end_the_fallback_but_its_own_advance_does_not() -> None:
    c = _Crawl()
    for _ in range(11):
        c.tick(1.0)
    assert c.tick(0.01) is True
    # a busy tick never reports advance (the fallback's own speed is not progress)
    assert c.tick(0.01, 0.0) is True
    # the device idles again: a 4 h jump in a 10 s window is > 1000 device s per real s
    assert c.tick(0.001, 4 * 3600.0) is False
    # a poller waking every 60 device seconds, 20 ms of real work each: 3000x, not crawling
    p = _Crawl()
    results = [p.tick(0.02, 60.0) for _ in range(600)]
    assert results[-1] is False and True not in results
    # a 1 s poller with 20 ms of work each: 50x, crawling
    q = _Crawl()
    results = [q.tick(0.02, 1.0) for _ in range(600)]
    assert results[-1] is True


def test_config_from_the_services_manifest() -> None:
    cfg = clockd.Config.from_manifest({"start_epoch": 5, "horizon_s": 3600, "fallback_rate": 100, "max_rate": 50})
    assert cfg.horizon_s == 3600.0 and cfg.effective_fallback_rate == 50.0
    cfg = clockd.Config.from_manifest({"start_epoch": 5, "horizon_s": None, "max_rate": None})
    assert cfg.horizon_s is None and cfg.effective_fallback_rate == cfg.fallback_rate


def test_static_and_dynamic_executables_are_told_apart(tmp_path: Path) -> None:
    assert clockd.has_interp(sys.executable) is True  # python3: dynamically linked
    fake = tmp_path / "not-elf"
    fake.write_bytes(b"#!/bin/sh\n" + b"\0" * 64)
    assert clockd.has_interp(str(fake)) is None
    assert clockd.has_interp(str(tmp_path / "missing")) is None
    gcc = shutil.which("gcc")
    if gcc is not None:
        (tmp_path / "s.c").write_text("int main(void) { return 0; }\n")
        subprocess.run([gcc, "-static", "-o", str(tmp_path / "s"), str(tmp_path / "s.c")], check=True)
        assert clockd.has_interp(str(tmp_path / "s")) is False


def test_published_states_have_one_size_whatever_they_hold() -> None:
    """The host reads the state through the engine, which stats and then
    streams the file: states of one size make a read that straddles a
    replace still one whole state (see ``clockd._fixed_size``)."""
    import json

    states = [{"elapsed_s": 0.0, "errors": []}, {"elapsed_s": 259200.123456, "errors": ["x" * 300]},
              {"busy": "awaiting an answer é", "uncovered": [{"pid": 1}] * 20}]
    texts = [clockd._fixed_size(json.dumps(s)) for s in states]
    assert {len(t.encode()) for t in texts} == {clockd.STATE_BLOCK}
    assert [json.loads(t) for t in texts] == states
    big = clockd._fixed_size(json.dumps({"errors": ["y" * 5000]}))
    assert len(big.encode()) == 2 * clockd.STATE_BLOCK and json.loads(big) == {"errors": ["y" * 5000]}
