"""The report's tables: leaked items with their evidence, destinations,
device activity and artifacts.

Every cell goes through :func:`esc` (or :func:`highlight` for excerpts):
nothing from the report is trusted to be HTML.  Long lists are shown whole
-- a report is a record -- except DNS names, capped because exfiltration
over DNS can mint thousands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .escape import esc, esc_host, highlight
from .view import Dest, TimeAxis, parse_time

__all__ = [
    "artifacts_table", "destinations_table", "dns_table", "findings_table", "fmt_bytes", "fmt_device_time",
    "syscalls_tables", "tls_table",
]

MAX_DNS_ROWS = 200
KIND_LABEL = {"sms": "SMS", "contact": "Contact", "call_log": "Call log"}
# Fixed column widths: the findings table must not be stretched past the page
# by one 200-character DNS name or excerpt the firmware chose.
_FINDING_COLUMNS = (
    ("#", "44px"), ("Kind", "82px"), ("Item", "122px"), ("Value", "16%"), ("Destination", "17%"),
    ("Channel", "72px"), ("Encoding", "118px"), ("Device time (UTC)", "150px"), ("Process", "auto"),
)


def fmt_bytes(n: object) -> str:
    if not isinstance(n, int) or isinstance(n, bool):
        return "\u2014"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024.0
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def fmt_device_time(value: object, axis: TimeAxis) -> str:
    """HTML: the device time in UTC, and its device hour under it."""
    t = parse_time(value)
    if t is None:
        return f'<span class="mono">{esc(value if value is not None else "")}</span>'
    when = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    hours = axis.hours(value)
    rel = f'<div class="sub">hour {hours:.2f}</div>' if hours is not None else ""
    return f'<span class="nowrap">{esc(when)}</span>{rel}'


def _table(head: Sequence[str], rows: Sequence[str], cls: str = "", num: Sequence[int] = ()) -> str:
    """A table; ``num`` are the indexes of right-aligned (numeric) columns."""
    ths = "".join(f'<th class="num">{h}</th>' if i in num else f"<th>{h}</th>" for i, h in enumerate(head))
    body = "".join(rows) if rows else f'<tr><td colspan="{len(head)}" class="muted">none</td></tr>'
    return f'<div class="table-wrap"><table class="{cls}"><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>'


def _chips(items: Sequence[object], empty: str) -> str:
    if not items:
        return f'<span class="chip chip-plain">{esc(empty)}</span>'
    return '<span class="arrow">\u2192</span>'.join(f'<span class="chip">{esc(i)}</span>' for i in items)


def _process_cell(p: object) -> str:
    if not isinstance(p, Mapping):
        return '<span class="muted">unknown</span>'
    argv = " ".join(str(a) for a in p.get("argv") or ()) or str(p.get("exe") or "")
    desc = p.get("description") or f"{p.get('name', '?')} (pid {p.get('pid', '?')})"
    return f'<span title="{esc(argv)}">{esc(desc)}</span>' + (f'<div class="sub mono clip">{esc(argv)}</div>' if argv else "")


def _evidence(ev: Mapping[str, Any], value: str) -> str:
    enc = ev.get("encoding") or []
    where = f"{ev.get('artifact', '?')} \u00b7 {ev.get('locator', '')} @ {ev.get('offset', '?')}"
    chain = " \u2192 ".join(str(e) for e in enc) if enc else "clear text"
    return (f'<div class="evidence"><div class="ev-where">{esc(where)} \u00b7 {esc(ev.get("form", ""))} '
            f'\u00b7 {esc(chain)}</div><code class="excerpt">'
            f'{highlight(str(ev.get("excerpt", "")), str(ev.get("value", value)))}</code></div>')


def _finding_rows(i: int, f: Mapping[str, Any], axis: TimeAxis) -> str:
    c = f.get("canary") or {}
    d = f.get("destination") or {}
    kind = str(c.get("kind", "?"))
    host = d.get("host")
    dest = f"{host}:{d.get('port', '?')}" if host else f"{d.get('ip', '?')}:{d.get('port', '?')}"
    ip = f'<div class="sub mono">{esc(d.get("ip", ""))}</div>' if host and d.get("ip") else ""
    value = str(c.get("value", ""))
    evidence = [e for e in f.get("evidence") or () if isinstance(e, Mapping)]
    first = _evidence(evidence[0], value) if evidence else '<div class="muted">no excerpt</div>'
    rest = ""
    omitted = f.get("evidence_omitted") or 0
    if len(evidence) > 1 or omitted:
        more = "".join(_evidence(e, value) for e in evidence[1:])
        note = f'<div class="sub">{esc(omitted)} more cop{"y" if omitted == 1 else "ies"} not kept</div>' if omitted else ""
        n = len(evidence) - 1 + int(omitted)
        rest = f"<details><summary>{n} more cop{'y' if n == 1 else 'ies'}</summary>{more}{note}</details>"
    return (
        f'<tbody class="finding"><tr>'
        f'<td class="num">{i}</td>'
        f'<td><span class="kind kind-{esc(kind)}">{esc(KIND_LABEL.get(kind, kind))}</span></td>'
        f'<td><span class="mono">{esc(c.get("item_id", ""))}</span><div class="sub nowrap">{esc(c.get("field", ""))}'
        f' \u00b7 {esc(c.get("form", ""))}</div></td>'
        f'<td class="value"><mark class="val">{esc(value)}</mark></td>'
        f'<td class="host">{esc_host(dest)}{ip}</td>'
        f'<td><span class="chan chan-{esc(f.get("channel", ""))}">{esc(f.get("channel", ""))}</span></td>'
        f'<td>{_chips(list(f.get("encoding") or []), "clear text")}</td>'
        f'<td>{fmt_device_time(f.get("device_time"), axis)}</td>'
        f'<td class="proc">{_process_cell(f.get("process"))}</td>'
        f'</tr><tr class="ev-row"><td></td><td colspan="8">{first}{rest}</td></tr></tbody>'
    )


def findings_table(findings: Sequence[Mapping[str, Any]], axis: TimeAxis) -> str:
    """Leaked items, earliest first, each with its first evidence excerpt
    (the value in ``<mark>``) and the other copies folded away."""
    if not findings:
        return '<p class="muted">No planted item was seen leaving the device.</p>'
    ordered = sorted(findings, key=lambda f: (parse_time(f.get("device_time")) or 0.0,
                                              str((f.get("canary") or {}).get("kind", "")),
                                              str((f.get("canary") or {}).get("item_id", ""))))
    ths = "".join(f'<th style="width:{w}">{h}</th>' for h, w in _FINDING_COLUMNS)
    body = "".join(_finding_rows(i + 1, f, axis) for i, f in enumerate(ordered))
    return f'<div class="table-wrap"><table class="findings"><thead><tr>{ths}</tr></thead>{body}</table></div>'


def destinations_table(dests: Sequence[Dest]) -> str:
    rows = []
    for d in dests:
        names = f'<div class="sub">{len(d.names)} distinct names</div>' if len(d.names) > 1 else ""
        ips = ", ".join(sorted(d.ips)) or "\u2014"
        port = "\u2014" if d.port is None else str(d.port)
        cls = ' class="hot"' if d.findings else ""
        rows.append(
            f"<tr{cls}><td class=\"host\">{esc_host(d.host)}{names}</td><td class=\"mono\">{esc(ips)}</td>"
            f'<td class="num mono">{esc(port)}</td>'
            f"<td>{esc(', '.join(sorted(c for c in d.channels if c)) or chr(0x2014))}</td>"
            f'<td class="num">{esc(fmt_bytes(d.bytes_out))}</td><td class="num">{d.flows}</td>'
            f'<td class="num">{d.findings}</td><td class="num">{len(d.items)}</td></tr>'
        )
    return _table(("Host", "IP", "Port", "Channels", "Body bytes out", "Flows", "Findings", "Items leaked"), rows,
                  "dests", num=(2, 4, 5, 6, 7))


def dns_table(names: Sequence[Mapping[str, Any]]) -> str:
    ordered = sorted(names, key=lambda n: (-int(n.get("queries") or 0), str(n.get("name", ""))))
    rows = [f'<tr><td class="host">{esc_host(n.get("name", ""))}</td><td class="num">{esc(n.get("queries", ""))}</td></tr>'
            for n in ordered[:MAX_DNS_ROWS]]
    more = len(ordered) - MAX_DNS_ROWS
    note = f'<p class="muted">{more} more names in report.json.</p>' if more > 0 else ""
    return _table(("Name", "Queries"), rows, "narrow", num=(1,)) + note


def tls_table(failures: Sequence[Mapping[str, Any]], axis: TimeAxis) -> str:
    rows = [f'<tr><td class="host">{esc_host(t.get("sni") or "(no SNI)")}</td><td class="mono">{esc(t.get("orig_dst") or "")}</td>'
            f'<td>{esc(t.get("error", ""))}</td><td>{fmt_device_time(t.get("device_time"), axis)}</td></tr>'
            for t in failures]
    return _table(("SNI", "Destination", "Error", "Device time (UTC)"), rows)


def syscalls_tables(syscalls: Mapping[str, Any], axis: TimeAxis) -> str:
    readers = [f'<tr><td class="proc mono">{esc(r.get("process", ""))}</td>'
               f'<td><span class="store">{esc(r.get("store", ""))}</span></td>'
               f'<td>{fmt_device_time(r.get("device_time"), axis)}</td></tr>'
               for r in syscalls.get("store_readers") or ()]
    conns = [f'<tr><td class="proc mono">{esc(c.get("process", ""))}</td>'
             f'<td class="mono">{esc(c.get("address", ""))}:{esc(c.get("port", ""))}</td>'
             f'<td class="num">{esc(fmt_bytes(c.get("bytes_sent")))}</td>'
             f'<td>{fmt_device_time(c.get("device_time"), axis)}</td></tr>'
             for c in syscalls.get("connections") or ()]
    return ("<h3>Canary stores read</h3>" + _table(("Process", "Store", "First read (UTC)"), readers)
            + "<h3>Connections opened</h3>" + _table(("Process", "Address", "Bytes sent", "First (UTC)"), conns, num=(2,)))


def artifacts_table(artifacts: Mapping[str, Any]) -> str:
    rows = []
    for name, meta in sorted(artifacts.items()):
        meta = meta if isinstance(meta, Mapping) else {}
        rows.append(f'<tr><td class="mono">{esc(name)}</td><td class="num">{esc(fmt_bytes(meta.get("bytes")))}</td>'
                    f'<td class="mono hash">{esc(meta.get("sha256", ""))}</td></tr>')
    return _table(("File", "Size", "SHA-256"), rows, num=(1,))
