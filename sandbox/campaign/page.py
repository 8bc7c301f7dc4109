"""A self-contained HTML page of the campaign: the table, the diff, the first finding per leak.

One file with inline CSS and no scripts or remote assets, so it can be
attached to a CI run or mailed and still open anywhere.  Every string from a
report is escaped: firmware names, hosts and error texts are attacker input.
Per-version report files saved next to it are linked by relative path.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from .diff import VersionDiff, diff_campaign, group_leaks
from .model import Campaign, VersionResult
from .table import verdict_word

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:72em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.35em .7em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.leak{color:#fff;background:#b00020;font-weight:bold}.clean{background:#d7f5dd}
.suspicious{background:#ffe9a8}.incomplete{background:#ddd}code{font-size:13px}ul{margin:.3em 0}
.muted{color:#666}
"""


def _h(text: object) -> str:
    return escape(str(text), quote=True)


def _css_class(r: VersionResult) -> str:
    return r.verdict.value if r.completed and r.verdict is not None else "incomplete"


def _link(path: str, base: Path | None, text: str) -> str:
    href = path
    if base is not None:
        try:
            href = os.path.relpath(path, base)
        except ValueError:
            href = path
    return f'<a href="{_h(Path(href).as_posix())}">{_h(text)}</a>'


def _row(r: VersionResult, baseline: bool, base: Path | None) -> str:
    label = _h(r.label) + (' <span class="muted">(baseline)</span>' if baseline else "")
    leaked = ", ".join(r.leaked_kinds) or "-"
    dests = "<br>".join(_h(d) for d in r.destinations) or "-"
    files = " ".join(_link(p, base, k) for k, p in sorted(r.files.items())) or "-"
    if not r.completed:
        leaked, dests = "-", _h(r.error or "did not complete")
    return (f'<tr><td>{label}</td><td class="{_css_class(r)}">{_h(verdict_word(r))}</td>'
            f"<td>{_h(leaked)}</td><td>{dests}</td><td>{files}</td><td>{r.seconds:.0f}s</td></tr>")


def _diff(d: VersionDiff) -> str:
    head = f"<h3>{_h(d.version)} vs baseline {_h(d.baseline)}</h3>"
    if not d.comparable:
        return head + "<p>Not comparable: an analysis did not complete.</p>"
    items = [
        ("New leaks", group_leaks(d.new_leaks) or "none"),
        ("Fixed", group_leaks(d.fixed_leaks) or "none"),
        ("Still leaks", group_leaks(d.kept_leaks) or "none"),
        ("New destinations", ", ".join(d.new_destinations) or "none"),
        ("No longer contacted", ", ".join(d.dropped_destinations) or "none"),
    ]
    return head + "<ul>" + "".join(f"<li><b>{_h(k)}:</b> {_h(v)}</li>" for k, v in items) + "</ul>"


def render_page(campaign: Campaign, base: Path | None = None) -> str:
    """The HTML text; ``base`` is the page's directory, for relative links to report files."""
    s = campaign.scenario
    rows = "".join(_row(r, r is campaign.baseline, base) for r in campaign.results)
    diffs = "".join(_diff(d) for d in diff_campaign(campaign))
    leaks = "".join(
        f"<h3>{_h(r.label)}</h3><ul>" + "".join(f"<li>{_h(d.describe())}</li>" for d in r.leaks) + "</ul>"
        for r in campaign.results if r.completed and r.leaks
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Honeyphone campaign {_h(campaign.campaign_id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Honeyphone campaign</h1><p class=\"muted\">{len(campaign.results)} version(s), same scenario: "
        f"{s.hours:g} device hours, seed {s.seed}, {s.contacts} contacts, {s.sms} SMS, {s.calls} calls, "
        f"locale {_h(s.locale)}, profile {_h(s.profile)}.</p>"
        "<table><tr><th>Version</th><th>Verdict</th><th>Leaked</th><th>Destinations</th><th>Reports</th>"
        f"<th>Time</th></tr>{rows}</table>"
        + (f"<h2>Against the baseline</h2>{diffs}" if diffs else "")
        + (f"<h2>Leaks (first finding of each kind and host)</h2>{leaks}" if leaks else "")
        + "</body></html>\n"
    )
