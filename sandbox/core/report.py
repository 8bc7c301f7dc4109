"""Building the JSON report of one analysis from its artifacts.

Detection runs here, after teardown, over what the run left on disk: the
pcap, the fakenet's logs, the syscall traces, the canary set and the clock
mapping.  Every host timestamp is converted to device time once, here.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundle import Bundle
from ..canary.model import CanarySet
from ..clock.mapping import ClockMapping
from ..monitor.events import Event
from ..monitor.summary import Summary, SummaryBuilder
from ..monitor.parser import ParseStats, StraceParser
from ..errors import HoneyphoneError
from ..network.logs import DnsQuery, HttpFlow, TlsFailure, read_jsonl
from ..settings import Settings
from ..model import AnalysisRequest, Verdict
from .health import clock_caveats, health_section

if TYPE_CHECKING:
    from .run_state import RunState

REPORT_SCHEMA = "https://honeyphone.dev/schemas/report/v1.json"


class DetectionFailed(HoneyphoneError):
    """Scans failed and nothing was found: no verdict can be given.

    Why a failure and not a verdict: with no finding, a failed scan is
    exactly the case where a leak would be reported as clean.  Retryable:
    the artifacts are re-read from scratch by another attempt.
    """

    retryable = True


@dataclass(frozen=True)
class BuiltReport:
    verdict: Verdict
    report: dict[str, Any]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def syscall_summary(syscalls_dir: Path, to_host: Callable[[float], float] | None = None,
                    parse_stats: dict[str, ParseStats] | None = None) -> Summary:
    """One summary over every trace (pids are unique within one device).

    ``to_host`` maps the traces' time stamps to host time when strace ran on
    the device's own clock (the emulator); the report stamps host time and
    maps it to device time in one place.  ``parse_stats`` receives each
    trace's parser counters (unparseable lines must reach the report).
    """
    builder = SummaryBuilder()
    for trace in sorted(syscalls_dir.glob("*.strace")):
        parser = StraceParser()
        with open(trace, encoding="utf-8", errors="replace", newline="\n") as fh:
            events: Iterable[Event] = parser.parse(fh)
            if to_host is not None:
                events = (replace(e, ts=to_host(e.ts)) for e in events)
            builder.add_all(events)
        if parse_stats is not None:
            parse_stats[trace.name] = parser.stats
    return builder.build()


def _iso(mapping: ClockMapping, ts: float) -> str:
    return mapping.device_iso(ts)


def build_report(
    *,
    settings: Settings,
    request: AnalysisRequest,
    bundle: Bundle,
    canaries: CanarySet,
    state: "RunState",
    fakenet_dir: Path,
    pcap: Path,
    device_ip: str,
    syscalls_dir: Path,
) -> BuiltReport:
    from ..detect.completeness import assess
    from ..detect.findings import ScanHealth, detect
    from ..detect.payloads import Payload, SourceStats
    from ..detect.sources import iter_payloads
    from ..detect.verdict import OpaqueSend
    from ..detect.verdict import verdict as decide

    mapping = state.mapping or ClockMapping.identity()
    parse_stats: dict[str, ParseStats] = {}
    summary = syscall_summary(syscalls_dir, mapping.to_host if state.trace_clock == "device" else None,
                              parse_stats)
    dns = [DnsQuery.parse(d) for d in read_jsonl(fakenet_dir / "dns.jsonl")]
    flows = [HttpFlow.parse(d) for d in read_jsonl(fakenet_dir / "flows.jsonl")]
    tls_failures = [TlsFailure.parse(d) for d in read_jsonl(fakenet_dir / "tls_failures.jsonl")]
    # Stream the payloads through the detector, keeping only the opaque
    # sends the verdict needs, so a large capture is never held in memory.
    opaque: list[OpaqueSend] = []

    def tap(payloads: Iterable[Payload]) -> Iterator[Payload]:
        for p in payloads:
            if (o := OpaqueSend.of(p)) is not None:
                opaque.append(o)
            yield p

    # Every counter of what could not be read reaches health.detection and
    # the verdict: a clean verdict needs a complete scan (detect/completeness.py).
    source_stats, scan_health = SourceStats(), ScanHealth()
    payloads = iter_payloads(device_ip, pcap=pcap, fakenet_dir=fakenet_dir, stats=source_stats)
    findings = detect(canaries, tap(payloads), mapping, summary, health=scan_health)
    raw_cap = state.health.get("capture")
    cap: dict[str, Any] = raw_cap if isinstance(raw_cap, dict) else {}
    done = assess(scan_health, source_stats, parse_stats, capture_stop_error=cap.get("stop_error"),
                  capture_dropped=int(cap.get("dropped_by_kernel") or 0))
    if scan_health.failed and not findings:
        raise DetectionFailed(f"detection failed: {done.gaps[0]}")
    result = decide(findings, summary, tls_failures, opaque, mapping=mapping, gaps=done.gaps, notes=done.notes)
    health = health_section(state.health, syscalls_dir, mapping, summary)
    health["detection"] = done.section
    health["incidents"] = [*health.get("incidents", []), *done.incidents]

    timeline: list[dict[str, Any]] = []
    for ev in state.timeline:
        host_ts = float(ev["host_time"])  # type: ignore[arg-type]
        timeline.append({**ev, "device_time": _iso(mapping, host_ts)})
    for reader in summary.store_readers():
        timeline.append({"event": "canary_store_read", "host_time": reader.first_ts,
                         "device_time": _iso(mapping, reader.first_ts), "store": reader.store,
                         "process": _proc_name(reader.process), "pid": reader.process.pid})
    for flow in flows:
        timeline.append({"event": "network_flow", "host_time": flow.ts_request,
                         "device_time": _iso(mapping, flow.ts_request), "host": flow.host,
                         "method": flow.method, "path": flow.path[:200], "scheme": flow.scheme})
    finding_dicts: list[dict[str, Any]] = [dict(f.to_dict()) for f in findings]
    for f in finding_dicts:
        timeline.append({"event": "finding", "host_time": f.get("host_time"), "device_time": f["device_time"],
                         "canary": f["canary"]["item_id"], "destination": f["destination"].get("host")})
    timeline.sort(key=lambda e: float(e.get("host_time") or 0.0))

    bytes_out: dict[str, int] = defaultdict(int)
    for flow in flows:
        bytes_out[f"{flow.host}:{flow.port}"] += len(flow.request_body)
    names = Counter(q.name.rstrip(".") for q in dns)
    artifacts = {}
    for p in sorted(state.out.rglob("*")):
        if p.is_file() and p.name != "report.json":
            artifacts[str(p.relative_to(state.out))] = {"sha256": _sha256(p), "bytes": p.stat().st_size}
    fw = bundle.manifest.firmware
    sc = request.scenario
    report: dict[str, Any] = {
        "$schema": REPORT_SCHEMA,
        "schema_version": 1,
        "analysis_id": request.analysis_id,
        "firmware": {"name": fw.name, "version": fw.version, "sha256": bundle.sha256, "profile": fw.profile},
        "scenario": {"hours": sc.hours, "seed": sc.seed, "contacts": sc.contacts, "sms": sc.sms,
                     "calls": sc.calls, "locale": sc.locale, "profile": sc.profile},
        "clock": {"kind": "event-driven" if fw.profile == "twin" else "stepped",
                  "fallback_rate": settings.clock.fallback_rate, "mapping": mapping.to_dict()},
        "verdict": result.verdict,
        "verdict_reasons": list(result.reasons) + clock_caveats(state.health.get("clock")),
        "findings": finding_dicts,
        # partial: some scans failed; these findings are what they found before failing
        "findings_partial": bool(scan_health.failed),
        "timeline": timeline,
        "network": {
            "dns_names": [{"name": n, "queries": c} for n, c in sorted(names.items())],
            "destinations": sorted({f"{flow.host}:{flow.port}" for flow in flows}),
            "bytes_out_per_destination": dict(sorted(bytes_out.items())),
            "tls_failures": [{"sni": t.sni, "orig_dst": t.orig_dst, "error": t.error,
                              "alert": t.alert, "rejected_certificate": t.rejected_certificate,
                              "handshake_ms": t.handshake_ms, "what": t.what_happened(),
                              "device_time": _iso(mapping, t.ts)} for t in tls_failures],
        },
        "syscalls": _syscall_section(summary, mapping),
        "planting": {"seconds": round(state.plant_seconds, 3)},
        "boot_seconds": round(state.boot_seconds, 3),
        # issue 9: limits hit, OOM kills, killed tracers, floods (sandbox/core/health.py)
        "health": health,
        "artifacts": artifacts,
    }
    _finish_report(report, state.out)
    return BuiltReport(Verdict(result.verdict), report)


def _finish_report(report: dict[str, Any], out: Path) -> None:
    """Check the report against its schema, then write ``report.html`` beside
    where report.json goes.  The HTML is rendered from the report without
    its own entry and only then hashed into ``artifacts``: listing it cannot
    be circular, and report.json vouches for the HTML's bytes."""
    from ..report.html import render_html
    from ..report.validate import validate_report

    report["artifacts"].pop("report.html", None)  # a stale one from an earlier run in this directory
    validate_report(report)
    html_path = out / "report.html"
    html_path.write_text(render_html(report), encoding="utf-8")
    report["artifacts"]["report.html"] = {"sha256": _sha256(html_path), "bytes": html_path.stat().st_size}


def _proc_name(p: Any) -> str:
    argv = " ".join(p.argv) if p.argv else (p.exe or p.comm or "?")
    return f"{argv[:120]} (pid {p.pid})"


def _syscall_section(summary: Summary, mapping: ClockMapping) -> dict[str, Any]:
    return {
        "store_readers": [
            {"process": _proc_name(r.process), "pid": r.process.pid, "store": r.store,
             "device_time": _iso(mapping, r.first_ts)} for r in summary.store_readers()
        ],
        "connections": [
            {"process": _proc_name(c.process), "pid": c.process.pid, "address": c.address, "port": c.port,
             "bytes_sent": c.bytes_sent, "device_time": _iso(mapping, c.first_ts)} for c in summary.connections()
        ],
    }
