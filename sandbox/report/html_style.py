"""The report's stylesheet, inlined into every HTML report.

Inline because the report must open offline, from a mail attachment or an
evidence locker, years later: no fonts, images or scripts are fetched
(system font stacks only).  Print rules keep a finding and its evidence on
one page.
"""

from __future__ import annotations

__all__ = ["CSS", "VERDICT_COLORS"]

# verdict -> (banner background, banner text, accent)
VERDICT_COLORS = {
    "leak": ("#b91c1c", "#ffffff", "#fee2e2"),
    "suspicious": ("#b45309", "#ffffff", "#fef3c7"),
    "clean": ("#15803d", "#ffffff", "#dcfce7"),
}

CSS = """
:root {
  --ink: #0f172a; --ink-2: #334155; --muted: #64748b; --line: #e2e8f0; --bg: #f1f5f9; --card: #ffffff;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "Liberation Sans",
          "DejaVu Sans", Arial, sans-serif;
  --mono: ui-monospace, "SFMono-Regular", "Cascadia Mono", "Liberation Mono", "DejaVu Sans Mono", Menlo,
          Consolas, monospace;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--ink); font: 14px/1.45 var(--sans); -webkit-font-smoothing: antialiased; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 24px 48px; }
h1, h2, h3 { line-height: 1.2; margin: 0; }
h2 { font-size: 18px; font-weight: 650; margin: 0 0 12px; }
h3 { font-size: 14px; font-weight: 650; margin: 18px 0 8px; color: var(--ink-2); }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px;
               margin-top: 18px; box-shadow: 0 1px 2px rgba(15, 23, 42, .04); }
.muted { color: var(--muted); }
.sub { color: var(--muted); font-size: 12px; }
.mono, code { font-family: var(--mono); font-size: 12px; }
.nowrap { white-space: nowrap; }
.topline { display: flex; justify-content: space-between; align-items: baseline; color: var(--muted);
           font-size: 13px; margin-bottom: 10px; }
.topline b { color: var(--ink); font-weight: 650; letter-spacing: .02em; }

/* verdict banner */
.banner { border-radius: 12px; padding: 22px 26px; display: grid; grid-template-columns: auto 1fr; gap: 8px 26px;
          align-items: center; box-shadow: 0 2px 8px rgba(15, 23, 42, .12); }
.banner .badge { font-size: 40px; font-weight: 800; letter-spacing: .06em; line-height: 1; padding: 14px 20px;
                 border: 3px solid currentColor; border-radius: 10px; grid-row: span 2; }
.banner .headline { font-size: 20px; font-weight: 650; }
.banner .fw { font-size: 13px; opacity: .95; }
.banner .fw code { font-size: 12px; background: rgba(255, 255, 255, .16); padding: 1px 6px; border-radius: 4px;
                   word-break: break-all; }
.banner .fw span { margin-right: 18px; white-space: nowrap; }

/* stat cards */
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-top: 18px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
.stat .n { font-size: 26px; font-weight: 700; line-height: 1.1; }
.stat .l { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.coverage { display: grid; grid-template-columns: 90px 1fr 110px; gap: 6px 14px; align-items: center;
            max-width: 640px; }
.bar { height: 10px; background: #e2e8f0; border-radius: 5px; overflow: hidden; }
.bar i { display: block; height: 100%; border-radius: 5px; }
ul.reasons { margin: 0; padding-left: 20px; }
ul.reasons li { margin: 3px 0; }
details > summary { cursor: pointer; color: #1d4ed8; font-size: 12px; margin: 4px 0 0; }

/* timeline */
.tl-wrap { overflow-x: auto; }
svg.timeline { display: block; max-width: 100%; height: auto; font-family: var(--sans); }
.tl-zebra { fill: #f8fafc; }
.tl-label { font-size: 12.5px; font-weight: 600; fill: #0f172a; }
.tl-detail { font-size: 11px; fill: #64748b; font-family: var(--mono); }
.tl-section { font-size: 11px; font-weight: 700; fill: #475569; letter-spacing: .08em; }
.tl-grid { stroke: #e2e8f0; stroke-width: 1; }
.tl-grid-major { stroke: #cbd5e1; stroke-width: 1.2; }
.tl-tick { font-size: 11px; fill: #475569; }
.tl-horizon { stroke: #334155; stroke-width: 1.5; stroke-dasharray: 5 4; }
.tl-before { fill: #f1f5f9; }
.tl-span { stroke: #cbd5e1; stroke-width: 2; stroke-linecap: round; }
.tl-count { font-size: 11px; font-weight: 700; }
.tl-legend { font-size: 12px; fill: #334155; }

/* tables */
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted);
     font-weight: 650; padding: 8px 10px; border-bottom: 2px solid var(--line); white-space: nowrap; }
td { padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.host { font-family: var(--mono); font-size: 12px; overflow-wrap: break-word; max-width: 300px; }
td.proc { max-width: 220px; }
.clip { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 220px; }
table.narrow { width: auto; min-width: 50%; }
tr.hot td:first-child { box-shadow: inset 3px 0 0 #dc2626; }
td.hash { font-size: 11px; color: var(--ink-2); word-break: break-all; }
table.findings { table-layout: fixed; }
table.findings td { border-bottom: none; overflow-wrap: anywhere; }
table.findings td.host, table.findings td.value, table.findings td.proc { max-width: none; min-width: 0; }
table.findings tbody.finding { border-bottom: 1px solid var(--line); break-inside: avoid; }
table.findings tbody.finding:nth-of-type(even) { background: #fafbfc; }
table.findings td.num { color: var(--muted); overflow-wrap: normal; }
td.value { min-width: 150px; max-width: 240px; overflow-wrap: break-word; }
mark { background: #fde047; color: #111827; padding: 0 2px; border-radius: 3px; }
mark.val { background: #fef9c3; font-family: var(--mono); font-size: 12px; }
tr.ev-row td { padding-top: 0; padding-bottom: 8px; }
.evidence { margin-top: 2px; }
.ev-where { font-size: 11px; color: var(--muted); font-family: var(--mono); word-break: break-all; }
code.excerpt { display: block; white-space: pre-wrap; word-break: break-all; background: #f8fafc;
               border: 1px solid var(--line); border-left: 3px solid #f59e0b; border-radius: 4px;
               padding: 6px 9px; margin-top: 3px; color: #1e293b; line-height: 1.5; }
.kind { display: inline-block; font-size: 11px; font-weight: 700; padding: 2px 8px; border-radius: 999px;
        white-space: nowrap; }
.kind-sms { background: #ede9fe; color: #5b21b6; }
.kind-contact { background: #cffafe; color: #155e75; }
.kind-call_log { background: #e0e7ff; color: #3730a3; }
.chan, .chip, .store { display: inline-block; font-family: var(--mono); font-size: 11px; padding: 1px 6px;
                       border-radius: 4px; background: #f1f5f9; border: 1px solid var(--line); white-space: nowrap; }
.chan-http, .chan-dns, .chan-tcp, .chan-udp { background: #fee2e2; border-color: #fecaca; color: #991b1b; }
.chan-https { background: #dcfce7; border-color: #bbf7d0; color: #166534; }
.chip-plain { color: var(--muted); font-style: italic; font-family: var(--sans); }
.arrow { color: var(--muted); margin: 0 3px; }
footer { color: var(--muted); font-size: 12px; margin-top: 22px; text-align: center; }

@media print {
  html { background: #fff; }
  main { max-width: none; padding: 0; }
  section.card, .banner { box-shadow: none; break-inside: avoid-page; }
  .banner { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
