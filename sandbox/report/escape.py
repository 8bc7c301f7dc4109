"""Turning hostile text into inert HTML.

Excerpts, host names, paths and process names in a report come from the
firmware under analysis, which may well try to attack whoever reads the
report.  Every string that reaches the HTML goes through :func:`esc`: it is
HTML-escaped (quotes too, so it is safe in attributes), and characters that
could corrupt or disguise the page -- control characters, lone surrogates
(which cannot even be written as UTF-8), bidirectional overrides that
reorder what a reader sees -- are replaced by a visible ``·``.
"""

from __future__ import annotations

import html
import re

__all__ = ["MARK_CLOSE", "MARK_OPEN", "clean", "esc", "esc_host", "highlight"]

MARK_OPEN = "\u00ab"  # «: the detector's marker around the matched bytes
MARK_CLOSE = "\u00bb"  # »

_UNSAFE = re.compile(
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"  # control characters (tab and newlines kept)
    "\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, embeddings, overrides, isolates
    "\ud800-\udfff]"  # lone surrogates
)
_MARKED = re.compile(f"{MARK_OPEN}([^{MARK_OPEN}{MARK_CLOSE}]*){MARK_CLOSE}")


def clean(value: object) -> str:
    """``str(value)`` with unsafe characters replaced by ``·`` (still unescaped)."""
    return _UNSAFE.sub("\u00b7", str(value))


def esc(value: object) -> str:
    """``value`` as inert HTML text, safe in element content and quoted attributes."""
    return html.escape(clean(value), quote=True)


def esc_host(value: object) -> str:
    """A host name (or ``host:port``) as HTML that may wrap after each dot
    and before the port, instead of mid-label."""
    parts = re.split(r"(?<=\.)|(?=:)", clean(value))
    return "<wbr>".join(html.escape(p, quote=True) for p in parts if p)


def highlight(excerpt: str, value: str) -> str:
    """An evidence excerpt as HTML with the leaked bytes in ``<mark>``.

    The detector wraps the match in « »; the firmware's own bytes may hold
    those characters too, so the pair around exactly the canary value wins,
    else the pair with the longest content (a hash, or the value in another
    form); with no pair at all, plain occurrences of the value are marked.  Everything else is escaped like any other text.
    """
    spans = [(m.start(), m.end()) for m in _MARKED.finditer(excerpt)]
    chosen: list[tuple[int, int]] = []
    exact = [s for s in spans if excerpt[s[0] + 1:s[1] - 1] == value]
    if exact:
        chosen = exact[:1]
    elif spans:
        chosen = [max(spans, key=lambda s: (s[1] - s[0], -s[0]))]
    if chosen:
        start, end = chosen[0]
        return (esc(excerpt[:start]) + "<mark>" + esc(excerpt[start + 1:end - 1]) + "</mark>"
                + esc(excerpt[end:]))
    if value and value in excerpt:
        return f"<mark>{esc(value)}</mark>".join(esc(part) for part in excerpt.split(value))
    return esc(excerpt)
