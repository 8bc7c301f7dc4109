"""How much of an analysis' evidence detection actually saw.

Why this exists: every reader on the way from artifacts to findings (the
pcap reader, the JSONL logs, the strace parser, the scanner) counts what it
could not read instead of stopping.  Counting is only useful if the counts
reach the report and the verdict: a ``clean`` verdict says "we looked at
everything the device sent and found no canary", which is false when a scan
failed, the decoding budget ran out, or part of the capture was unreadable.

:func:`assess` turns the counters into

* ``section``: the report's ``health.detection`` (every counter, as read);
* ``gaps``: sentences naming evidence that was *not* scanned.  Any gap
  makes detection incomplete, and an incomplete detection never yields
  ``clean`` (see :func:`sandbox.detect.verdict.verdict`);
* ``notes``: sentences about counters that leave the scan complete but
  weaken what the verdict rests on (unparseable strace lines: the store
  reader / sender attribution behind ``suspicious``);
* ``incidents``: ``health.incidents`` entries for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.detect.findings import ScanHealth
    from sandbox.detect.payloads import SourceStats
    from sandbox.monitor.parser import ParseStats

__all__ = ["Completeness", "assess"]


@dataclass(frozen=True)
class Completeness:
    """The verdict-relevant reading of every detection error counter."""

    section: dict[str, Any]
    gaps: tuple[str, ...]
    notes: tuple[str, ...]
    incidents: tuple[dict[str, str], ...]

    @property
    def complete(self) -> bool:
        return not self.gaps


def _sources_dict(s: SourceStats) -> dict[str, Any]:
    t = s.tcp
    return {
        "frames": s.frames, "device_frames": s.device_frames, "unsupported_frames": s.unsupported_frames,
        "malformed_frames": s.malformed_frames, "capture_error": s.capture_error,
        "udp_datagrams": s.udp_datagrams, "dns_queries": s.dns_queries,
        "fragments_dropped": s.fragments_dropped, "flows": s.flows, "malformed_records": s.malformed_records,
        "internal_errors": s.internal_errors,
        "tcp": {"segments": t.segments, "streams": t.streams, "chunks": t.chunks, "stale_bytes": t.stale_bytes,
                "truncated_bytes": t.truncated_bytes, "conflicting_streams": t.conflicting_streams,
                "evicted_streams": t.evicted_streams, "pressure_flushes": t.pressure_flushes},
    }


def assess(
    scan: ScanHealth,
    sources: SourceStats,
    strace: Mapping[str, ParseStats] | None = None,
    *,
    capture_stop_error: str | None = None,
    capture_dropped: int = 0,
) -> Completeness:
    """Read every counter (see the module docstring).  ``strace`` maps a
    trace file's name to its parser's stats; ``capture_stop_error`` is why
    stopping the packet capture failed (the pcap may then lack its end);
    ``capture_dropped`` is the kernel's count of packets tcpdump lost."""
    gaps: list[str] = []
    notes: list[str] = []
    if scan.failed:
        first = f" (first: {scan.errors[0]})" if scan.errors else ""
        gaps.append(f"the scan of {scan.failed} of {scan.payloads} payload(s) failed on an internal error; "
                    f"their hits so far are kept as partial evidence{first}")
    if scan.budget_exhausted:
        gaps.append(f"{scan.budget_exhausted} payload(s) held more encoded data than the decoding budget: "
                    "some regions were not decoded")
    if sources.capture_error:
        gaps.append(f"the packet capture could not be read to its end: {sources.capture_error}")
    if capture_stop_error:
        gaps.append(f"stopping the packet capture failed: {capture_stop_error}")
    if capture_dropped:
        gaps.append(f"the kernel dropped {capture_dropped} packet(s) before the capture saw them")
    if sources.internal_errors:
        gaps.append(f"{sources.internal_errors} capture frame(s) were skipped on an internal error")
    if sources.malformed_frames:
        gaps.append(f"{sources.malformed_frames} capture frame(s) were malformed and skipped")
    if sources.fragments_dropped:
        gaps.append(f"{sources.fragments_dropped} IP fragment(s) could not be reassembled")
    if sources.malformed_records:
        gaps.append(f"{sources.malformed_records} fakenet log record(s) were unreadable")
    if sources.tcp.truncated_bytes:
        gaps.append(f"{sources.tcp.truncated_bytes} byte(s) of TCP streams beyond the per-stream limit "
                    "were not scanned")
    traces = dict(strace or {})
    unparseable = sum(p.unparseable for p in traces.values())
    if unparseable:
        where = ", ".join(sorted(name for name, p in traces.items() if p.unparseable))
        notes.append(f"{unparseable} syscall trace line(s) could not be parsed ({where}): which process read "
                     "a canary store or sent what may be incomplete")
    section: dict[str, Any] = {
        "complete": not gaps,
        "scan": scan.to_dict(),
        "sources": _sources_dict(sources),
        "capture_stop_error": capture_stop_error,
        "strace": {name: p.to_dict() for name, p in sorted(traces.items())},
    }
    incidents = [{"kind": "detection_incomplete", "message": g} for g in gaps]
    incidents += [{"kind": "trace_unparseable", "message": n} for n in notes]
    return Completeness(section, tuple(gaps), tuple(notes), tuple(incidents))
