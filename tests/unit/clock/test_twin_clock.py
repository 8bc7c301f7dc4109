"""The host side of the twin's clock: the controller's segment log becomes
the host->device mapping, its state the report's health.clock, and
run_until waits for the horizon and then for the device to settle."""

from __future__ import annotations

import json
import time

import pytest

from sandbox.clock.twin_clock import CLOCK_JUMPS, CLOCK_STATE, ClockConfig, ClockState, TwinClock, parse_segments
from sandbox.errors import DeviceError

H = 3600.0


def state(**kw: object) -> bytes:
    base: dict[str, object] = {"real": time.time(), "elapsed_s": 0.0, "reached": False, "idle": False,
                               "jumps": 0, "jumped_s": 0.0, "fallback": None, "fallback_s": 0.0,
                               "fallback_rate": 14400.0, "uncovered": [], "stalled": [], "errors": []}
    base.update(kw)
    return json.dumps(base).encode()


def test_segments_map_host_time_across_jumps_and_skip_a_torn_line() -> None:
    log = (b'{"real": 100.0, "device": 1000.0, "rate": 1.0, "kind": "start"}\n'
           b'{"real": 110.0, "device": 1010.0 , "rate": 1.0, "kind": "idle"}\n'  # before the jump
           b'{"real": 110.0, "device": 260210.0, "rate": 1.0, "kind": "idle"}\n'
           b'{"real": 120.0, "device": 2602')  # torn: being written
    segs = parse_segments(log)
    assert [s.host_start for s in segs] == [100.0, 110.0, 110.0]
    clock = TwinClock(lambda p: log if p == CLOCK_JUMPS else b"", ClockConfig(1000.0, 80.0))
    m = clock.mapping()
    assert m.to_device(105.0) == pytest.approx(1005.0)
    assert m.to_device(115.0) == pytest.approx(260215.0)  # after the 72 h jump, real rate again
    assert m.to_device(50.0) == pytest.approx(50.0)  # before the clock started: the real clock


def test_state_parse_and_health() -> None:
    st = ClockState.parse(state(elapsed_s=80 * H, reached=True, jumps=321, jumped_s=79 * H,
                                fallback={"started_device_s": 7.0, "why": "busy"}, fallback_s=2.5,
                                uncovered=[{"pid": 9, "comm": "gobin", "exe": "/x", "why": "statically linked"}]))
    h = st.health()
    assert h["device_hours"] == 80.0 and h["reached_horizon"] and h["jumps"] == 321
    assert h["fallback"] == {"started_device_s": 7.0, "why": "busy", "rate": 14400.0, "real_seconds": 2.5}
    assert h["uncovered"][0]["comm"] == "gobin"
    with pytest.raises(DeviceError, match="unreadable state"):
        ClockState.parse(b'{"real": 1')


def test_a_torn_state_read_is_read_again() -> None:
    reads = iter([b'{"real": 1', state(elapsed_s=5.0)])
    clock = TwinClock(lambda p: next(reads), ClockConfig(0.0, 1.0))
    assert clock.state(timeout=2.0).elapsed_s == 5.0


def test_a_state_read_padded_with_nuls_to_the_old_size_is_whole() -> None:
    """A read that straddled a replace by a shorter state: the new state, then
    NULs up to the old size (the "Extra data" of CI, 2026-12-08)."""
    raw = state(elapsed_s=72 * H)
    assert ClockState.parse(raw + b"\x00" * 37).elapsed_s == 72 * H
    assert ClockState.parse(raw + b" " * 40).elapsed_s == 72 * H  # the controller pads with spaces
    with pytest.raises(DeviceError, match="unreadable state"):  # cut short, then padded: still refused
        ClockState.parse(raw[:-5] + b"\x00" * 5)


def test_run_until_waits_for_the_horizon_then_for_the_device_to_settle() -> None:
    script = [state(elapsed_s=10 * H), state(elapsed_s=80 * H, reached=True, idle=False),
              state(elapsed_s=80 * H + 2, reached=True, idle=True)]
    seen: list[float] = []

    def read(path: str) -> bytes:
        assert path == CLOCK_STATE
        return script.pop(0) if len(script) > 1 else script[0]

    clock = TwinClock(read, ClockConfig(0.0, 80.0))
    assert clock.run_until(80.0, progress=seen.append, tick=0.001) == 80.0
    assert seen[0] == 10.0 and seen[-1] == 80.0 and script == [script[0]] and b'"idle": true' in script[0]


def test_a_clock_that_stops_publishing_fails_the_run() -> None:
    stale = state(real=time.time() - 600, elapsed_s=1.0)
    clock = TwinClock(lambda p: stale, ClockConfig(0.0, 80.0), stale_after_s=60.0)
    with pytest.raises(DeviceError, match="device clock stopped"):
        clock.run_until(80.0, tick=0.001)
