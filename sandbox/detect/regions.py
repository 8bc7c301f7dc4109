"""Which regions of a generation are decoded, and into what.

Why a module: this is the decoding step of the scan pipeline (matcher pass
-> triggers -> regions -> next generation).  The trigger regexes (one
Hyperscan pass) and the base64-alphabet runs (``alphabets.py``) say *where*
to look; :class:`Decoding` picks each region's bounds, calls the bounded
decoders of ``decoders.py`` and emits the decoded bytes as children of the
next generation (``generations.py``).  ``scan.py`` describes the model.
"""

from __future__ import annotations

import re
from binascii import a2b_hex
from dataclasses import dataclass

from . import decoders as dec
from .alphabets import (
    B32L_MAP,
    B32U_MAP,
    BINARY_CTRL,
    HEX_MAP,
    URL_MAP,
    distinct_runs,
    is_escaped,
    has_pct,
    run_bounds,
    run_list,
)
from .generations import MIN_CHILD, SEP, SNIFF_ALL, SNIFF_BODY, SNIFF_BROTLI, SNIFF_DEFLATE, Budget, Child, Gen
from .matcher import Trigger
from .sniff import sniff_flags


@dataclass(frozen=True)
class RegionParams:
    """What a scanner's needles decide about which regions are worth decoding.

    Passed in by the scanner, so that the decoders never import it (the
    scanner drives them; the layering check forbids the cycle)."""

    x_b64: bytes  # a base64 run shorter than this many chars cannot hold the shortest needle
    x_hex: bytes  # a hex run shorter than this many chars cannot hold the shortest needle
    x_b32: bytes  # the same for base32
    minlen: int  # the shortest literal pattern
    html_window: int  # how far around a character reference to decode HTML

_LONG_RUN = 256  # runs longer than this use the padding-derived alignment only
_MAX_JSON_STRING = 1 << 20


# Trigger indices.  Each regex's *end* marks where to look; see Decoding.
(
    T_GZIP, T_ZLIB, T_CHUNK, T_CE_DEFLATE, T_CE_BR,
    T_PCT, T_PLUS, T_JSON, T_HTML, T_U16LE, T_U16BE, T_BOM_LE, T_BOM_BE,
    T_MIME_B64, T_MIME_QP,
) = range(15)  # fmt: skip
N_TRIGGERS = 15


