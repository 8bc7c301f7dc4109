"""The scratchpad one analysis fills step by step, which the report reads.

It lives apart from the pipeline so the device sessions (twin, Android)
and the report can both use it without importing the pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..clock.mapping import ClockMapping

TraceClock = Literal["host", "device"]


@dataclass
class RunState:
    """What a run collected, filled step by step (mutable on purpose: it is the run's scratchpad)."""

    analysis_id: str
    out: Path
    timeline: list[dict[str, object]] = field(default_factory=list)
    mapping: ClockMapping | None = None
    services: list[dict[str, object]] = field(default_factory=list)
    plant_seconds: float = 0.0
    boot_seconds: float = 0.0
    health: dict[str, Any] = field(default_factory=dict)  # raw samples for the report's health section
    # Which clock stamps the strace files: the twin's strace runs outside
    # the device clock library (host time); the emulator's runs in the guest, whose wall
    # clock is stepped (device time, mapped back with ``mapping.to_host``).
    trace_clock: TraceClock = "host"

    def mark(self, event: str, host_ts: float | None = None, **extra: object) -> None:
        self.timeline.append({"event": event, "host_time": host_ts or time.time(), **extra})


__all__ = ["RunState", "TraceClock"]
