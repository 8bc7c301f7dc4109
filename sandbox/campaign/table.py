"""The campaign as a plain text table: version × verdict, leaked kinds, destinations.

Plain text (no colour codes, no box drawing) because it ends up in CI logs
and e-mails; a cell may span several lines so a long destination list does
not push the table off the screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import Campaign, VersionResult

HEADERS = ("VERSION", "VERDICT", "LEAKED", "DESTINATIONS")


def verdict_word(r: VersionResult) -> str:
    if r.completed and r.verdict is not None:
        return r.verdict.value.upper() if r.verdict.value == "leak" else r.verdict.value
    return "not completed"


def _row(r: VersionResult, baseline: bool) -> tuple[tuple[str, ...], ...]:
    version = (r.label, "(baseline)") if baseline else (r.label,)
    if not r.completed:
        return version, (verdict_word(r),), ("-",), ("-",)
    return version, (verdict_word(r),), (", ".join(r.leaked_kinds) or "-",), r.destinations or ("-",)


def render_grid(headers: Sequence[str], rows: Sequence[Sequence[Sequence[str]]]) -> str:
    """Left-aligned columns two spaces apart; each cell is a sequence of lines."""
    cells: list[list[tuple[str, ...]]] = [[(h,) for h in headers]]
    cells += [[tuple(c) or ("",) for c in row] for row in rows]
    widths = [max(len(line) for row in cells for line in row[i]) for i in range(len(headers))]
    out: list[str] = []
    for n, row in enumerate(cells):
        for k in range(max(len(c) for c in row)):
            parts = [(c[k] if k < len(c) else "").ljust(w) for c, w in zip(row, widths)]
            out.append("  ".join(parts).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_table(campaign: Campaign) -> str:
    rows = [_row(r, r is campaign.baseline) for r in campaign.results]
    text = render_grid(HEADERS, rows)
    errors = [f"{r.label}: {r.error or 'did not complete'}" for r in campaign.results if not r.completed]
    return text + ("\n" + "\n".join(errors) if errors else "")
