"""Device clocks: fast-forwarding device time past the firmware's schedules."""

from .mapping import ClockMapping
from .twin_clock import TwinClock

__all__ = ["ClockMapping", "TwinClock"]
