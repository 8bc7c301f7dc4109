"""Detection never drops evidence silently.

* Scanning from several threads at once gives the same hits as alone (each
  thread has its own Hyperscan scratch; a shared one raised
  ``ScratchInUseError`` and the scan returned partial hits).
* A scan that fails raises :class:`ScanError` with its partial hits; the
  detector counts it and keeps those hits as evidence.
* Every counter of what was not read reaches ``assess`` and weighs on the
  verdict: no ``clean`` without a complete scan.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Callable

import pytest

from sandbox.canary import CanarySpec, generate
from sandbox.clock import ClockMapping
from sandbox.detect import decoders
from sandbox.detect.completeness import assess
from sandbox.detect.findings import Detector, ScanHealth
from sandbox.detect.scan import Hit, Needle, ScanError, Scanner
from sandbox.detect.payloads import Payload, SourceStats
from sandbox.detect.verdict import verdict
from sandbox.monitor.parser import ParseStats

PHONE = "+15405550123"
NAME = "Zyxw Quillfeather"
NEEDLES = [Needle(PHONE, "phone"), Needle(NAME, "name"), Needle("ZQX00042abc", "sms")]


def _buffers() -> list[bytes]:
    """Buffers that need every trigger family: base64, gzip, hex, %XX, JSON, UTF-16."""
    out = []
    for i in range(12):
        filler = bytes((i * 37 + k) % 256 for k in range(2000))
        out += [
            filler + b'"' + base64.b64encode(PHONE.encode()) + b'"' + filler,
            b"payload=" + base64.b64encode(gzip.compress(NAME.encode() + bytes([i]))) + b"&v=2",
            b" " + b"ZQX00042abc".hex().encode() + b" " + filler,
            b"q=" + urllib.parse.quote_plus(NAME).encode() + b"&x=" + str(i).encode(),
            b'{"m":"\\u0041 ' + NAME.encode() + b'"}',
            filler + "+15405550123".encode("utf-16-le") + filler,
        ]
    return out


def _key(hits: list[Hit]) -> list[tuple[object, tuple[str, ...], int]]:
    return sorted((str(h.ref), h.chain, h.offset) for h in hits)


def _hammer(scan_for: Callable[[int], Scanner], threads: int, rounds: int) -> list[list[list[tuple[object, ...]]]]:
    bufs = _buffers()
    results: list[list[list[tuple[object, ...]]]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            sc = scan_for(t)
            start.wait()
            for _ in range(rounds):
                results[t].append([tuple(x) for b in bufs for x in [_key(sc.scan(b))]])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert errors == []
    return results


def test_one_scanner_shared_by_threads_gives_identical_hits() -> None:
    sc = Scanner(NEEDLES)
    alone = [tuple(_key(sc.scan(b))) for b in _buffers()]
    assert all(alone), "every buffer holds a canary"
    for per_thread in _hammer(lambda _t: sc, threads=6, rounds=4):
        for got in per_thread:
            assert [tuple(x) for x in got] == alone


def test_scanners_on_separate_threads_give_identical_hits() -> None:
    scanners = [Scanner(NEEDLES) for _ in range(4)]
    alone = [tuple(_key(scanners[0].scan(b))) for b in _buffers()]
    for per_thread in _hammer(lambda t: scanners[t], threads=4, rounds=4):
        for got in per_thread:
            assert [tuple(x) for x in got] == alone


def test_automata_compiled_in_threads_scan_like_one_compiled_serially() -> None:
    """The literal, XOR and trigger automata compile concurrently by default;
    the result must not depend on it (nor on how many threads ran)."""
    serial = Scanner(NEEDLES, compile_workers=1)
    for workers in (None, 2, 3):
        threaded = Scanner(NEEDLES, compile_workers=workers)
        for b in _buffers():
            assert _key(threaded.scan(b)) == _key(serial.scan(b))


def test_a_compile_error_in_a_compile_thread_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.detect import scan as scan_mod

    def broken(*_a: object, **_k: object) -> None:
        raise MemoryError("compiler out of memory")

    monkeypatch.setattr(scan_mod, "RegexTriggers", broken)
    with pytest.raises(MemoryError, match="compiler out of memory"):
        Scanner(NEEDLES, compile_workers=3)


def test_last_stats_are_per_thread() -> None:
    sc = Scanner(NEEDLES)
    sc.scan(b"x=" + base64.b64encode(PHONE.encode()))
    seen: list[int] = []
    th = threading.Thread(target=lambda: seen.append(sc.last_stats.generations))
    th.start()
    th.join()
    assert seen == [0] and sc.last_stats.generations >= 2


def test_a_failing_scan_raises_with_its_partial_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_data: bytes) -> bytes:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(decoders, "json_unescape", broken)
    sc = Scanner(NEEDLES)
    with pytest.raises(ScanError) as info:
        sc.scan(b'clear ' + PHONE.encode() + b' then {"m":"\\u0041 ' + NAME.encode() + b'"}')
    assert {h.ref for h in info.value.partial} == {"phone", "name"}  # clear text, found before the failure
    assert "decoder bug" in str(info.value)


def test_the_detector_counts_failed_scans_and_keeps_their_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    canaries = generate(CanarySpec(seed=3, analysis_id="silent-loss", contacts=2, sms=0, calls=0))
    number = canaries.contacts[0].number
    det = Detector(canaries)
    monkeypatch.setattr(decoders, "json_unescape", lambda _d: (_ for _ in ()).throw(RuntimeError("boom")))
    data = b"n=" + number.encode() + b' {"a":"\\u0041 a longer string value"}'
    p = Payload("http", data, "h.example", "203.0.113.5", 80, 1.0, "flows", "line 1")
    matches = det.matches(p)
    assert matches and det.health.failed == 1 and not det.health.complete
    assert "flows line 1" in det.health.errors[0] and "boom" in det.health.errors[0]


def test_complete_scan_and_clean_sources_have_no_gaps() -> None:
    done = assess(ScanHealth(payloads=3), SourceStats(), {"svc.strace": ParseStats(lines=10)})
    assert done.complete and done.gaps == () and done.incidents == ()
    assert done.section["complete"] is True and done.section["strace"]["svc.strace"]["lines"] == 10


def test_every_error_counter_is_a_gap_or_a_note() -> None:
    stats = SourceStats(capture_error="capture ends in a damaged record", internal_errors=2, malformed_frames=1,
                        fragments_dropped=1, malformed_records=3)
    stats.tcp.truncated_bytes = 99
    scan = ScanHealth(payloads=5, failed=1, budget_exhausted=1, errors=["pcap tcp a->b: boom"])
    done = assess(scan, stats, {"svc.strace": ParseStats(lines=4, unparseable=2)},
                  capture_stop_error="CaptureError: x", capture_dropped=7)
    text = " | ".join(done.gaps)
    for part in ("failed", "decoding budget", "damaged record", "stopping the packet capture", "dropped 7",
                 "internal error", "malformed", "fragment", "log record", "99 byte"):
        assert part in text
    assert not done.complete and done.section["complete"] is False
    assert done.notes and "svc.strace" in done.notes[0]
    kinds = {i["kind"] for i in done.incidents}
    assert kinds == {"detection_incomplete", "trace_unparseable"}


def test_no_clean_verdict_without_a_complete_scan() -> None:
    assert verdict([], None).verdict == "clean"
    got = verdict([], None, gaps=["the packet capture could not be read to its end: x"])
    assert got.verdict == "suspicious"
    assert any(r.startswith("detection incomplete: the packet capture") for r in got.reasons)


def test_notes_are_reasons_but_keep_a_complete_scan_clean() -> None:
    got = verdict([], None, notes=["3 syscall trace line(s) could not be parsed"])
    assert got.verdict == "clean" and got.reasons[-1].startswith("3 syscall trace line(s)")


def test_findings_stay_a_leak_when_the_scan_was_incomplete() -> None:
    canaries = generate(CanarySpec(seed=3, analysis_id="silent-loss", contacts=1, sms=0, calls=0))
    number = canaries.contacts[0].number
    p = Payload("http", b"n=" + number.encode() + b"&", "h.example", "203.0.113.5", 80, 1.0, "flows", "line 1")
    findings = Detector(canaries).detect([p], ClockMapping.identity(), None)
    got = verdict(findings, None, gaps=["1 payload(s) held more encoded data than the decoding budget"])
    assert got.verdict == "leak" and got.reasons[-1].startswith("detection incomplete:")


def _payloads(canaries: object) -> list[Payload]:
    from sandbox.canary.model import CanarySet

    assert isinstance(canaries, CanarySet)
    out = []
    for n, c in enumerate(canaries.contacts):
        body = json.dumps({"n": c.number, "name": c.display_name}).encode()
        md5 = hashlib.md5(c.number.encode()).hexdigest().upper().encode()
        for k, data in enumerate([
            b"GET /c?phone=" + urllib.parse.quote_plus(c.number).encode() + b" HTTP/1.1\r\n\r\n",
            b'{"d":"' + base64.b64encode(gzip.compress(body)) + b'"}',
            b'{"hash":"' + md5 + b'"}',
            bytes(b ^ 0x5A for b in f"{c.number}\t{c.display_name}\n".encode()),
        ]):
            out.append(Payload("http" if k < 3 else "tcp", data, f"h{k}.example", f"203.0.113.{k + 1}", 80,
                               1000.0 + 100 * n + k, "flows", f"line {n}.{k}"))
    return out


def test_the_detector_in_parallel_threads_finds_exactly_what_it_finds_alone() -> None:
    """Farm parity on identical input: four detectors on four threads, the
    same payloads, the same findings (all of them, as the report shows them)."""
    canaries = generate(CanarySpec(seed=5, analysis_id="parity", contacts=6, sms=0, calls=0))
    payloads = _payloads(canaries)
    mapping = ClockMapping.identity()
    alone = [f.to_dict() for f in Detector(canaries).detect(payloads, mapping, None)]
    seen = {(f["canary"]["item_id"], f["destination"]["host"]) for f in alone}  # type: ignore[index]
    assert len(seen) == 6 * 4  # every contact, in every style
    got: list[list[dict[str, object]]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def work(t: int) -> None:
        det = Detector(canaries)
        start.wait()
        for _ in range(3):
            got[t] = [f.to_dict() for f in det.detect(payloads, mapping, None)]
            assert det.health.complete

    pool = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert got == [alone] * 4
