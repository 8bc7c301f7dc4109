"""Runs of an encoding's alphabet, found at C speed.

Why a module: the scanner's per-byte work must stay in C, and the way it
does that for "where is a base64/hex/base32/URL run" is the same everywhere:
``bytes.translate`` to a class map (alphabet bytes to ``x``, the rest to
``.``), then ``find``.  The decoders (``regions.py``) and the digest lookup
(``scan.py``) share these helpers and maps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import compress, repeat
from operator import add, ge, sub

_HEXDIGITS = b"0123456789abcdefABCDEF"
_B32_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_LOWER = b"abcdefghijklmnopqrstuvwxyz234567"
_URL_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@/?"
BINARY_CTRL = bytes(range(0x00, 0x09)) + bytes(range(0x0E, 0x20))


def _class_map(alphabet: bytes) -> bytes:
    """Translate table: alphabet bytes to ``x``, everything else to ``.``."""
    return bytes(0x78 if b in alphabet else 0x2E for b in range(256))


B64_MAP = _class_map(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
HEX_MAP = _class_map(_HEXDIGITS)
URL_MAP = _class_map(_URL_CHARS)
B32U_MAP = _class_map(_B32_UPPER)
B32L_MAP = _class_map(_B32_LOWER)


def run_list(mapped: bytes, xs: bytes) -> tuple[list[int], list[int]]:
    """Maximal runs of at least ``len(xs)`` ``x`` in a class-mapped string
    (``xs`` is that many ``x``), as (starts, ends) lists: C-speed ``find``s
    and a plain loop (no generator frame or tuple per run;
    :func:`distinct_runs` maps over the lists in C)."""
    starts: list[int] = []
    ends: list[int] = []
    find = mapped.find
    pos = 0
    while (a := find(xs, pos)) >= 0:
        starts.append(a)
        pos = find(b".", a)
        if pos < 0:
            ends.append(len(mapped))
            break
        ends.append(pos)
    return starts, ends


def at_least(runs: tuple[list[int], list[int]], n: int) -> tuple[list[int], list[int]]:
    """The runs of at least ``n`` chars (lengths compared in C via ``map``)."""
    starts, ends = runs
    keep = list(map(ge, map(sub, ends, starts), repeat(n)))
    return list(compress(starts, keep)), list(compress(ends, keep))


def distinct_runs(big: bytes, runs: tuple[list[int], list[int]], context: int) -> Iterable[tuple[int, int]]:
    """The runs whose bytes (plus ``context`` bytes after them) were not seen
    at an earlier run, in order.  Slicing, hashing and the first-occurrence
    table run in C (``map``/``dict``), so a repeated token (a header, cookie
    or bearer token of every request of a keep-alive flow) costs well under
    a microsecond instead of a trip through the decoder loop."""
    starts, ends = runs
    if len(starts) < 2:
        return zip(starts, ends)
    keys = list(map(big.__getitem__, map(slice, starts, map(add, ends, repeat(context)))))
    first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1)))
    if len(first) == len(keys):
        return zip(starts, ends)
    order = sorted(first.values())
    return zip(map(starts.__getitem__, order), map(ends.__getitem__, order))


_PCT = re.compile(rb"%[0-9A-Fa-f]{2}")


def has_pct(big: bytes, a: int, z: int) -> bool:
    """Is there a ``%XX`` escape in ``big[a:z]``?  (C-speed ``find`` for the
    ``%``; a regex search would step through long blobs byte by byte.)"""
    while (k := big.find(b"%", a, z)) >= 0:
        if _PCT.match(big, k, z):
            return True
        a = k + 1
    return False


def is_escaped(big: bytes, q: int, floor: int) -> bool:
    """True when ``big[q]`` is preceded by an odd number of backslashes."""
    j = q
    while j > floor and big[j - 1] == 0x5C:
        j -= 1
    return (q - j) % 2 == 1


def run_bounds(big: bytes, p: int, lo: int, hi: int, table: bytes) -> tuple[int, int]:
    """Maximal run around ``p`` within ``[lo, hi)`` of the bytes ``table``
    maps to ``x`` (see :func:`_class_map`).  Windows are class-mapped with
    ``translate`` (``bytes.strip`` with an 80-char set is ~80x slower) and
    grow only while the run reaches their edge."""
    w = 256
    while True:
        a0 = max(lo, p - w)
        a = big[a0:p].translate(table).rfind(b".") + 1 + a0
        if a > a0 or a0 == lo:
            break
        w *= 4
    return a, _run_end(big, p, hi, table, 256, 4)


def _run_end(big: bytes, p: int, hi: int, table: bytes, w: int, grow: int) -> int:
    """End (exclusive, at most ``hi``) of the run of ``table``-class bytes from
    ``p``: class-mapped windows of ``w`` bytes, ``grow`` times larger while the
    run reaches their edge."""
    while True:
        z0 = min(hi, p + w)
        k = big[p:z0].translate(table).find(b".")
        if k >= 0 or z0 == hi:
            return z0 if k < 0 else p + k
        w *= grow
