"""The report's timeline: an inline SVG, in device hours since the firmware
started, one row per process and one per destination.

Generated here as plain SVG text (no chart library, no script) so the HTML
stays one offline file and looks the same in every browser and in print.
Markers that fall within a few pixels of each other on a row are drawn once
with a count: a firmware that uploads a whole address book in one burst is
one mark labelled "×160", not a smudge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .escape import esc
from .view import Dest, Mark, Proc, TimeAxis, destinations, processes

__all__ = ["render_timeline"]

WIDTH = 1120
LABEL_X = 12
PLOT_X0 = 250
PLOT_X1 = WIDTH - 28
AXIS_H = 34
SECTION_H = 26
ROW_H = 40
LEGEND_H = 40
MAX_ROWS = 30  # per section; the tables below list everything
CLUSTER_PX = 8.0
_STEPS = (0.25, 0.5, 1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 48.0, 72.0, 168.0, 336.0)

COLORS = {
    "read": "#2563eb",
    "leak": "#dc2626",
    "flow": "#0d9488",
    "connect": "#64748b",
    "tls": "#d97706",
}
_LEGEND = (
    ("read", "canary store read"),
    ("connect", "connection opened"),
    ("flow", "network flow"),
    ("tls", "TLS handshake failed"),
    ("leak", "leak (canary left the device)"),
)
# Vertical offset in a row: what a row did above its activity line, connections
# on it, leaks below, so a read and a leak at the same hour are both visible.
_LANE = {"read": -9.0, "flow": -9.0, "tls": -9.0, "connect": 0.0, "leak": 9.0}


# A row: its marks, and (title, detail line, tooltip).
_RowData = tuple[list[Mark], tuple[str, str, str]]


@dataclass(frozen=True)
class _Scale:
    lo: float
    hi: float

    def x(self, hours: float) -> float:
        return PLOT_X0 + (hours - self.lo) / (self.hi - self.lo) * (PLOT_X1 - PLOT_X0)


def _step(span: float) -> float:
    """Gridline spacing: the smallest nice step giving at most 12 intervals
    (every 12 h over four days, every hour over eight hours)."""
    for step in _STEPS:
        if span / step <= 12:
            return step
    return math.ceil(span / 12 / 168) * 168


def _fmt_h(hours: float) -> str:
    return f"{hours:g} h" if abs(hours - round(hours)) > 1e-9 else f"{round(hours)} h"


def _ellipsize(text: str, limit: int, *, keep: str = "end") -> str:
    """Cut ``text`` to ``limit`` characters; ``keep="end"`` keeps the tail
    (a script's path, a domain), ``keep="start"`` the head."""
    if len(text) <= limit:
        return text
    return "\u2026" + text[-(limit - 1):] if keep == "end" else text[: limit - 1] + "\u2026"


def _marker(kind: str, x: float, y: float, title: str, count: int) -> str:
    color = COLORS[kind]
    tip = f"<title>{esc(title)}</title>"
    if kind == "read":
        shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{color}" stroke="#fff" stroke-width="1.5"/>'
    elif kind == "connect":
        shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.8" fill="#fff" stroke="{color}" stroke-width="1.8"/>'
    elif kind == "flow":
        shape = (f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" rx="1.5" fill="{color}" '
                 'stroke="#fff" stroke-width="1.2"/>')
    elif kind == "tls":
        shape = (f'<path d="M{x:.1f} {y - 6:.1f} L{x + 6:.1f} {y + 5:.1f} L{x - 6:.1f} {y + 5:.1f} Z" '
                 f'fill="{color}" stroke="#fff" stroke-width="1.2"/>')
    else:
        shape = (f'<path d="M{x:.1f} {y - 7:.1f} L{x + 6.5:.1f} {y:.1f} L{x:.1f} {y + 7:.1f} '
                 f'L{x - 6.5:.1f} {y:.1f} Z" fill="{color}" stroke="#fff" stroke-width="1.2"/>')
    badge = ""
    if count > 1:
        badge = (f'<text x="{x + 9:.1f}" y="{y + 4:.1f}" class="tl-count" fill="{color}">'
                 f"\u00d7{count}</text>")
    return f'<g class="tl-mark tl-{kind}">{tip}{shape}{badge}</g>'


def _clusters(marks: Sequence[Mark], scale: _Scale) -> list[tuple[float, list[Mark]]]:
    """Marks of one kind grouped by proximity on screen: (x, members).  A
    mark joins the cluster before it unless it clears that cluster's marker
    and its "×N" label, so counts never sit on top of the next mark."""
    out: list[tuple[float, list[Mark]]] = []
    for mark in sorted(marks, key=lambda m: m.hours):
        x = scale.x(mark.hours)
        if out:
            x_prev, members = out[-1]
            room = CLUSTER_PX + (9 + 7 * len(f"x{len(members)}") if len(members) > 1 else 0)
            if x - x_prev <= room:
                members.append(mark)
                continue
        out.append((x, [mark]))
    return out


def _row_marks(marks: Sequence[Mark], scale: _Scale, y: float) -> str:
    parts: list[str] = []
    if marks:
        xs = [scale.x(m.hours) for m in marks]
        if max(xs) - min(xs) > 4:
            parts.append(f'<line x1="{min(xs):.1f}" y1="{y:.1f}" x2="{max(xs):.1f}" y2="{y:.1f}" '
                         'class="tl-span"/>')
    for kind in ("connect", "flow", "tls", "read", "leak"):
        lane = y + _LANE[kind]
        for x, members in _clusters([m for m in marks if m.kind == kind], scale):
            first = members[0].hours
            shown = "; ".join(dict.fromkeys(m.label for m in members[:6]))
            more = f"; \u2026 {len(members) - 6} more" if len(members) > 6 else ""
            when = _fmt_h(round(first, 2)) if len(members) == 1 else \
                f"{_fmt_h(round(first, 2))}\u2013{_fmt_h(round(members[-1].hours, 2))}"
            title = f"{when}: {len(members)} \u00d7 {dict(_LEGEND)[kind]} \u2014 {shown}{more}"
            parts.append(_marker(kind, x, lane, title, len(members)))
    return "".join(parts)


def _row(y_top: float, index: int, title: str, detail: str, tooltip: str,
         marks: Sequence[Mark], scale: _Scale) -> tuple[str, str]:
    """(stripe and label, marks): drawn below and above the gridlines."""
    y = y_top + ROW_H / 2
    zebra = f'<rect x="0" y="{y_top:.1f}" width="{WIDTH}" height="{ROW_H}" class="tl-zebra"/>' if index % 2 else ""
    label = (f'<g><title>{esc(tooltip)}</title>'
             f'<text x="{LABEL_X}" y="{y - 3:.1f}" class="tl-label">{esc(title)}</text>'
             f'<text x="{LABEL_X}" y="{y + 11:.1f}" class="tl-detail">{esc(detail)}</text></g>')
    return zebra + label, _row_marks(marks, scale, y)


def _proc_row(proc: Proc) -> tuple[str, str, str]:
    argv = proc.argv
    first, _, rest = argv.partition(" ")
    shown = rest if rest and first.rsplit("/", 1)[-1] == proc.name else argv
    title = _ellipsize(proc.label, 30, keep="start")
    reads = f"read {', '.join(sorted(proc.reads))}; " if proc.reads else ""
    return title, _ellipsize(shown, 34), f"{proc.label}: {argv}\n{reads}{proc.findings} finding(s)"


def _dest_row(dest: Dest) -> tuple[str, str, str]:
    bits = [", ".join(sorted(dest.ips))] if dest.ips else []
    bits += sorted(c for c in dest.channels if c)
    if len(dest.names) > 1:
        bits.append(f"{len(dest.names)} names")
    tooltip = f"{dest.label}\n" + "\n".join(sorted(dest.names)[:10])
    return _ellipsize(dest.label, 30), _ellipsize(" \u00b7 ".join(bits), 34, keep="start"), tooltip


def _grid(scale: _Scale, horizon: float | None, y0: float, y1: float) -> str:
    span = scale.hi - scale.lo
    step = _step(span)
    parts: list[str] = []
    if scale.lo < 0:
        x0 = scale.x(scale.lo)
        parts.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{scale.x(0) - x0:.1f}" height="{y1 - y0:.1f}" '
                     'class="tl-before"><title>before the firmware started</title></rect>')
    k = math.ceil(scale.lo / step - 1e-9)
    while k * step <= scale.hi + 1e-9:
        h = k * step
        x = scale.x(h)
        major = abs(h / 24 - round(h / 24)) < 1e-9 if step < 24 else True
        cls = "tl-grid-major" if major else "tl-grid"
        parts.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y1:.1f}" class="{cls}"/>')
        parts.append(f'<text x="{x:.1f}" y="{y0 - 10:.1f}" class="tl-tick" text-anchor="middle">'
                     f"{esc(_fmt_h(h))}</text>")
        k += 1
    if horizon is not None and scale.lo <= horizon <= scale.hi:
        x = scale.x(horizon)
        parts.append(f'<line x1="{x:.1f}" y1="{y0 - 4:.1f}" x2="{x:.1f}" y2="{y1:.1f}" class="tl-horizon">'
                     f"<title>horizon: {esc(_fmt_h(horizon))} of device time</title></line>")
    return "".join(parts)


