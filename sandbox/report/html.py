"""The HTML report: one self-contained file a person can open anywhere.

It is a view of the JSON report and nothing else: inline CSS and SVG, no
script, nothing fetched (a Content-Security-Policy forbids it, so even a
rendering bug cannot turn a hostile excerpt into running code), and the
output depends only on the report, so the same report always renders the
same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .escape import esc
from .html_style import CSS, VERDICT_COLORS
from .html_tables import (
    KIND_LABEL, artifacts_table, destinations_table, dns_table, findings_table, syscalls_tables, tls_table,
)
from .html_timeline import render_timeline
from .view import TimeAxis, destinations, device_hours_origin, leaked_items

__all__ = ["render_html"]

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'")
_PLANTED = (("sms", "sms"), ("contact", "contacts"), ("call_log", "calls"))
_REASONS_SHOWN = 6


def _hours(value: object) -> str:
    return f"{value:g} h" if isinstance(value, (int, float)) else "?"


def _headline(report: Mapping[str, Any], n_items: int, n_dests: int) -> str:
    verdict = report.get("verdict")
    n = len(report.get("findings") or ())
    hours = _hours((report.get("scenario") or {}).get("hours"))
    if verdict == "leak":
        return (f"Personal data left the device: {n_items} planted item{'s' if n_items != 1 else ''} "
                f"in {n} finding{'s' if n != 1 else ''}, sent to {n_dests} destination{'s' if n_dests != 1 else ''}.")
    if verdict == "suspicious":
        return ("No planted item was seen leaving, but a process that read personal data "
                "sent something the sandbox could not read.")
    if verdict == "clean":
        return f"No planted personal data was seen leaving the device in {hours} of device time."
    return "The report has no known verdict."


def _banner(report: Mapping[str, Any], n_items: int, n_dests: int) -> str:
    verdict = str(report.get("verdict", "?"))
    bg, fg, _ = VERDICT_COLORS.get(verdict, ("#475569", "#ffffff", "#e2e8f0"))
    fw = report.get("firmware") or {}
    sc = report.get("scenario") or {}
    planted = ", ".join(f"{sc[key]} {label}" for key, label in (("contacts", "contacts"), ("sms", "SMS"),
                                                                  ("calls", "calls")) if key in sc)
    scenario = (f"{_hours(sc.get('hours'))} of device time, seed {sc.get('seed', '?')}"
                + (f", {planted}" if planted else "")
                + (f", {sc['locale']}" if sc.get("locale") else "")
                + (f", profile {sc['profile']}" if sc.get("profile") else ""))
    return (
        f'<header class="banner" style="background:{bg};color:{fg}">'
        f'<div class="badge">{esc(verdict.upper())}</div>'
        f'<div class="headline">{esc(_headline(report, n_items, n_dests))}</div>'
        f'<div class="fw"><span>Firmware <b>{esc(fw.get("name", "?"))}</b> {esc(fw.get("version", ""))}</span>'
        f'<span>Scenario: {esc(scenario)}</span><br>'
        f'SHA-256 <code>{esc(fw.get("sha256", ""))}</code></div></header>'
    )


def _stats(report: Mapping[str, Any], axis: TimeAxis, n_items: int, n_dests: int) -> str:
    findings = report.get("findings") or ()
    sc = report.get("scenario") or {}
    planted = sum(int(sc.get(key) or 0) for _, key in _PLANTED)
    first = min((h for f in findings if (h := axis.hours(f.get("device_time"))) is not None), default=None)
    readers = (report.get("syscalls") or {}).get("store_readers") or ()
    cards = [
        (str(len(findings)), "findings"),
        (f"{n_items}<small> / {planted}</small>" if planted else str(n_items), "planted items leaked"),
        (str(n_dests), "destinations reached"),
        (str(len({r.get('pid') for r in readers})), "processes read canaries"),
        (f"hour {first:.1f}" if first is not None else "\u2014", "first leak"),
    ]
    return '<div class="stats">' + "".join(
        f'<div class="stat"><div class="n">{n}</div><div class="l">{esc(label)}</div></div>' for n, label in cards
    ) + "</div>"


def _why(report: Mapping[str, Any], items: Mapping[str, set[str]]) -> str:
    sc = report.get("scenario") or {}
    accent = VERDICT_COLORS.get(str(report.get("verdict")), ("#475569",))[0]
    rows = []
    for kind, key in _PLANTED:
        total = sc.get(key)
        got = len(items.get(kind, ()))
        if not isinstance(total, int) or total <= 0:
            continue
        pct = min(100.0, 100.0 * got / total)
        rows.append(f'<div>{esc(KIND_LABEL[kind])}</div><div class="bar"><i style="width:{pct:.1f}%;'
                    f'background:{accent}"></i></div><div class="sub">{got} of {total} leaked</div>')
    coverage = f'<h3>Planted items that leaked</h3><div class="coverage">{"".join(rows)}</div>' if rows else ""
    reasons = [str(r) for r in report.get("verdict_reasons") or ()]
    shown = "".join(f"<li>{esc(r)}</li>" for r in reasons[:_REASONS_SHOWN])
    rest = reasons[_REASONS_SHOWN:]
    more = (f"<details><summary>{len(rest)} more reason(s)</summary><ul class=\"reasons\">"
            + "".join(f"<li>{esc(r)}</li>" for r in rest) + "</ul></details>") if rest else ""
    listing = f'<h3>Reasons</h3><ul class="reasons">{shown}</ul>{more}' if reasons else ""
    return f'<section class="card"><h2>Why this verdict</h2>{listing}{coverage}</section>'


def render_html(report: Mapping[str, Any]) -> str:
    """The whole HTML document for ``report`` (a v1 report dict)."""
    axis = TimeAxis(device_hours_origin(report))
    findings = [f for f in report.get("findings") or () if isinstance(f, Mapping)]
    items = leaked_items(findings)
    n_items = sum(len(v) for v in items.values())
    dests = destinations(report, axis)
    n_dests = sum(1 for d in dests if d.findings) if findings else len(dests)
    fw = report.get("firmware") or {}
    network = report.get("network") or {}
    title = (f"{str(report.get('verdict', '?')).upper()} \u2014 {fw.get('name', '?')} {fw.get('version', '')} "
             f"\u2014 Honeyphone report {report.get('analysis_id', '')}")
    origin = ""
    for ev in report.get("timeline") or ():
        if ev.get("event") in ("firmware_started", "horizon"):
            origin = "Hour 0 is when the firmware started; the dashed line is the scenario's horizon."
            break
    tls = network.get("tls_failures") or []
    tls_html = f"<h3>TLS handshakes that failed</h3>{tls_table(tls, axis)}" if tls else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f'<div class="topline"><span><b>HONEYPHONE</b> \u00b7 analysis report</span>'
        f'<span>analysis <code>{esc(report.get("analysis_id", ""))}</code></span></div>'
        + _banner(report, n_items, n_dests)
        + _stats(report, axis, n_items, n_dests)
        + _why(report, items)
        + '<section class="card"><h2>Timeline</h2>'
        f'<p class="sub">Device hours since the firmware started, per process and per destination. {esc(origin)} '
        "Hover a mark for details.</p>"
        f'<div class="tl-wrap">{render_timeline(report, axis)}</div></section>'
        + f'<section class="card"><h2>Leaked items</h2>{findings_table(findings, axis)}</section>'
        + '<section class="card"><h2>Destinations</h2>'
        f"{destinations_table(dests)}<h3>DNS names looked up</h3>{dns_table(network.get('dns_names') or [])}"
        f"{tls_html}</section>"
        + f'<section class="card"><h2>Device activity</h2>{syscalls_tables(report.get("syscalls") or {}, axis)}</section>'
        + f'<section class="card"><h2>Artifacts</h2>{artifacts_table(report.get("artifacts") or {})}</section>'
        + f'<footer>Rendered from report.json ({esc(report.get("$schema", ""))}). Self-contained: no scripts, '
        "nothing fetched. Device times are the device's simulated clock, in UTC.</footer>"
        "</main></body></html>\n"
    )
