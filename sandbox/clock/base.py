"""What the pipeline needs from any device clock.

The twin's clock runs at the real rate while the device is busy and jumps
over idle time; the emulator steps its wall clock.  Both are a series of
segments.  Both map host time to device
time and run to a horizon measured in device hours, so the pipeline drives
either through this protocol.  Conformance is checked by mypy: each clock
module has a ``_conforms`` function returning its clock as a ``DeviceClock``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .mapping import ClockMapping

HOUR = 3600.0


@runtime_checkable
class DeviceClock(Protocol):
    def configure(self) -> None:
        """Take control of the device's clock (before the firmware runs)."""

    def mapping(self) -> ClockMapping:
        """Host time -> device time, for stamping artifacts."""

    def device_now(self) -> float:
        """The device's wall clock now, epoch seconds."""

    def origin(self) -> float:
        """The device time the analysis horizon counts from (call once, after the firmware started)."""

    def run_until(
        self,
        hours: float,
        progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        tick: float = ...,
        since: float | None = None,
    ) -> float:
        """Advance until ``hours`` device hours have passed since ``since``; returns the hours reached."""


__all__ = ["DeviceClock", "HOUR"]
