"""The twin's accelerated device clock (libfaketime, one shared base).

``config()`` goes into the services manifest; ``hpctl start`` launches the
anchor before any service, so every firmware process shares one clock.  The
host then only waits: device time passes by itself at ``rate``.  The mapping
comes from (real, device) samples the anchor takes in one process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..device.device import Device
from ..errors import DeviceError
from .base import DeviceClock
from .mapping import ClockMapping, Segment

CLOCK_JSON = "/run/honeyphone/clock.json"
CLOCK_JUMPS = "/run/honeyphone/clock_jumps.jsonl"
HOUR = 3600.0


@dataclass(frozen=True)
class ClockConfig:
    start_epoch: float
    rate: float

    def manifest_entry(self) -> dict[str, float]:
        return {"start_epoch": self.start_epoch, "rate": self.rate}


class TwinClock:
    """Clock control for the twin: configure, read the mapping, run to a horizon."""

    def __init__(self, device: Device, config: ClockConfig):
        self._device = device
        self.config = config
        self._mapping: ClockMapping | None = None
        self._base_mapping: ClockMapping | None = None

    def configure(self) -> None:
        """Nothing to do: the twin's clock is configured through the services manifest."""

    def mapping(self, refresh: bool = False) -> ClockMapping:
        """The host->device mapping from the anchor's samples, plus one
        segment per wall-clock jump made with ``date`` on the device
        (cached; ``refresh`` re-reads the jumps)."""
        if self._mapping is None or refresh:
            self._mapping = self._with_jumps(self._base())
        return self._mapping

    def _with_jumps(self, base: ClockMapping) -> ClockMapping:
        res = self._device.shell(["cat", CLOCK_JUMPS])
        if res.exit_code != 0:
            return base
        mapping = base
        for line in res.text.splitlines():
            try:
                jump = json.loads(line)
                real, delta = float(jump["real"]), float(jump["delta"])
            except (ValueError, KeyError, TypeError):
                continue
            mapping = mapping.with_jump(real, delta)
        return mapping

    def _base(self) -> ClockMapping:
        """The anchor's own linear mapping (the anchor never sees jumps)."""
        if self._base_mapping is None:
            deadline = time.monotonic() + 10
            while True:
                res = self._device.shell(["cat", CLOCK_JSON])
                if res.exit_code == 0 and res.text.strip():
                    break
                if time.monotonic() > deadline:
                    raise DeviceError("the twin's device clock did not publish its state", fix="check `hpctl status`")
                time.sleep(0.05)
            state = json.loads(res.text)
            real, device = state["samples"][0]
            rate = float(state["rate"])
            fast = ClockMapping.linear(float(real), float(device), rate)
            # Before the anchor started, the device ran on the real clock
            # (boot, planting): an identity segment keeps those events right.
            anchor_host = fast.to_host(self.config.start_epoch)
            self._base_mapping = ClockMapping((
                Segment(0.0, 0.0, 1.0),
                Segment(anchor_host, self.config.start_epoch, rate),
            ))
        return self._base_mapping

    def device_now(self) -> float:
        return self.mapping().to_device(time.time())

    def device_hours_elapsed(self) -> float:
        return (self.device_now() - self.config.start_epoch) / HOUR

    def run_until(
        self,
        hours: float,
        progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        tick: float = 0.25,
        since: float | None = None,
    ) -> float:
        """Wait until ``hours`` of device time have passed since ``since``
        (device epoch; default the clock's start)."""
        # The horizon is elapsed device time at the clock's rate: a firmware
        # that sets the wall clock forward does not shorten the run.
        mapping = self._base()
        origin = self.config.start_epoch if since is None else since
        target_host = mapping.to_host(origin + hours * HOUR)
        while True:
            now = time.time()
            elapsed = (mapping.to_device(now) - origin) / HOUR
            if progress:
                progress(min(elapsed, hours))
            if now >= target_host or (should_stop and should_stop()):
                return min(elapsed, hours)
            time.sleep(min(tick, max(0.0, target_host - now)))


def _conforms(clock: TwinClock) -> DeviceClock:
    """Never called: mypy checks here that ``TwinClock`` satisfies ``DeviceClock``."""
    return clock
