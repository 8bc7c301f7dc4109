"""The short human summary printed after an analysis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any


def render_summary(report: Mapping[str, Any]) -> str:
    fw = report.get("firmware", {})
    verdict = str(report.get("verdict", "?")).upper()
    findings = list(report.get("findings", []))
    lines = [f"{fw.get('name', '?')} {fw.get('version', '?')}: {verdict}"]
    reasons = list(report.get("verdict_reasons", []))
    for reason in reasons[:3]:
        lines.append(f"  reason: {reason}")
    if len(reasons) > 3:
        lines.append(f"  ... {len(reasons) - 3} more reasons in the report")
    if findings:
        kinds = Counter(f["canary"]["kind"] for f in findings)
        lines.append("  leaked: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
        by_dest: dict[tuple[str, str, int], list[Mapping[str, Any]]] = {}
        for f in findings:
            d = f["destination"]
            by_dest.setdefault((d.get("host") or "?", d.get("ip") or "?", int(d.get("port") or 0)), []).append(f)
        for (host, ip, port), items in sorted(by_dest.items()):
            first = min(str(i["device_time"]) for i in items)
            chans = ",".join(sorted({str(i["channel"]) for i in items}))
            encs = sorted({"+".join(i["encoding"]) or "clear" for i in items})
            procs = sorted({_process_text(i["process"]) for i in items if i.get("process")})
            lines.append(
                f"  -> {host} ({ip}:{port}) over {chans}: {len(items)} findings, first at device {first}, "
                f"encodings {', '.join(encs[:4])}" + (f", by {', '.join(procs[:2])}" if procs else "")
            )
    return "\n".join(lines)


def _process_text(process: Any) -> str:
    if isinstance(process, Mapping):
        argv = process.get("argv") or []
        name = " ".join(str(a) for a in argv[-1:]) or str(process.get("name") or "?")
        return f"{name} (pid {process.get('pid')})"
    return str(process)
