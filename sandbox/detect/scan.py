"""Recursive decode + match: find any copy of a canary in outgoing bytes.

How a scan works
----------------
A scan proceeds in *generations*.  Generation 0 is the caller's buffer.  For
each generation the scanner

1. runs the literal automaton (needle values) over it, and looks up the
   hashed forms (digest texts) by window in the base64/hex runs the
   base64/hex runs of the generation hold (see ``_match_digests``),
2. runs the XOR-difference automaton over ``d[i] = b[i] ^ b[i+1]`` of it
   (single-byte XOR is invisible in that domain, see below),
3. runs cheap *trigger* regexes (one Hyperscan pass: ``word+word``,
   compression magic, ``%XX``, JSON escapes, HTML references, UTF-16 NUL
   patterns, BOMs, HTTP/MIME headers) and finds the base64-alphabet runs of
   16 chars or more -- fewer if the shortest needle's base64 is shorter --
   with ``translate`` + ``find``,
4. decodes only the regions those point at (plus raw deflate and
   brotli sniffing at the start of decoded binary payloads and of HTTP
   bodies whose Content-Encoding announces them).

All decoded regions ("pieces") of a generation are concatenated, separated
by ``_SEP``, into the next generation, so steps 1-3 are always C-level
passes over one buffer no matter how many small pieces there are; Python
work is per trigger hit, not per byte.  Depth is
bounded by ``max_depth`` and the total number of decoded bytes by
``max_decoded_bytes`` (decompressors are given the remaining budget as their
output limit, so bombs stop there).

Reported chains and normalisations
----------------------------------
Chain elements, outermost first: ``chunked``, ``gzip``, ``zlib``,
``deflate`` (raw), ``brotli``, ``urlencode`` (``%XX``/``+``, forms),
``json`` (string escapes), ``html`` (character references), ``base64``
(standard, URL-safe, padded or not -- one name), ``base32`` (either case),
``hex`` (either case), ``utf16le``, ``utf16be``, ``xor-0x5a`` (single-byte
XOR with that key), ``mime-base64`` / ``quoted-printable`` (MIME parts), plus
a final hashed-form element such as ``md5-hex-upper`` or ``sha256-b64url``.

A hit inside a decoded fragment is suppressed when the same matched bytes
already occur verbatim in the region that fragment was decoded from: the
parent generation reports it with the shorter chain.  So a layer appears in a
chain only when undoing it was needed to see the canary (a JSON string whose
escapes are elsewhere, or a body sent in one HTTP chunk, does not add
``json``/``chunked``).

Case
----
Needle values are matched case-sensitively in every layer: every decoder
here reproduces the exact bytes that were encoded (hex/base32/percent-escape
decoders accept either case of *their* alphabet, so the case of the encoding
never matters).  None of these decoders loses the case of the payload, so no
layer needs case-folded value matching.  Hex digests are matched caselessly
(and reported as ``-hex`` or ``-hex-upper``); base64 digests exactly.

XOR
---
For single-byte XOR with key k, ``(a^k) ^ (b^k) == a ^ b``: the difference
sequence of a needle is key-independent.  Each needle of >= 8 bytes with >= 4
distinct byte values contributes its difference sequence to one automaton
run over the difference sequence of the buffer; a candidate yields k from
the first byte and is verified exactly, so there are no false positives.
The gzip magic's difference sequence is in the same automaton, which finds
XOR-obfuscated gzip streams (chain ``("xor-0x5a", "gzip")``).  XOR applied
over a text encoding (base64 text XORed, say) has no known plaintext and is
not searched; neither are hashed forms under XOR.

Known limits (by design, documented in the tests): line-wrapped base64 is
only decoded inside MIME parts; raw deflate/brotli are only sniffed where a
stream starts (see step 4); base64 decoding skips runs made only of hex
digits and ``-`` and long all-upper-case base32-alphabet runs (p < 1e-7 for
real base64); a hit is reported once per (ref, chain) even if the canary
occurs again, differently, in the same region.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import threading
from operator import add, xor
from bisect import bisect_right
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate, repeat

from . import decoders as dec
from .hashing import ALGORITHMS, HashForm, hex_kind
from .matcher import LiteralMatcher, RegexTriggers, Trigger, resolve_backend

__all__ = ["Needle", "Hit", "Scanner", "ScanError", "ScanStats"]

#: Separator between fragments of a generation.  NULs end every text run
#: (base64/hex/URL/JSON) and break UTF-16 pairs; the trailing blank line
#: makes every fragment start look like an HTTP body start to the triggers.
_SEP = b"\x00\x00\r\n\r\n"
_LONG_RUN = 256  # runs longer than this use the padding-derived alignment only
_DIGEST_SLIDE = 256  # runs up to this long are searched for digest texts at every offset
_MIN_CHILD = 4
_MAX_JSON_STRING = 1 << 20
_DIFF_BLOCK = 1 << 16
_XOR_BLOCK = 4 << 20
_GZIP_DIFF = bytes([0x1F ^ 0x8B, 0x8B ^ 0x08])

_HEXDIGITS = b"0123456789abcdefABCDEF"
_HEX_DASH = _HEXDIGITS + b"-"
_B32_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_LOWER = b"abcdefghijklmnopqrstuvwxyz234567"
_SNIFF_DEFLATE = 1
_SNIFF_BROTLI = 2
_SNIFF_ALL = _SNIFF_DEFLATE | _SNIFF_BROTLI
_SNIFF_BODY = 4  # an HTTP body: the stream may be followed by more of the flow
_URL_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@/?"
_BINARY_CTRL = bytes(range(0x00, 0x09)) + bytes(range(0x0E, 0x20))


@dataclass(frozen=True)
class Needle:
    """One canary form to look for."""

    value: str  # e.g. "+15405550123" or an SMS body or substring
    ref: Hashable  # opaque back-reference to the canary form (caller's object)


@dataclass(frozen=True)
class Hit:
    """One canary form found, deduplicated per ``(ref, chain)`` within a scan."""

    ref: Hashable
    needle: str  # the matched pattern text (after hashing, the hash text)
    chain: tuple[str, ...]  # decode chain outermost-first (+ hashed-form kind last)
    offset: int  # start of the outermost decoded region in the original buffer
    excerpt: str  # <= 160 chars around the match in the decoded layer, «marked»


@dataclass
class ScanStats:
    """What the last :meth:`Scanner.scan` did (for tests, profiling and the
    report: ``budget_exhausted`` means some regions were *not* decoded, so
    the scan is incomplete)."""

    generations: int = 0
    fragments: int = 0
    decoded_bytes: int = 0
    budget_exhausted: bool = False
    decoder_calls: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.budget_exhausted


class ScanError(Exception):
    """A scan stopped on an internal error.

    Why an exception and not "return what was found": a scan that silently
    returns fewer hits can make a leak look clean.  ``partial`` holds the
    hits found before the error (each one verified, so still evidence);
    the caller decides how to report them, as partial.
    """

    def __init__(self, cause: BaseException, partial: list[Hit], stats: ScanStats) -> None:
        super().__init__(f"scan failed after {len(partial)} hit(s): {type(cause).__name__}: {cause}")
        self.cause = cause
        self.partial = partial
        self.stats = stats


# Trigger indices.  Each regex's *end* marks where to look; see _Decoding.
(
    T_GZIP, T_ZLIB, T_CHUNK, T_CE_DEFLATE, T_CE_BR,
    T_PCT, T_PLUS, T_JSON, T_HTML, T_U16LE, T_U16BE, T_BOM_LE, T_BOM_BE,
    T_MIME_B64, T_MIME_QP,
) = range(15)  # fmt: skip
_N_TRIGGERS = 15


def _triggers() -> list[Trigger]:
    """The trigger regexes, in T_* order.  Runs of the base64 alphabet (and
    the hex and base32 runs inside them) are not triggers: they are found
    with ``translate`` + ``find`` (see ``_Decoding.runs``), which is C speed
    per byte and costs no Python call per run."""
    return [
        Trigger("gzip", rb"\x1f\x8b\x08"),
        Trigger("zlib", rb"\x78[\x01\x5e\x9c\xda]"),
        Trigger("chunked", rb"\r\n\r\n[0-9A-Fa-f]{1,8}(?:;[^\r\n]{0,128})?\r\n"),
        Trigger("ce-deflate", rb"content-encoding:[ \t]*deflate", caseless=True),
        Trigger("ce-br", rb"content-encoding:[ \t]*br", caseless=True),
        # first %XX / '+' of a query component or form value
        Trigger(
            "pct", rb"(?:^|[^A-Za-z0-9%+._~*\-])[A-Za-z0-9+._~*\-]*%[0-9A-Fa-f]{2}", fallback=rb"%[0-9A-Fa-f]{2}"
        ),
        # word+word after a delimiter ('/' and '+' excluded, so a base64
        # blob fires once); the buffer start is checked in Python
        Trigger(
            "plus",
            rb"[^A-Za-z0-9._~*%+/\-][A-Za-z0-9._~*%\-]+\+[A-Za-z0-9%]",
            group=1,
            fallback=rb"\+[A-Za-z0-9%]",
        ),
        # first escape inside a quoted string
        Trigger("json", rb'"[^"\\\x00-\x1f]*\\(?:u[0-9A-Fa-f]{4}|["\\/bfnrt])'),
        Trigger("html", rb"&#?[0-9A-Za-z]{2,8};"),
        # a run of 4 (Latin-1 char, NUL) pairs not preceded by such a pair
        Trigger(
            "utf16le",
            rb"(?:^[\x00-\xff]?|\x00[\x00-\xff]|[\x00-\xff][\x01-\xff])(?:[\x01-\xff]\x00){4}",
            fallback=rb"\x00[\x01-\xff]\x00[\x01-\xff]\x00[\x01-\xff]\x00",
        ),
        Trigger(
            "utf16be",
            rb"(?:^[\x00-\xff]?|[\x01-\xff][\x00-\xff]|[\x00-\xff]\x00)(?:\x00[\x01-\xff]){4}",
            fallback=rb"\x00[\x01-\xff]\x00[\x01-\xff]\x00[\x01-\xff]\x00[\x01-\xff]",
        ),
        Trigger("bom-le", rb"\xff\xfe"),
        Trigger("bom-be", rb"\xfe\xff"),
        Trigger("mime-b64", rb"content-transfer-encoding:[ \t]*base64", caseless=True),
        Trigger("mime-qp", rb"content-transfer-encoding:[ \t]*quoted-printable", caseless=True),
    ]


def _class_map(alphabet: bytes) -> bytes:
    """Translate table: alphabet bytes to ``x``, everything else to ``.``."""
    return bytes(0x78 if b in alphabet else 0x2E for b in range(256))


_B64_MAP = _class_map(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_HEX_MAP = _class_map(_HEXDIGITS)
_URL_MAP = _class_map(_URL_CHARS)
_B32U_MAP = _class_map(_B32_UPPER)
_B32L_MAP = _class_map(_B32_LOWER)


def _run_list(mapped: bytes, xs: bytes) -> tuple[list[int], list[int]]:
    """:func:`_subruns` as (starts, ends) lists, by a plain loop (no generator
    frame or tuple per run; :func:`_distinct` maps over the lists in C)."""
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


def _distinct(big: bytes, runs: tuple[list[int], list[int]], context: int) -> Iterable[tuple[int, int]]:
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


def _subruns(mapped: bytes, xs: bytes) -> Iterator[tuple[int, int]]:
    """Maximal runs of at least ``len(xs)`` ``x`` in a class-mapped string
    (``xs`` is that many ``x``; C-speed finds)."""
    pos = 0
    while (a := mapped.find(xs, pos)) >= 0:
        z = mapped.find(b".", a)
        z = len(mapped) if z < 0 else z
        yield a, z
        pos = z


_PCT = re.compile(rb"%[0-9A-Fa-f]{2}")
_URL_COMPONENT = re.compile(rb"[^?&=;]+")
_PLUS_AT_START = re.compile(rb"[A-Za-z0-9._~*%\-]+\+[A-Za-z0-9%]")
_CHUNK_AT_START = re.compile(rb"[0-9A-Fa-f]{1,8}(?:;[^\r\n]{0,128})?\r\n")
_U16LE_RUN = re.compile(
    rb"(?:[\x01-\xff]\x00)+(?:(?:[\x00-\xff][\x01-\xff]){1,8}(?:[\x01-\xff]\x00)+)*(?:[\x00-\xff][\x01-\xff]){0,8}"
)
_U16BE_RUN = re.compile(
    rb"(?:\x00[\x01-\xff])+(?:(?:[\x01-\xff][\x00-\xff]){1,8}(?:\x00[\x01-\xff])+)*(?:[\x01-\xff][\x00-\xff]){0,8}"
)
_U16LE_BOM_RUN = re.compile(rb"(?:[\x00-\xff][\x01-\xff]){0,8}" + _U16LE_RUN.pattern)
_U16BE_BOM_RUN = re.compile(rb"(?:[\x01-\xff][\x00-\xff]){0,8}" + _U16BE_RUN.pattern)

# A form is (ref, needle text, hashed form or None).
_Form = tuple[Hashable, str, HashForm | None]
# A child is (data, chain elements, parent piece, src start, src end, sniff).
_Child = tuple[bytes, tuple[str, ...], int, int, int, int]
_Hits = dict[tuple[Hashable, tuple[str, ...]], Hit]


#: Shared kind descriptors of the digest table: (algorithm, encoding) -> HashForm
#: with the kind only (the digest text lives in each form tuple).
_DIGEST_KINDS = {(algo, enc): HashForm(b"", enc == "hex", f"{algo}-{enc}", "", enc == "hex")
                 for algo in ALGORITHMS for enc in ("hex", "b64", "b64url")}
_HASHERS = (("md5", hashlib.md5), ("sha1", hashlib.sha1), ("sha256", hashlib.sha256))
_B64URL = bytes.maketrans(b"+/", b"-_")
_B64URL_TO_STD = bytes.maketrans(b"-_", b"+/")
#: The URL-safe kind of each standard base64 kind (the table keys standard
#: base64 only; a window is looked up in the standard alphabet).
_URL_KIND = {_DIGEST_KINDS[algo, "b64"]: _DIGEST_KINDS[algo, "b64url"] for algo in ALGORITHMS}


#: The kind of a digest key, by its length: every (algorithm, rendering) has
#: its own (hex 32/40/64, unpadded base64 22/27/43), so the table's values
#: need not say it.
_KIND_BY_LEN = {len(binascii.hexlify(hasher().digest())) if enc == "hex" else
                len(binascii.b2a_base64(hasher().digest(), newline=False).rstrip(b"=")): _DIGEST_KINDS[algo, enc]
                for algo, hasher in _HASHERS for enc in ("hex", "b64")}
assert len(_KIND_BY_LEN) == 2 * len(_HASHERS)


def _digest_table(by_raw: dict[bytes, tuple[Hashable, ...]]) -> tuple[dict[bytes, tuple[Hashable, ...]], bool]:
    """The renderings of :func:`sandbox.detect.hashing.hashed_forms`, keyed by
    lookup text (hex lower-cased, base64 unpadded) to the needles' refs, and
    whether a base64 key is made of hex digits only.  10,000 canaries make
    ~300,000 keys, so the table is built per (algorithm, rendering) with
    ``map``/``zip`` and ``dict.update`` (C loops), and a key's value is the
    refs tuple of its needle value, shared by its six keys (the kind comes
    from the key's length, ``_KIND_BY_LEN``): a Python statement and a
    tuple per key were a quarter of the compile time.  URL-safe base64 has
    no keys of its own: windows are looked up in the standard alphabet (see
    ``_digest_windows``)."""
    raws = list(by_raw)
    refs = list(by_raw.values())
    table: dict[bytes, tuple[Hashable, ...]] = {}
    all_hex = False
    for _, hasher in _HASHERS:
        digests = [hasher(r).digest() for r in raws]
        table.update(zip(map(binascii.hexlify, digests), refs))
        keys = [binascii.b2a_base64(d, newline=False).rstrip(b"=") for d in digests]
        table.update(zip(keys, refs))
        # Could a base64 digest text be all hex digits?  (p ~ 1e-10 each; checked, not assumed)
        all_hex = all_hex or not all(map(bytes.translate, keys, repeat(None), repeat(_HEXDIGITS)))
    return table, all_hex


def _suffix_root(raw: bytes, known: Mapping[bytes, object]) -> bytes:
    """The shortest needle that ``raw`` ends in through steps of 1-3 bytes
    (``+15405550123`` -> ``15405550123`` -> ``5405550123``), at least 8
    bytes long so the pattern that stands for it stays selective."""
    cur = raw
    while True:
        for k in (1, 2, 3):
            tail = cur[k:]
            if len(tail) >= 8 and tail in known:
                cur = tail
                break
        else:
            return cur


def _digest_text(key: bytes, kind: HashForm) -> str:
    """The canonical text of a digest key: hex as is, base64 padded."""
    text = key.decode("ascii")
    return text if kind.is_hex else text + "=" * (-len(text) % 4)


class _Budget:
    """Remaining decoded-bytes allowance for one scan."""

    __slots__ = ("left", "exhausted")

    def __init__(self, total: int) -> None:
        self.left = max(0, total)
        self.exhausted = False

    def take(self, n: int) -> bool:
        if n > self.left:
            self.exhausted = True
            return False
        self.left -= n
        return True


class _Gen:
    """One generation: its pieces concatenated (``_SEP``-separated) into ``big``.

    Per-piece metadata stays in the emitted child tuples; chains and origins
    are derived lazily from parent pointers, only when a hit needs them, so a
    piece costs one tuple and one list slot.
    """

    __slots__ = ("big", "depth", "starts", "pieces", "parent", "_chains", "_b64_map")

    def __init__(self, big: bytes, depth: int, starts: list[int], pieces: list[_Child], parent: _Gen | None) -> None:
        self.big = big
        self.depth = depth
        self.starts = starts
        self.pieces = pieces
        self.parent = parent
        self._chains: dict[int, tuple[str, ...]] = {}
        self._b64_map: bytes | None = None

    @classmethod
    def root(cls, data: bytes) -> _Gen:
        return cls(data, 0, [0], [(data, (), -1, 0, len(data), _SNIFF_ALL | _SNIFF_BODY)], None)

    @classmethod
    def from_children(cls, children: list[_Child], parent: _Gen) -> _Gen:
        sep = len(_SEP)
        lengths = [len(c[0]) + sep for c in children]
        starts = list(accumulate(lengths[:-1], initial=sep))
        big = b"".join((_SEP, _SEP.join([c[0] for c in children]), _SEP))
        return cls(big, parent.depth + 1, starts, children, parent)

    def end(self, i: int) -> int:
        return self.starts[i] + len(self.pieces[i][0])

    def b64_map(self) -> bytes:
        """``big`` class-mapped to the base64 alphabet (see :func:`_class_map`),
        made once per generation: the digest lookup and the decoders both
        look for runs in it, each of its own minimum length."""
        if self._b64_map is None:
            self._b64_map = self.big.translate(_B64_MAP)
        return self._b64_map

    def locate(self, pos: int) -> int:
        """Index of the piece containing ``pos``, or -1 (separator/outside)."""
        i = bisect_right(self.starts, pos) - 1
        if i < 0 or pos >= self.starts[i] + len(self.pieces[i][0]):
            return -1
        return i

    def chain(self, i: int) -> tuple[str, ...]:
        got = self._chains.get(i)
        if got is None:
            piece = self.pieces[i]
            got = piece[1] if self.parent is None else self.parent.chain(piece[2]) + piece[1]
            self._chains[i] = got
        return got

    def origin(self, i: int) -> int:
        """Offset in the original buffer of the outermost region ``i`` came from."""
        gen, piece = self, self.pieces[i]
        while (up := gen.parent) is not None and up.parent is not None:
            gen, piece = up, up.pieces[piece[2]]
        return piece[3]


def _diff(big: bytes) -> bytes:
    """``d[i] = big[i] ^ big[i+1]`` via big-int XOR in 64 KiB blocks (~1.5 ns/B)."""
    n = len(big)
    parts = []
    for off in range(0, n - 1, _DIFF_BLOCK):
        seg = big[off : off + _DIFF_BLOCK + 1]
        a = int.from_bytes(seg, "little")
        parts.append((a ^ (a >> 8)).to_bytes(len(seg), "little")[: len(seg) - 1])
    return b"".join(parts)


def _render(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "·" for c in text)


def _excerpt(layer: bytes, lo: int, hi: int, start: int, end: int, key: int = 0) -> str:
    """≤ 160 chars: context, the match between « and », context."""
    ctx = 80
    left = layer[max(lo, start - ctx) : start]
    mid = layer[start:end]
    right = layer[end : min(hi, end + ctx)]
    if key:
        left, mid, right = dec.xor_bytes(left, key), dec.xor_bytes(mid, key), dec.xor_bytes(right, key)
    mid_s = _render(mid)
    if len(mid_s) > 100:
        mid_s = mid_s[:99] + "…"
    room = 158 - len(mid_s)
    left_s = _render(left)[-(room // 2) :] if room // 2 else ""
    right_s = _render(right)[: room - len(left_s)]
    return f"{left_s}«{mid_s}»{right_s}"


def _has_pct(big: bytes, a: int, z: int) -> bool:
    """Is there a ``%XX`` escape in ``big[a:z]``?  (C-speed ``find`` for the
    ``%``; a regex search would step through long blobs byte by byte.)"""
    while (k := big.find(b"%", a, z)) >= 0:
        if _PCT.match(big, k, z):
            return True
        a = k + 1
    return False


def _escaped(big: bytes, q: int, floor: int) -> bool:
    """True when ``big[q]`` is preceded by an odd number of backslashes."""
    j = q
    while j > floor and big[j - 1] == 0x5C:
        j -= 1
    return (q - j) % 2 == 1


def _run_bounds(big: bytes, p: int, lo: int, hi: int, table: bytes) -> tuple[int, int]:
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


class Scanner:
    """Finds canary needles in arbitrary bytes, through nested encodings.

    Construction compiles the automata (seconds for ~10k canaries); ``scan``
    then takes any bytes.  It raises only :class:`ScanError` (an internal
    error; the partial hits ride along), never returns a silently shortened
    list.  Instances are thread-safe: the compiled automata are read-only
    and every thread gets its own Hyperscan scratch (see ``matcher.py``);
    ``last_stats`` is per thread too.  ``backend`` reports which matcher
    ran ("hyperscan" or "pyahocorasick").
    """

    def __init__(
        self,
        needles: Sequence[Needle],
        *,
        max_depth: int = 4,
        max_decoded_bytes: int = 64 * 1024 * 1024,
        hashes: bool = True,
    ) -> None:
        self._max_depth = max(0, max_depth)
        self._max_bytes = max(0, max_decoded_bytes)
        self.backend = resolve_backend()
        self._local = threading.local()
        # One statement or two per needle (10,000 canaries are 50,000 needles):
        # literal and XOR-difference patterns are grouped by dicts, whose key
        # order is the pattern order.
        lits: dict[bytes, list[_Form]] = {}
        xors: dict[bytes, list[tuple[bytes, _Form]]] = {_GZIP_DIFF: []}
        for needle in needles:
            hash(needle.ref)  # fail early, not inside scan()
            raw = needle.value.encode("utf-8")
            if not raw:
                continue
            form: _Form = (needle.ref, needle.value, None)
            if (forms := lits.get(raw)) is None:
                lits[raw] = [form]
            else:
                forms.append(form)
            if len(raw) >= 8 and len(set(raw)) >= 4:
                d = bytes(map(xor, raw, raw[1:]))
                if (same := xors.get(d)) is None:
                    xors[d] = [(raw, form)]
                else:
                    same.append((raw, form))
        maxlen = max(map(len, lits), default=1)
        # A needle ending in another needle (an E.164 number ends in its
        # digits without "+" or country code) needs no pattern of its own: it
        # is verified where its suffix matched.  A fifth fewer patterns, so
        # that much less compile time and memory.
        groups: dict[bytes, list[tuple[bytes, list[_Form]]]] = {raw: [(raw, forms)] for raw, forms in lits.items()}
        for raw, forms in lits.items():
            if (root := _suffix_root(raw, lits)) != raw:
                groups[root].append((raw, forms))
                del groups[raw]  # a root is never itself moved: no needle is its suffix
        self._lit_pats: list[bytes] = list(groups)
        self._lit_info: list[list[tuple[bytes, list[_Form]]]] = list(groups.values())
        lit_fold = [False] * len(self._lit_pats)
        diffs = {raw: d for d, entries in xors.items() for raw, _ in entries}
        moved = [(d, entry, diffs[root]) for d, entries in xors.items() for entry in entries
                 if (root := _suffix_root(entry[0], diffs)) != entry[0]]
        for d, entry, to in moved:
            xors[d].remove(entry)
            xors[to].append(entry)
        for d in [d for d, entries in xors.items() if not entries and d != _GZIP_DIFF]:
            del xors[d]
        self._xor_pats: list[bytes] = list(xors)
        self._xor_info: list[list[tuple[bytes, _Form]]] = list(xors.values())
        # Hashed forms are looked up by window, not compiled into the automaton
        # (see _match_digests): ~8 per needle would be most of its literals,
        # and Hyperscan compiles ~25k literals a second.
        by_raw = {raw: tuple([f[0] for f in forms]) for raw, forms in lits.items()} if hashes else {}
        self._digest_lens: dict[bool, tuple[int, ...]] = {True: (), False: ()}
        self._digest_xs: dict[bool, bytes] = {True: b"", False: b""}
        self._digests, self._b64_digest_all_hex = _digest_table(by_raw)
        if self._digests:  # the window sizes to try: digest text lengths, hex and base64
            sizes = [hasher().digest_size for _, hasher in _HASHERS]
            self._digest_lens = {True: tuple(sorted(2 * n for n in sizes)),
                                 False: tuple(sorted(-(-4 * n // 3) for n in sizes))}  # unpadded base64
            for is_hex in (True, False):  # runs of class-mapped "x" at least that long
                self._digest_xs[is_hex] = b"x" * self._digest_lens[is_hex][0]
        self._lit = LiteralMatcher(self._lit_pats, lit_fold, backend=self.backend)
        self._xor = LiteralMatcher(self._xor_pats, backend=self.backend)
        self._xor_maxlen = max(map(len, self._xor_pats))
        # Shortest runs worth decoding: the encoded length of the shortest
        # needle value (a 10-digit phone number is 14 base64 characters),
        # clamped to [8, 16] (16 is enough for anything longer).
        minval = min((len(p) for p, fold in zip(self._lit_pats, lit_fold) if not fold), default=12)
        self._b64_min = max(8, min(16, -(-4 * minval // 3)))
        self._x_hex = b"x" * max(8, min(16, 2 * minval))
        self._x_b32 = b"x" * max(8, min(16, -(-8 * minval // 5)))
        # Per scanner (~0.1 s), never a process-wide cache: nothing mutable is shared.
        self._x_b64 = b"x" * self._b64_min
        self._trig = RegexTriggers(_triggers(), backend=self.backend)
        self._maxlen = maxlen
        self._minlen = min((len(p) for p in self._lit_pats), default=1)
        self._html_window = 12 * maxlen + 64

    # -- public -----------------------------------------------------------

    @property
    def last_stats(self) -> ScanStats:
        """Stats of this thread's last :meth:`scan`."""
        got: ScanStats | None = getattr(self._local, "stats", None)
        return got if got is not None else ScanStats()

    def scan(self, data: bytes) -> list[Hit]:
        """All needle hits in ``data``, deduplicated per ``(ref, chain)``.

        Raises :class:`ScanError` on an internal error, with the hits found
        so far; check ``last_stats.complete`` for the decoding budget.
        """
        hits: _Hits = {}
        stats = self._local.stats = ScanStats()
        try:
            self._run(bytes(data), hits, stats)
        except Exception as exc:
            raise ScanError(exc, list(hits.values()), stats) from exc
        return list(hits.values())

    # -- engine -------------------------------------------------------------

    def _run(self, data: bytes, hits: _Hits, stats: ScanStats) -> None:
        budget = _Budget(self._max_bytes)
        gen = _Gen.root(data)
        for depth in range(self._max_depth + 1):
            stats.generations += 1
            stats.fragments += len(gen.pieces)
            prev = gen.parent.big if gen.parent is not None else None
            self._match(gen, prev, hits)
            xor_gzip = self._match_xor(gen, prev, hits)
            if self._digests:
                self._match_digests(gen, prev, hits)
            if depth == self._max_depth or budget.left <= 0:
                break
            children = _Decoding(self, gen, budget).run(xor_gzip, self._triggered(gen.big))
            if not children:
                break
            for c in children:
                stats.decoder_calls[c[1][-1]] = stats.decoder_calls.get(c[1][-1], 0) + 1
            gen = _Gen.from_children(children, gen)
        stats.decoded_bytes = self._max_bytes - budget.left
        stats.budget_exhausted = budget.exhausted

    def _triggered(self, big: bytes) -> list[list[int]]:
        """Trigger match ends per trigger, sorted (one pass per trigger group)."""
        buckets: list[list[int]] = [[] for _ in range(_N_TRIGGERS)]
        for t, end in self._trig.scan(big):
            buckets[t].append(end)
        for b in buckets:
            b.sort()
        return buckets

    def _match_digests(self, gen: _Gen, prev: bytes | None, hits: _Hits) -> None:
        """Hashed forms: every base64-alphabet run and every hex run long
        enough to hold a digest text is looked up by window in ``_digests``
        (hex windows lower-cased: hex digests match in any case).  Runs are
        found with one ``translate`` and C-speed ``find`` over the generation
        (separators hold NULs, so no run crosses pieces).  Runs up to
        ``_DIGEST_SLIDE`` chars are tried at every offset, so a digest glued
        to other alphabet characters is found; longer runs (blobs) at their
        start and end only -- a digest inside a long blob is an accepted
        blind spot (a literal automaton with the ~8 digest texts of every
        needle cost 10x the compile time and RSS)."""
        big = gen.big
        # Runs already looked up in vain (repeated paths, cookies, tokens): a
        # run's windows depend only on its bytes, so an identical run holds no
        # digest either.  Runs that held one are looked up again (their hits
        # may belong to another chain).
        for is_hex in (False, True):
            xs = self._digest_xs[is_hex]
            if not xs:
                continue
            vain: set[bytes] = set()
            # base64: the decoders' class map (made once), runs of a digest's length
            mapped = big.translate(_HEX_MAP) if is_hex else gen.b64_map()
            for a, z in zip(*_run_list(mapped, xs)):
                key = big[a:z]
                if key in vain:
                    continue
                i = gen.locate(a)
                if i >= 0 and not self._digest_windows(gen, prev, hits, i, a, z, is_hex):
                    vain.add(key)

    def _digest_windows(self, gen: _Gen, prev: bytes | None, hits: _Hits, i: int, a: int, z: int,
                        is_hex: bool) -> bool:
        """Look one run up; True when a digest key was found in it."""
        big, table, n = gen.big, self._digests, z - a
        found = False
        if not is_hex and not self._b64_digest_all_hex and b"." not in big[a:z].translate(_HEX_MAP):
            return False  # an all-hex run holds no base64 digest of this set (its hex digests: the hex pass)
        seg = big[a:z]
        if is_hex:
            seg = seg.lower()
        elif b"-" in seg or b"_" in seg:  # URL-safe: the table holds standard base64 only
            seg = seg.translate(_B64URL_TO_STD)
        for size in self._digest_lens[is_hex]:
            if n < size:
                break
            if n <= _DIGEST_SLIDE:  # every window, sliced and looked up at C speed (map/filter)
                windows: Iterable[bytes] = map(seg.__getitem__, map(slice, range(n - size + 1), range(size, n + 1)))
            else:
                windows = (seg[:size], seg[n - size :])
            for key in filter(table.__contains__, windows):
                found = True
                start = 0
                while (k := seg.find(key, start)) >= 0:  # a found key's places (hits are rare)
                    start = k + 1
                    p = a + k
                    if n > _DIGEST_SLIDE and k not in (0, n - size):
                        continue
                    matched = big[p : p + size]
                    if prev is not None:
                        piece = gen.pieces[i]
                        if prev.find(matched, piece[3], piece[4]) >= 0:
                            continue  # visible verbatim one layer up: reported there
                    refs, kind = table[key], _KIND_BY_LEN[size]
                    text = key
                    if not is_hex and (b"-" in matched or b"_" in matched):
                        if b"+" in matched or b"/" in matched:
                            continue  # both alphabets: no rendering of this digest
                        kind, text = _URL_KIND[kind], key.translate(_B64URL)
                    for ref in refs:
                        self._record(hits, gen, i, p, p + size, (ref, _digest_text(text, kind), kind), matched, 0)
        return found

    def _match(self, gen: _Gen, prev: bytes | None, hits: _Hits) -> None:
        big = gen.big
        for pid, end in self._lit.scan(big):
            for raw, forms in self._lit_info[pid]:  # the pattern's own needle, then longer ones ending in it
                start = end - len(raw)
                i = gen.locate(start)
                if i < 0 or end > gen.end(i):
                    continue
                if not big.startswith(raw, start):
                    continue
                if prev is not None:
                    piece = gen.pieces[i]
                    if prev.find(raw, piece[3], piece[4]) >= 0:
                        continue  # visible verbatim one layer up: reported there
                for form in forms:
                    self._record(hits, gen, i, start, end, form, raw, 0)

    def _match_xor(self, gen: _Gen, prev: bytes | None, hits: _Hits) -> list[int]:
        """Verify XOR-domain candidates; return positions of XORed gzip magic."""
        big = gen.big
        gzip_at: list[int] = []
        if len(big) < 3:
            return gzip_at
        for p, pid in self._xor_candidates(big):
            end = p + len(self._xor_pats[pid])
            i = gen.locate(p)
            if i < 0:
                continue
            stop = end + 1
            if pid == 0:
                if stop + 1 <= gen.end(i):
                    gzip_at.append(p)
                continue
            if stop > gen.end(i):
                continue
            for raw, form in self._xor_info[pid]:  # longer needles ending in the pattern's start earlier
                q = stop - len(raw)
                if q < gen.starts[i]:
                    continue
                seg = big[q:stop]
                key = seg[0] ^ raw[0]
                if not key or seg != dec.xor_bytes(raw, key):
                    continue
                if prev is not None and prev.find(seg, gen.pieces[i][3], gen.pieces[i][4]) >= 0:
                    continue
                self._record(hits, gen, i, q, stop, form, seg, key)
        return gzip_at

    def _xor_candidates(self, big: bytes) -> Iterator[tuple[int, int]]:
        """(start, pattern) of difference-pattern matches, computed block by
        block so a huge buffer never needs a second full-size copy."""
        block, overlap = _XOR_BLOCK, self._xor_maxlen
        for off in range(0, len(big) - 1, block):
            diff = _diff(big[off : off + block + overlap + 1])
            for pid, end in self._xor.scan(diff):
                start = end - len(self._xor_pats[pid])
                if start < block:  # later starts belong to the next block
                    yield off + start, pid

    def _record(
        self, hits: _Hits, gen: _Gen, i: int, start: int, end: int, form: _Form, matched: bytes, key: int
    ) -> None:
        ref, text, hf = form
        chain = gen.chain(i)
        if key:
            chain += (f"xor-0x{key:02x}",)
        if hf is not None:
            if hf.is_hex:
                kind, text = hex_kind(replace(hf, text=text), matched)
            else:
                kind = hf.kind
            chain += (kind,)
        slot = (ref, chain)
        if slot in hits:
            return
        offset = start if gen.depth == 0 else gen.origin(i)
        excerpt = _excerpt(gen.big, gen.starts[i], gen.end(i), start, end, key)
        hits[slot] = Hit(ref=ref, needle=text, chain=chain, offset=offset, excerpt=excerpt)


class _Decoding:
    """Decode the regions one generation's triggers point at into children.

    Each child is ``(data, chain elements, parent piece, src start, src end,
    sniff)``; ``sniff`` asks the next generation to try raw deflate/brotli
    at the child's first byte (set for binary-carrying encodings).
    """

    def __init__(self, scanner: Scanner, gen: _Gen, budget: _Budget) -> None:
        self.sc = scanner
        self.gen = gen
        self.big = gen.big
        self.view = memoryview(gen.big)
        self.budget = budget
        self.out: list[_Child] = []

    def emit(self, data: bytes, elems: tuple[str, ...], frag: int, s: int, e: int, sniff: int) -> None:
        if len(data) >= _MIN_CHILD and self.budget.take(len(data)):
            self.out.append((data, elems, frag, s, e, sniff))

    def run(self, xor_gzip: list[int], buckets: list[list[int]]) -> list[_Child]:
        self.compressed(buckets, xor_gzip)
        self.chunked(buckets[T_CHUNK])
        self.starts(buckets)
        self.mime(buckets[T_MIME_B64], "base64")
        self.mime(buckets[T_MIME_QP], "quoted-printable")
        self.runs()
        self.url(buckets[T_PCT], buckets[T_PLUS])
        self.json(buckets[T_JSON])
        self.html(buckets[T_HTML])
        self.utf16(buckets[T_U16LE], buckets[T_BOM_LE], False)
        self.utf16(buckets[T_U16BE], buckets[T_BOM_BE], True)
        return self.out

    # compression ---------------------------------------------------------

    def inflate_at(self, p: int, kind: str, elems: tuple[str, ...], key: int = 0) -> None:
        i = self.gen.locate(p)
        if i < 0 or self.budget.left <= 0:
            return
        res = dec.inflate(self.view[p : self.gen.end(i)], kind, self.budget.left, key)
        if res is not None:
            self.emit(res[0], elems, i, p, p + res[1], _SNIFF_ALL)

    def compressed(self, buckets: list[list[int]], xor_gzip: list[int]) -> None:
        # Every magic is tried, even inside an already decoded stream: a
        # stored (uncompressed) block can carry another stream verbatim.
        for end in buckets[T_GZIP]:
            self.inflate_at(end - 3, "gzip", ("gzip",))
        for end in buckets[T_ZLIB]:
            self.inflate_at(end - 2, "zlib", ("zlib",))
        big = self.big
        for p in xor_gzip:
            key = big[p] ^ 0x1F
            if key and big[p + 2] ^ key == 0x08 and (big[p + 3] ^ key) & 0xE0 == 0:
                self.inflate_at(p, "gzip", (f"xor-0x{key:02x}", "gzip"), key)

    def starts(self, buckets: list[list[int]]) -> None:
        """Raw deflate / brotli have no magic: try them where a stream plausibly
        starts -- at pieces decoded from binary-carrying encodings, at the
        start of the caller's buffer, and at bodies whose headers announce them."""
        gen, big = self.gen, self.big
        todo = [(gen.starts[i], i, piece[5]) for i, piece in enumerate(gen.pieces) if piece[5]]
        for bucket, which in ((buckets[T_CE_DEFLATE], _SNIFF_DEFLATE), (buckets[T_CE_BR], _SNIFF_BROTLI)):
            which |= _SNIFF_BODY
            for end in bucket:
                i = gen.locate(end)
                if i < 0:
                    continue
                q = big.find(b"\r\n\r\n", end, min(gen.end(i), end + 16384))
                if q >= 0:
                    todo.append((q + 4, i, which))
        for q, i, which in todo:
            fe = gen.end(i)
            if q >= fe or self.budget.left <= 0:
                continue
            head = big[q : q + 8]
            if head[:2] == b"\x1f\x8b" or (head[:1] == b"\x78" and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda")):
                continue
            body = which & _SNIFF_BODY
            if not body:  # a decoded payload ends at its first separator (alignments)
                sep = big.find(_SEP, q, fe)
                fe = fe if sep < 0 else sep
            # Both are tried: a few bytes of one format can be a valid tiny
            # stream of the other.
            if which & _SNIFF_DEFLATE and dec.deflate_plausible(head):
                res = dec.inflate(self.view[q:fe], "deflate", self.budget.left)
                if res is not None:
                    self.emit(res[0], ("deflate",), i, q, q + res[1], _SNIFF_ALL)
            if which & _SNIFF_BROTLI and dec.brotli_plausible(head):
                got = dec.unbrotli(self.view[q:fe], self.budget.left, trailing=bool(body))
                if got is not None:
                    self.emit(got[0], ("brotli",), i, q, q + got[1], _SNIFF_ALL)

    def chunked(self, ends: list[int]) -> None:
        gen, big = self.gen, self.big
        cands = []
        if gen.depth == 0 and _CHUNK_AT_START.match(big, 0):
            cands.append(0)
        for end in ends:
            q = big.rfind(b"\r\n\r\n", max(0, end - 150), end)
            if q >= 0:
                cands.append(q + 4)
        for q in cands:
            i = gen.locate(q)
            if i < 0:
                continue
            res = dec.decode_chunked(big, q, gen.end(i))
            # Even a single chunk is emitted: its content is verbatim in the
            # parent (so plain hits are suppressed there), but a raw deflate or
            # brotli stream can only be sniffed at the start of the body.
            if res is not None:
                self.emit(res[0], ("chunked",), i, q, res[2], _SNIFF_ALL)

    def mime(self, ends: list[int], cte: str) -> None:
        gen, big = self.gen, self.big
        for end in ends:
            i = gen.locate(end)
            if i < 0:
                continue
            fe = gen.end(i)
            hdr = big.find(b"\r\n\r\n", end, min(fe, end + 8192))
            body = hdr + 4
            if hdr < 0:
                hdr = big.find(b"\n\n", end, min(fe, end + 8192))
                body = hdr + 2
                if hdr < 0:
                    continue
            stop = big.find(b"\n--", body, fe)
            stop = fe if stop < 0 else stop
            region = big[body:stop]
            out = dec.mime_decode(region, cte)
            if out and out != region:
                elem = "mime-base64" if cte == "base64" else "quoted-printable"
                self.emit(out, (elem,), i, body, stop, _SNIFF_ALL if cte == "base64" else 0)

    # runs of an encoding alphabet ---------------------------------------

    def runs(self) -> None:
        """Maximal base64-alphabet runs (>= 16 chars, or the base64 length of
        the shortest needle if less), plus the hex and base32 runs inside them
        (both alphabets are subsets, so one search finds all).

        base64 is decoded at all 4 alignments (a payload may be glued to other
        alphabet chars), hex at 2 and base32 at 8, each run into one child
        whose alignments are ``_SEP``-separated; long padded runs use the
        alignment the padding implies.  A run is not decoded as base64 when it
        cannot plausibly be base64 of anything: only hex digits and ``-``
        (IDs, UUIDs; random base64 of 16+ chars is that with p < 1e-7) or,
        from 24 chars, only upper-case base32 characters (p < 6e-8).  Sub-runs
        and the runs themselves are located with ``translate`` + ``find`` (C
        speed, even in long blobs; no separator holds an alphabet byte, so no
        run crosses pieces).  Identical runs under one chain are decoded once.
        """
        gen, big = self.gen, self.big
        x_hex, x_b32 = self.sc._x_hex, self.sc._x_b32
        single = len(gen.pieces) == 1
        fe = gen.end(0)
        chain: tuple[str, ...] = ()
        i = 0
        # An identical token under the same chain decodes to identical
        # children whose hits are deduplicated per (ref, chain) anyway, so
        # repeated headers, cookies and tokens are decoded once.  Most runs of
        # header-heavy traffic are such repeats: they cost a slice and a set
        # lookup, nothing more.
        seen: set[tuple[tuple[str, ...], bytes]] = set()
        runs = _run_list(gen.b64_map(), self.sc._x_b64)
        # one chain: identical runs (with their '=' padding) are skipped in C
        found = _distinct(big, runs, 2) if single else zip(*runs)
        for s, z in found:
            if not single:
                i = gen.locate(s)
                if i < 0:
                    continue
                fe = gen.end(i)
                chain = gen.chain(i)
            if z < fe and big[z] == 0x3D:  # up to two '='
                e = z + 2 if z + 1 < fe and big[z + 1] == 0x3D else z + 1
                run = big[s:e]
                core = big[s:z]
            else:
                run = core = big[s:z]
            key = (chain, run)
            if key in seen:
                continue
            seen.add(key)
            n = z - s
            hexmap = core.translate(_HEX_MAP)
            if b"." not in hexmap:
                self.hex(core, i, s)
                continue
            lower, upper = core.islower(), core.isupper()
            if x_hex in hexmap:
                for a, y in zip(*_run_list(hexmap, x_hex)):
                    self.hex(core[a:y], i, s + a)
            whole32 = False
            for table, wanted in ((_B32U_MAP, not lower), (_B32L_MAP, not upper)):
                if wanted and x_b32 in (mapped := core.translate(table)):
                    for a, y in zip(*_run_list(mapped, x_b32)):
                        whole32 = whole32 or y - a == n
                        while y < fe - s and y - a < n + 6 and big[s + y] == 0x3D:  # '=' padding
                            y += 1
                        self.base32(big[s + a : s + y], i, s + a)
            if (whole32 and upper and n >= 24) or not core.translate(None, _HEX_DASH):
                continue
            self.base64(run, i, s, not lower and not upper)

    def base64(self, run: bytes, i: int, s: int, mixed: bool) -> None:
        if len(run) > _LONG_RUN and run[-1] == 0x3D:
            data = dec.b64_decode(run, len(run) % 4)
        else:
            data = _SEP.join(dec.b64_decode_alignments(run))
        # Compressed data in base64 uses both letter cases (a single-case run
        # of 20+ random base64 chars has p < 1e-4), so only mixed-case runs
        # are worth a raw deflate/brotli attempt; words and paths are not.
        self.emit(data, ("base64",), i, s, s + len(run), _SNIFF_ALL if mixed else 0)

    def hex(self, run: bytes, i: int, s: int) -> None:
        data = _SEP.join([dec.hex_decode(run, 0), dec.hex_decode(run, 1)])
        self.emit(data, ("hex",), i, s, s + len(run), _SNIFF_ALL)

    def base32(self, run: bytes, i: int, s: int) -> None:
        n = len(run)
        if n > _LONG_RUN and run.endswith(b"="):
            data = dec.b32_decode(run, n % 8)
        else:
            data = _SEP.join([dec.b32_decode(run, o) for o in range(8)])
        self.emit(data, ("base32",), i, s, s + n, _SNIFF_ALL)

    # text escapes --------------------------------------------------------

    def url(self, pct: list[int], plus: list[int]) -> None:
        """Percent/plus-encoded query strings and form bodies.  The run of URL
        characters around a trigger is split at raw ``?&=;`` and each encoded
        component (a form value) becomes its own child, so a value is decoded
        from its first byte (a raw deflate/brotli value can be sniffed).  A
        component with only ``+`` is decoded when interior ``+`` are frequent
        enough to be spaces (>= 1 per 24 chars; base64 text has ~1 per 64, and
        a leading ``+`` is a phone number's)."""
        gen, big, minlen = self.gen, self.big, self.sc._minlen
        cur = -1
        if gen.depth == 0 and (m0 := _PLUS_AT_START.match(big)):
            plus = [m0.end(), *plus]
        for p in sorted([e - 1 for e in pct] + [e - 1 for e in plus]):
            if p < cur:
                continue
            i = gen.locate(p)
            if i < 0:
                continue
            a, z = _run_bounds(big, p, gen.starts[i], gen.end(i), _URL_MAP)
            cur = z
            if z - a < minlen:
                continue  # too short to hold an encoded needle
            for m in _URL_COMPONENT.finditer(big, a, z):
                ms, me = m.span()
                if me - ms < minlen:
                    continue
                percent = _has_pct(big, ms, me)
                if not percent:
                    # '+'-only: interior '+' dense enough to be spaces (counted
                    # in place: a component can be a whole base64 blob)
                    lo, hi = ms, me
                    while lo < hi and big[lo] == 0x2B:
                        lo += 1
                    while hi > lo and big[hi - 1] == 0x2B:
                        hi -= 1
                    if not 0 < big.count(b"+", lo, hi) * 24 >= me - ms:
                        continue
                part = big[ms:me]
                out = dec.url_decode(part)
                if out != part:  # '+'-only parts are text; binary needs %XX
                    self.emit(out, ("urlencode",), i, ms, me, _SNIFF_ALL if percent else 0)

    def json(self, ends: list[int]) -> None:
        """JSON string escapes: decode the enclosing string literal (bounded by
        unescaped quotes), wherever it is.  Regions holding raw control bytes
        other than tab/CR/LF are not JSON strings (random binary) and skipped."""
        gen, big = self.gen, self.big
        cur = -1
        for end in ends:
            p = end - 1  # inside the escape, so inside the string
            if p < cur:
                continue
            i = gen.locate(p)
            if i < 0:
                continue
            a, z = self._json_bounds(p, gen.starts[i], gen.end(i))
            cur = z
            if z - a < self.sc._minlen:
                continue
            region = big[a:z]
            if len(region.translate(None, _BINARY_CTRL)) != len(region):
                continue
            out = dec.json_unescape(region)
            if out != region:
                self.emit(out, ("json",), i, a, z, 0)

    def _json_bounds(self, p: int, fs: int, fe: int) -> tuple[int, int]:
        big = self.big
        lo, hi = max(fs, p - _MAX_JSON_STRING), min(fe, p + _MAX_JSON_STRING)
        a, k = lo, p
        while (q := big.rfind(b'"', lo, k)) >= 0:
            if not _escaped(big, q, fs):
                a = q + 1
                break
            k = q
        z, k = hi, p + 1
        while (q := big.find(b'"', k, hi)) >= 0:
            if not _escaped(big, q, fs):
                z = q
                break
            k = q + 1
        return a, z

    def html(self, ends: list[int]) -> None:
        """Character references: decode a window around each cluster (an
        encoded needle spans at most ~12 bytes per character)."""
        gen, big, w = self.gen, self.big, self.sc._html_window
        pending: tuple[int, int, int] | None = None
        for end in ends:
            p = big.rfind(b"&", max(0, end - 48), end)
            i = gen.locate(p)
            if i < 0:
                continue
            a, z = max(gen.starts[i], p - w), min(gen.end(i), p + w)
            if pending is not None and pending[0] == i and a <= pending[2]:
                pending = (i, pending[1], max(z, pending[2]))
                continue
            if pending is not None:
                self._html_emit(*pending)
            pending = (i, a, z)
        if pending is not None:
            self._html_emit(*pending)

    def _html_emit(self, i: int, a: int, z: int) -> None:
        region = self.big[a:z]
        out = dec.html_unescape(region)
        if out != region:
            self.emit(out, ("html",), i, a, z, 0)

    def utf16(self, runs: list[int], boms: list[int], big_endian: bool) -> None:
        """UTF-16 text: runs of >= 4 (Latin-1 char, NUL) pairs (or after a BOM),
        extended over up to 8 non-Latin-1 units at a time; decoding starts 16
        bytes early (same parity) so leading non-Latin-1 characters survive.
        A region never crosses a ``_SEP`` inside a piece (the alignments of a
        decoded run), whatever its parity."""
        gen, big = self.gen, self.big
        rx, rx_bom = (_U16BE_RUN, _U16BE_BOM_RUN) if big_endian else (_U16LE_RUN, _U16LE_BOM_RUN)
        elem = "utf16be" if big_endian else "utf16le"
        cur = -1
        starts = sorted([(e - 8, False) for e in runs] + [(e, True) for e in boms])
        for s, bom in starts:
            if s < cur:
                continue
            i = gen.locate(s)
            if i < 0:
                continue
            fs, fe = gen.starts[i], gen.end(i)
            m = (rx_bom if bom else rx).match(big, s, fe)
            if m is None:
                continue
            z = m.end()
            if (sep := big.find(_SEP, s, z)) >= 0:
                z = sep
            if z - s < 8:
                continue
            cur = z
            a = s if bom else max(fs + (s - fs) % 2, s - 16)
            if (sep := big.rfind(_SEP, a, s)) >= 0:
                a = sep + len(_SEP) + (s - sep) % 2
            self.emit(dec.utf16_decode(big[a:z], big_endian), (elem,), i, a, z, 0)
