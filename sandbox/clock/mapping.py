"""Host time <-> device time.

Every artifact (pcap, flows, DNS log, syscall trace) is stamped with host
time; reports speak device time.  The twin's clock is linear while it runs
(``device = start + (host - anchor) * rate``); the emulator's is a series of
steps, so a mapping is a list of linear segments.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Segment:
    host_start: float
    device_start: float
    rate: float


@dataclass(frozen=True)
class ClockMapping:
    segments: tuple[Segment, ...]

    @classmethod
    def linear(cls, host_anchor: float, device_anchor: float, rate: float) -> "ClockMapping":
        return cls((Segment(host_anchor, device_anchor, rate),))

    @classmethod
    def identity(cls) -> "ClockMapping":
        return cls.linear(0.0, 0.0, 1.0)

    def _segment(self, host_ts: float) -> Segment:
        starts = [s.host_start for s in self.segments]
        i = max(0, bisect.bisect_right(starts, host_ts) - 1)
        return self.segments[i]

    def to_device(self, host_ts: float) -> float:
        seg = self._segment(host_ts)
        return seg.device_start + (host_ts - seg.host_start) * seg.rate

    def to_host(self, device_ts: float) -> float:
        starts = [s.device_start for s in self.segments]
        i = max(0, bisect.bisect_right(starts, device_ts) - 1)
        seg = self.segments[i]
        return seg.host_start + (device_ts - seg.device_start) / seg.rate

    def device_iso(self, host_ts: float) -> str:
        return datetime.fromtimestamp(self.to_device(host_ts), tz=timezone.utc).isoformat()

    def with_jump(self, host_ts: float, delta: float) -> "ClockMapping":
        """A new segment from ``host_ts`` on: the wall clock moved by ``delta`` s."""
        seg = self._segment(host_ts)
        new = Segment(host_ts, self.to_device(host_ts) + delta, seg.rate)
        kept = tuple(s for s in self.segments if s.host_start < host_ts)
        return ClockMapping(kept + (new,))

    def to_dict(self) -> dict[str, object]:
        return {"segments": [s.__dict__ for s in self.segments]}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "ClockMapping":
        raw = data["segments"]
        assert isinstance(raw, list)
        return cls(tuple(Segment(float(s["host_start"]), float(s["device_start"]), float(s["rate"])) for s in raw))
