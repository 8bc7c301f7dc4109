"""The twin's event-driven device clock, seen from the host.

In the twin, a controller (``emulator_images/twin/twinrt/clockd.py``) runs
device time at the real rate while the device is busy and jumps it to the
next deadline while every firmware thread is idle (docs/device-clock.md).
``config()`` goes into the services manifest; ``hpctl start`` launches the
controller before any service, so every firmware process shares one clock.

The host never asks the device over adb while the clock runs: an adb
command counts as busy and would hold the clock.  It reads two files the
controller keeps on the container's file system through the engine
(``get_archive``, no process in the device): the state (progress, counters,
fallback, uncovered processes) and the segment log (one line per jump or
rate change), from which the host->device mapping is built.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DeviceError
from ..settings import ClockSettings
from .base import DeviceClock
from .mapping import ClockMapping, Segment

CLOCK_STATE = "/var/lib/honeyphone/clock.state"
CLOCK_JUMPS = "/var/lib/honeyphone/clock_jumps.jsonl"
HOUR = 3600.0

# Reads one file from the device's file system (FileNotFoundError when absent).
FileReader = Callable[[str], bytes]


@dataclass(frozen=True)
class ClockConfig:
    start_epoch: float
    horizon_hours: float | None = None
    settings: ClockSettings = field(default_factory=ClockSettings)

    def manifest_entry(self) -> dict[str, float | None]:
        return {"start_epoch": self.start_epoch,
                "horizon_s": None if self.horizon_hours is None else self.horizon_hours * HOUR,
                **self.settings.manifest_entry()}


@dataclass(frozen=True)
class ClockState:
    """What the controller last published."""

    real: float  # host (real) epoch seconds when it was written
    elapsed_s: float  # device monotonic seconds since the clock started
    reached: bool  # the horizon was reached: the clock no longer jumps
    idle: bool  # the device was idle at the last look
    exchange: bool  # a network exchange was in flight at the last look
    busy: str  # why it was busy, if it was
    jumps: int
    jumped_s: float
    fallback: dict[str, Any] | None  # when and why the fallback started
    fallback_s: float  # real seconds the fallback ran
    fallback_rate: float
    uncovered: tuple[dict[str, Any], ...]  # processes the clock library does not reach
    stalled: tuple[str, ...]  # exchanges that outlived the in-flight cap
    errors: tuple[str, ...]
    signals: int

    @classmethod
    def parse(cls, raw: bytes) -> "ClockState":
        try:
            # A read that straddled a replace can come back NUL-padded to the
            # old file's size; JSON never holds a raw NUL, so what precedes the
            # padding parses only when it is one whole state.
            d = json.loads(raw.rstrip(b"\x00"))
            return cls(
                real=float(d["real"]), elapsed_s=float(d["elapsed_s"]), reached=bool(d["reached"]),
                idle=bool(d.get("idle", False)), exchange=bool(d.get("exchange", False)),
                busy=str(d.get("busy", "")), jumps=int(d["jumps"]), jumped_s=float(d["jumped_s"]),
                fallback=dict(d["fallback"]) if isinstance(d.get("fallback"), dict) else None,
                fallback_s=float(d.get("fallback_s", 0.0)), fallback_rate=float(d.get("fallback_rate", 0.0)),
                uncovered=tuple(dict(u) for u in d.get("uncovered", []) if isinstance(u, dict)),
                stalled=tuple(str(s) for s in d.get("stalled", [])),
                errors=tuple(str(e) for e in d.get("errors", [])),
                signals=int(d.get("signals", 0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DeviceError(f"the twin's device clock published an unreadable state: {exc}",
                              fix="rebuild the twin image (`honeyphone images build twin`)") from exc

    def health(self) -> dict[str, Any]:
        """The report's ``health.clock`` entries."""
        return {
            "kind": "event-driven", "device_hours": round(self.elapsed_s / HOUR, 4), "reached_horizon": self.reached,
            "jumps": self.jumps, "jumped_hours": round(self.jumped_s / HOUR, 4),
            "fallback": None if self.fallback is None else {
                **self.fallback, "rate": self.fallback_rate, "real_seconds": round(self.fallback_s, 3)},
            "uncovered": list(self.uncovered), "stalled_exchanges": list(self.stalled),
            "errors": list(self.errors),
        }


def parse_segments(raw: bytes) -> tuple[Segment, ...]:
    """The controller's segment log: one JSON line per jump or rate change.
    A torn last line (read while being written) is skipped."""
    out: list[Segment] = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
            seg = Segment(float(rec["real"]), float(rec["device"]), max(float(rec["rate"]), 1.0))
        except (ValueError, KeyError, TypeError):
            continue
        if out and seg.host_start < out[-1].host_start:
            continue
        out.append(seg)
    return tuple(out)