def _legend(y: float, kinds: set[str]) -> str:
    x = float(PLOT_X0)
    parts = []
    for kind, text in _LEGEND:
        if kind not in kinds and kind in ("tls", "connect"):
            continue  # only rare kinds are left out when absent; the core ones always explain the chart
        parts.append(_marker(kind, x, y, text, 1))
        parts.append(f'<text x="{x + 11:.1f}" y="{y + 4:.1f}" class="tl-legend">{esc(text)}</text>')
        x += 24 + 6.6 * len(text)
    parts.append(f'<line x1="{x:.1f}" y1="{y - 7:.1f}" x2="{x:.1f}" y2="{y + 7:.1f}" class="tl-horizon"/>')
    parts.append(f'<text x="{x + 8:.1f}" y="{y + 4:.1f}" class="tl-legend">horizon</text>')
    return "".join(parts)


def render_timeline(report: Mapping[str, Any], axis: TimeAxis) -> str:
    """The timeline section's SVG (an empty-state note when times are unknown)."""
    procs = processes(report, axis)
    dests = [d for d in destinations(report, axis) if d.marks]
    scenario = report.get("scenario") or {}
    horizon = scenario.get("hours")
    horizon_h = float(horizon) if isinstance(horizon, (int, float)) and horizon > 0 else None
    sections: list[tuple[str, int, list[_RowData]]] = [
        ("PROCESSES", len(procs), [(p.marks, _proc_row(p)) for p in procs[:MAX_ROWS]]),
        ("DESTINATIONS", len(dests), [(d.marks, _dest_row(d)) for d in dests[:MAX_ROWS]]),
    ]
    all_hours = [m.hours for _, total, rows in sections for marks, _ in rows for m in marks]
    if axis.origin is None or (horizon_h is None and not all_hours):
        return '<p class="muted">No device times to place on a timeline.</p>'
    lo = min([0.0, *all_hours])
    hi = max([horizon_h or 0.0, *all_hours])
    if hi - lo <= 0:
        hi = lo + 1.0
    pad = (hi - lo) * 0.01
    scale = _Scale(lo - (pad if lo < 0 else 0.0), hi + (pad if hi > (horizon_h or 0.0) else 0.0))

    below: list[str] = []
    above: list[str] = []
    y = float(AXIS_H)
    kinds: set[str] = set()
    for title, total, rows in sections:
        hidden = total - len(rows)
        note = f" (first {len(rows)}; {hidden} more in the tables below)" if hidden > 0 else ""
        empty = " \u2014 none" if not rows else ""
        below.append(f'<text x="{LABEL_X}" y="{y + 17:.1f}" class="tl-section">{title}{esc(note)}{empty}</text>')
        y += SECTION_H
        for i, (marks, (name, detail, tip)) in enumerate(rows):
            bg, fg = _row(y, i, name, detail, tip, marks, scale)
            below.append(bg)
            above.append(fg)
            kinds.update(m.kind for m in marks)
            y += ROW_H
    height = y + LEGEND_H
    desc = (f"Device hours {_fmt_h(round(scale.lo, 2))} to {_fmt_h(round(scale.hi, 2))}: "
            f"{len(procs)} process row(s), {len(dests)} destination row(s).")
    return (f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
            f'width="{WIDTH}" height="{height:.0f}" role="img" aria-label="{esc(desc)}">'
            f"<title>{esc(desc)}</title>"
            f'<rect x="0" y="0" width="{WIDTH}" height="{height:.0f}" fill="#fff"/>'
            + "".join(below) + _grid(scale, horizon_h, float(AXIS_H), y) + "".join(above)
            + _legend(y + LEGEND_H / 2 + 2, kinds) + "</svg>")
