"""The unit the detector scans: a :class:`Payload` (device-sent bytes with
where and when they went), and the bounds and counters of reading them.

Why a module: every source (``pcap_source.py``, ``fakenet_source.py``)
produces payloads and the findings layer consumes them; the type is theirs
in common.  See ``sources.py`` for the sources and their order.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from sandbox.detect.reassembly import TcpLimits, TcpStats

__all__ = ["Channel", "HostSource", "Payload", "SourceLimits", "SourceStats"]

Channel: TypeAlias = Literal["http", "https", "dns", "tcp", "udp"]

HostSource: TypeAlias = Literal["http-host", "sni", "flow", "query", "dns"]


@dataclass(frozen=True)
class Payload:
    """One unit of device-sent bytes with where and when it went.

    ``base_offset`` is the offset of ``data[0]`` in what ``locator`` names (a
    TCP stream, a request), so ``base_offset + hit offset`` points into the
    artifact.  ``times`` maps offsets in ``data`` to capture times (see
    :meth:`ts_at`); ``connect_ts`` is when the connection was opened (SYN,
    catch-all accept), the best time to ask the syscall summary who opened
    it.  ``pre_chain`` names decodings already undone before scanning.
    """

    channel: Channel
    data: bytes = field(repr=False)
    host: str | None
    ip: str
    port: int
    ts: float
    artifact: str
    locator: str
    base_offset: int = 0
    client: str | None = None
    host_source: HostSource | None = None
    connect_ts: float | None = None
    times: tuple[tuple[int, float], ...] = field(default=(), repr=False)
    pre_chain: tuple[str, ...] = ()

    def ts_at(self, offset: int) -> float:
        """Capture time of ``data[offset]`` (``ts`` when unknown)."""
        if not self.times:
            return self.ts
        i = bisect.bisect_right(self.times, (offset, float("inf"))) - 1
        return self.times[max(i, 0)][1]


@dataclass(frozen=True)
class SourceLimits:
    """Bounds on memory and on how far the DNS name heuristic looks back."""

    tcp: TcpLimits = field(default_factory=TcpLimits)
    max_dns_records: int = 200_000
    dns_max_age_s: float = 3600.0
    max_udp_index: int = 200_000
    max_fragment_datagrams: int = 1024
    max_fragment_bytes: int = 16 << 20


@dataclass
class SourceStats:
    """What was read and what was skipped (a mutable accumulator for reports)."""

    frames: int = 0
    device_frames: int = 0
    unsupported_frames: int = 0
    malformed_frames: int = 0
    capture_error: str | None = None
    udp_datagrams: int = 0
    dns_queries: int = 0
    fragments_dropped: int = 0
    flows: int = 0
    malformed_records: int = 0
    internal_errors: int = 0
    tcp: TcpStats = field(default_factory=TcpStats)