def mapping_of(segments: tuple[Segment, ...]) -> ClockMapping:
    """Before the clock started (boot, planting) the device ran on the real clock."""
    return ClockMapping((Segment(0.0, 0.0, 1.0), *segments))


class TwinClock:
    """Clock control for the twin: read the state and mapping, run to a horizon."""

    def __init__(self, read: FileReader, config: ClockConfig, *, stale_after_s: float = 60.0,
                 settle_s: float = 10.0) -> None:
        self._read = read
        self.config = config
        self._stale_after_s = stale_after_s
        self._settle_s = settle_s
        self._mapping: ClockMapping | None = None
        self.last_state: ClockState | None = None

    def configure(self) -> None:
        """Nothing to do: the twin's clock is configured through the services manifest."""

    def state(self, timeout: float = 10.0) -> ClockState:
        """The controller's last state; waits ``timeout`` for its first."""
        deadline = time.monotonic() + timeout
        unreadable: DeviceError | None = None
        while True:
            try:
                raw = self._read(CLOCK_STATE)
                if raw.strip():
                    self.last_state = ClockState.parse(raw)
                    return self.last_state
            except FileNotFoundError:
                pass
            except DeviceError as exc:  # a torn read (the file was replaced while read): read again
                unreadable = exc
            if time.monotonic() > deadline:
                if unreadable is not None:
                    raise unreadable
                raise DeviceError("the twin's device clock did not publish its state",
                                  fix="see the device's /data/honeyphone/logs/clock.log")
            time.sleep(0.02 if unreadable is not None else 0.05)

    def mapping(self, refresh: bool = False) -> ClockMapping:
        """Host -> device from the segment log (cached; ``refresh`` re-reads it)."""
        if self._mapping is None or refresh:
            try:
                raw = self._read(CLOCK_JUMPS)
            except FileNotFoundError as exc:
                raise DeviceError("the twin's device clock wrote no segment log",
                                  fix="see the device's /data/honeyphone/logs/clock.log") from exc
            segments = parse_segments(raw)
            if not segments:
                raise DeviceError("the twin's device clock segment log is empty")
            self._mapping = mapping_of(segments)
        return self._mapping

    def segment_log(self) -> bytes:
        """The controller's jump log as it is (an artifact: one JSON line per segment)."""
        try:
            return self._read(CLOCK_JUMPS)
        except FileNotFoundError:
            return b""

    def origin(self) -> float:
        """The device time the horizon counts from: the clock's start.  (The
        firmware may already have jumped the clock by the time the host asks.)"""
        return self.config.start_epoch

    def device_now(self) -> float:
        return self.config.start_epoch + self.state().elapsed_s

    def device_hours_elapsed(self) -> float:
        return self.state().elapsed_s / HOUR

    def run_until(
        self,
        hours: float,
        progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        tick: float = 0.1,
        since: float | None = None,
    ) -> float:
        """Wait until ``hours`` of device time have passed since ``since``
        (device epoch; default the clock's start), then for the device to
        settle (idle, or ``settle_s`` real seconds) so that what woke at the
        horizon finishes its exchange.  Elapsed device time is monotonic: a
        firmware that sets the wall clock forward does not shorten the run."""
        origin = self.config.start_epoch if since is None else since
        target = (origin - self.config.start_epoch) + hours * HOUR
        settle_by: float | None = None
        while True:
            st = self.state()
            if time.time() - st.real > self._stale_after_s:
                raise DeviceError(
                    f"the twin's device clock stopped: no update for {time.time() - st.real:.0f} s",
                    fix="see the device's /data/honeyphone/logs/clock.log; the controller may have been killed")
            elapsed = (st.elapsed_s - (origin - self.config.start_epoch)) / HOUR
            if progress:
                progress(max(0.0, min(elapsed, hours)))
            if should_stop and should_stop():
                return max(0.0, min(elapsed, hours))
            if st.elapsed_s >= target or st.reached:
                if settle_by is None:
                    settle_by = time.monotonic() + self._settle_s
                if st.idle or time.monotonic() >= settle_by:
                    return max(0.0, min(elapsed, hours))
            time.sleep(tick)


def _conforms(clock: TwinClock) -> DeviceClock:
    """Never called: mypy checks here that ``TwinClock`` satisfies ``DeviceClock``."""
    return clock
