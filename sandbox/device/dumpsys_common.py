"""Pieces of Android's ``dumpsys`` text shared by the alarm and job parsers.

``android.util.TimeUtils.formatDuration`` is how system services print both
durations (``window=+15m0s0ms``) and times relative to "now"
(``whenElapsed=+71h59m59s994ms``).  Its format: an optional sign, then
``d``, ``h``, ``m``, ``s`` and ``ms`` fields, leading zero fields left out,
and a bare ``0`` for zero.  Older JobScheduler dumps used
``DateUtils.formatElapsedTime`` instead (``71:59:59``), so that is accepted
too.  Parsing is strict: an unknown shape gives ``None`` rather than a guess.
"""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"^(?P<sign>[+-])?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)
_CLOCK = re.compile(r"^(?P<sign>-)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d\d)$")


def parse_duration_ms(text: str) -> int | None:
    """``+1d2h3m4s5ms`` -> milliseconds; ``0`` -> 0; ``--``/``none``/junk -> None."""
    t = text.strip()
    if t == "0":
        return 0
    m = _DURATION.match(t)
    if m and any(m.group(k) for k in ("d", "h", "m", "s", "ms")):
        total = (
            int(m.group("d") or 0) * 86_400_000
            + int(m.group("h") or 0) * 3_600_000
            + int(m.group("m") or 0) * 60_000
            + int(m.group("s") or 0) * 1000
            + int(m.group("ms") or 0)
        )
        return -total if m.group("sign") == "-" else total
    c = _CLOCK.match(t)
    if c:
        total = (int(c.group("h") or 0) * 3600 + int(c.group("m")) * 60 + int(c.group("s"))) * 1000
        return -total if c.group("sign") else total
    return None


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))