def trigger_regexes() -> list[Trigger]:
    """The trigger regexes, in T_* order.  Runs of the base64 alphabet (and
    the hex and base32 runs inside them) are not triggers: they are found
    with ``translate`` + ``find`` (see ``Decoding.runs``), which is C speed
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


class Decoding:
    """Decode the regions one generation's triggers point at into children.

    Each child is ``(data, chain elements, parent piece, src start, src end,
    sniff)``; ``sniff`` asks the next generation to try raw deflate/brotli
    at the child's first byte (set for binary-carrying encodings).
    """

    def __init__(self, params: RegionParams, gen: Gen, budget: Budget) -> None:
        self.sc = params
        self.gen = gen
        self.big = gen.big
        self.view = memoryview(gen.big)
        self.budget = budget
        self.out: list[Child] = []
        self._done: set[tuple[str, tuple[str, ...], bytes]] = set()

    def first(self, kind: str, i: int, region: bytes) -> bool:
        """True the first time ``region`` is offered to decoder ``kind`` under
        piece ``i``'s chain.  An identical region under the same chain decodes
        to an identical child, whose hits (verified against an identical
        parent region, excerpted within the child) the first copy already
        reports: ``(ref, chain)`` keeps the first hit.  Repeated JSON strings
        (URLs, keys), query components and references cost a set lookup."""
        key = (kind, self.gen.chain(i) if self.gen.depth else (), region)
        if key in self._done:
            return False
        self._done.add(key)
        return True

    def emit(self, data: bytes, elems: tuple[str, ...], frag: int, s: int, e: int, sniff: int) -> None:
        if len(data) >= MIN_CHILD and self.budget.take(len(data)):
            self.out.append((data, elems, frag, s, e, sniff))

    def run(self, xor_gzip: list[int], buckets: list[list[int]]) -> list[Child]:
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
            self.emit(res[0], elems, i, p, p + res[1], SNIFF_ALL)

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
        for bucket, which in ((buckets[T_CE_DEFLATE], SNIFF_DEFLATE), (buckets[T_CE_BR], SNIFF_BROTLI)):
            which |= SNIFF_BODY
            for end in bucket:
                i = gen.locate(end)
                if i < 0:
                    continue
                q = big.find(b"\r\n\r\n", end, min(gen.end(i), end + 16384))
                if q >= 0:
                    todo.append((q + 4, i, which))
        # The head checks run over all starts at once (sniff.py); only starts
        # where a format is plausible cost Python work here.
        for (q, i, which), magic, deflate, brot in zip(todo, *sniff_flags(big, [t[0] for t in todo])):
            fe = gen.end(i)
            if q >= fe or self.budget.left <= 0 or magic:
                continue
            deflate = deflate and bool(which & SNIFF_DEFLATE)
            brot = brot and bool(which & SNIFF_BROTLI)
            if not (deflate or brot):
                continue
            body = which & SNIFF_BODY
            if not body:  # a decoded payload ends at its first separator (alignments)
                sep = big.find(SEP, q, fe)
                fe = fe if sep < 0 else sep
            # Both are tried: a few bytes of one format can be a valid tiny
            # stream of the other.
            if deflate:
                res = dec.inflate(self.view[q:fe], "deflate", self.budget.left)
                if res is not None:
                    self.emit(res[0], ("deflate",), i, q, q + res[1], SNIFF_ALL)
            if brot:
                got = dec.unbrotli(self.view[q:fe], self.budget.left, trailing=bool(body))
                if got is not None:
                    self.emit(got[0], ("brotli",), i, q, q + got[1], SNIFF_ALL)

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
                self.emit(res[0], ("chunked",), i, q, res[2], SNIFF_ALL)

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
                self.emit(out, (elem,), i, body, stop, SNIFF_ALL if cte == "base64" else 0)

    # runs of an encoding alphabet ---------------------------------------

    def runs(self) -> None:
        """Maximal base64-alphabet runs (>= 16 chars, or the base64 length of
        the shortest needle if less), plus the hex and base32 runs inside them
        (both alphabets are subsets, so one search finds all).

        base64 is decoded at all 4 alignments (a payload may be glued to other
        alphabet chars), hex at 2 and base32 at 8, each run into one child
        whose alignments are ``SEP``-separated; long padded runs use the
        alignment the padding implies.  A run is not decoded as base64 when it
        cannot plausibly be base64 of anything: only hex digits and ``-``
        (IDs, UUIDs; random base64 of 16+ chars is that with p < 1e-7) or,
        from 24 chars, only upper-case base32 characters (p < 6e-8).  Sub-runs
        and the runs themselves are located with ``translate`` + ``find`` (C
        speed, even in long blobs; no separator holds an alphabet byte, so no
        run crosses pieces).  Identical runs under one chain are decoded once.
        """
        gen, big = self.gen, self.big
        x_hex, x_b32 = self.sc.x_hex, self.sc.x_b32
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
        runs = gen.b64_runs(self.sc.x_b64)
        # one chain: identical runs (with their '=' padding) are skipped in C
        found = distinct_runs(big, runs, 2) if single else zip(*runs)
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
            hexmap = core.translate(HEX_MAP)
            if b"." not in hexmap:
                self.hex(core, i, s)
                continue
            lower, upper = core.islower(), core.isupper()
            if x_hex in hexmap:
                for a, y in zip(*run_list(hexmap, x_hex)):
                    self.hex(core[a:y], i, s + a)
            whole32 = False
            for table, wanted in ((B32U_MAP, not lower), (B32L_MAP, not upper)):
                if wanted and x_b32 in (mapped := core.translate(table)):
                    for a, y in zip(*run_list(mapped, x_b32)):
                        whole32 = whole32 or y - a == n
                        while y < fe - s and y - a < n + 6 and big[s + y] == 0x3D:  # '=' padding
                            y += 1
                        self.base32(big[s + a : s + y], i, s + a)
            # only hex digits and '-': every non-hex byte of the class map is a '-'
            # (two C counts; deleting them with translate copied the run, ~4 ms/MB)
            if (whole32 and upper and n >= 24) or hexmap.count(b".") == core.count(b"-"):
                continue
            self.base64(run, i, s, not lower and not upper)

    def base64(self, run: bytes, i: int, s: int, mixed: bool) -> None:
        if len(run) > _LONG_RUN and run[-1] == 0x3D:
            data = dec.b64_decode(run, len(run) % 4)
        else:
            data = SEP.join(dec.b64_decode_alignments(run))
        # Compressed data in base64 uses both letter cases (a single-case run
        # of 20+ random base64 chars has p < 1e-4), so only mixed-case runs
        # are worth a raw deflate/brotli attempt; words and paths are not.
        self.emit(data, ("base64",), i, s, s + len(run), SNIFF_ALL if mixed else 0)

    def hex(self, run: bytes, i: int, s: int) -> None:
        # A run holds hex digits only (either case), so ``a2b_hex`` of its
        # even-length prefixes is exactly ``hex_decode`` at both alignments,
        # at a fifth of the cost (no str round trip).
        n = len(run)
        data = SEP.join([a2b_hex(run[: n & ~1]), a2b_hex(run[1 : 1 + ((n - 1) & ~1)])])
        self.emit(data, ("hex",), i, s, s + len(run), SNIFF_ALL)

    def base32(self, run: bytes, i: int, s: int) -> None:
        n = len(run)
        if n > _LONG_RUN and run.endswith(b"="):
            data = dec.b32_decode(run, n % 8)
        else:
            data = SEP.join([dec.b32_decode(run, o) for o in range(8)])
        self.emit(data, ("base32",), i, s, s + n, SNIFF_ALL)

    # text escapes --------------------------------------------------------

    def url(self, pct: list[int], plus: list[int]) -> None:
        """Percent/plus-encoded query strings and form bodies.  The run of URL
        characters around a trigger is split at raw ``?&=;`` and each encoded
        component (a form value) becomes its own child, so a value is decoded
        from its first byte (a raw deflate/brotli value can be sniffed).  A
        component with only ``+`` is decoded when interior ``+`` are frequent
        enough to be spaces (>= 1 per 24 chars; base64 text has ~1 per 64, and
        a leading ``+`` is a phone number's)."""
        gen, big, minlen = self.gen, self.big, self.sc.minlen
        cur = -1
        if gen.depth == 0 and (m0 := _PLUS_AT_START.match(big)):
            plus = [m0.end(), *plus]
        for p in sorted([e - 1 for e in pct] + [e - 1 for e in plus]):
            if p < cur:
                continue
            i = gen.locate(p)
            if i < 0:
                continue
            a, z = run_bounds(big, p, gen.starts[i], gen.end(i), URL_MAP)
            cur = z
            if z - a < minlen:
                continue  # too short to hold an encoded needle
            for m in _URL_COMPONENT.finditer(big, a, z):
                ms, me = m.span()
                if me - ms < minlen:
                    continue
                percent = has_pct(big, ms, me)
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
                if not self.first("url", i, part):
                    continue
                out = dec.url_decode(part)
                if out != part:  # '+'-only parts are text; binary needs %XX
                    self.emit(out, ("urlencode",), i, ms, me, SNIFF_ALL if percent else 0)

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
            if z - a < self.sc.minlen:
                continue
            region = big[a:z]
            if not self.first("json", i, region):
                continue
            if len(region.translate(None, BINARY_CTRL)) != len(region):
                continue
            out = dec.json_unescape(region)
            if out != region:
                self.emit(out, ("json",), i, a, z, 0)

    def _json_bounds(self, p: int, fs: int, fe: int) -> tuple[int, int]:
        big = self.big
        lo, hi = max(fs, p - _MAX_JSON_STRING), min(fe, p + _MAX_JSON_STRING)
        a, k = lo, p
        while (q := big.rfind(b'"', lo, k)) >= 0:
            if not is_escaped(big, q, fs):
                a = q + 1
                break
            k = q
        z, k = hi, p + 1
        while (q := big.find(b'"', k, hi)) >= 0:
            if not is_escaped(big, q, fs):
                z = q
                break
            k = q + 1
        return a, z

    def html(self, ends: list[int]) -> None:
        """Character references: decode a window around each cluster (an
        encoded needle spans at most ~12 bytes per character)."""
        gen, big, w = self.gen, self.big, self.sc.html_window
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
        if not self.first("html", i, region):
            return
        out = dec.html_unescape(region)
        if out != region:
            self.emit(out, ("html",), i, a, z, 0)

    def utf16(self, runs: list[int], boms: list[int], big_endian: bool) -> None:
        """UTF-16 text: runs of >= 4 (Latin-1 char, NUL) pairs (or after a BOM),
        extended over up to 8 non-Latin-1 units at a time; decoding starts 16
        bytes early (same parity) so leading non-Latin-1 characters survive.
        A region never crosses a ``SEP`` inside a piece (the alignments of a
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
            if (sep := big.find(SEP, s, z)) >= 0:
                z = sep
            if z - s < 8:
                continue
            cur = z
            a = s if bom else max(fs + (s - fs) % 2, s - 16)
            if (sep := big.rfind(SEP, a, s)) >= 0:
                a = sep + len(SEP) + (s - sep) % 2
            self.emit(dec.utf16_decode(big[a:z], big_endian), (elem,), i, a, z, 0)
