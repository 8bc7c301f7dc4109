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
by ``SEP`` (``generations.py``), into the next generation, so steps 1-3 are always C-level
passes over one buffer no matter how many small pieces there are; Python
work is per trigger hit, not per byte.  Depth is
bounded by ``max_depth`` and the total number of decoded bytes by
``max_decoded_bytes`` (decompressors are given the remaining budget as their
output limit, so bombs stop there).

Where the parts live
--------------------
This module holds the public types and the :class:`Scanner` (construction,
the matcher passes of step 1-2, the digest lookup, hit recording).  The
rest of the pipeline: ``generations.py`` (a generation's pieces in one
buffer), ``alphabets.py`` (alphabet runs at C speed), ``regions.py`` (the
triggers of step 3 and the choice of regions of step 4), ``decoders.py``
(the bounded decoders), ``sniff.py`` (raw deflate/brotli start checks
in bulk), ``matcher.py`` (Hyperscan/pyahocorasick passes),
``hashing.py`` (digest renderings and their lookup table).

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
The sequence is stored inverted, ``~(a ^ b)``: the differences of ASCII
text are below 0x80, so inverted they never hold a NUL, and Hyperscan's
literal compiler (which takes C strings) compiles them all into one
database; plain differences of repeated digits ("555") are NULs, which sent
most phone numbers to a second, regex-compiled database and a second pass.
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

import os
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from operator import xor

import numpy as np

from . import decoders as dec
from .alphabets import HEX_MAP, at_least, run_list
from .generations import Budget, Gen
from .hashing import HASHERS, KIND_BY_LEN, URL_KIND, HashForm, B64URL, B64URL_TO_STD, digest_table, digest_text, hex_kind
from .matcher import LiteralMatcher, RegexTriggers, resolve_backend
from .regions import N_TRIGGERS, Decoding, RegionParams, trigger_regexes

__all__ = ["Needle", "Hit", "Scanner", "ScanError", "ScanStats"]

_DIGEST_SLIDE = 256  # runs up to this long are searched for digest texts at every offset
_XOR_BLOCK = 4 << 20
_INVERT = bytes(range(255, -1, -1))  # b ^ 0xFF for every byte b


def _pattern_diff(raw: bytes) -> bytes:
    """A literal's difference sequence as the XOR automaton holds it, the
    counterpart of :func:`_diff` for a buffer: ``~(raw[i] ^ raw[i+1])``."""
    return bytes(map(xor, raw, raw[1:])).translate(_INVERT)


_GZIP_DIFF = _pattern_diff(b"\x1f\x8b\x08")


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


# A form is (ref, needle text, hashed form or None).
_Form = tuple[Hashable, str, HashForm | None]
_Hits = dict[tuple[Hashable, tuple[str, ...]], Hit]



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


def _cpus() -> int:
    """CPUs this process may run on (the compile threads' default)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _diff(big: bytes) -> bytes:
    """``d[i] = ~(big[i] ^ big[i+1])``: one numpy XOR of the buffer with itself
    shifted by a byte and an in-place inversion (~0.1 ms/MB; the big-int XOR
    it replaced cost ~1.7).  Inverted: see "XOR" in the module docstring."""
    a = np.frombuffer(big, np.uint8)
    d = np.bitwise_xor(a[:-1], a[1:])
    np.invert(d, out=d)
    return d.tobytes()


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
        compile_workers: int | None = None,
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
                d = _pattern_diff(raw)
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
        self._xor_maxlen = max(map(len, self._xor_pats))
        # The automata compile in threads (Hyperscan's compiler releases the
        # GIL; the literal and XOR automata are each ~1 s for 10,000 canaries)
        # while this thread builds the digest table.
        workers = compile_workers if compile_workers is not None else _cpus()
        with ThreadPoolExecutor(max_workers=max(1, min(3, workers)), thread_name_prefix="hs-compile") as pool:
            lit = pool.submit(LiteralMatcher, self._lit_pats, lit_fold, backend=self.backend)
            xor_ = pool.submit(LiteralMatcher, self._xor_pats, backend=self.backend)
            # Per scanner (~0.1 s), never a process-wide cache: nothing mutable is shared.
            trig = pool.submit(RegexTriggers, trigger_regexes(), backend=self.backend)
            # Hashed forms are looked up by window, not compiled into the automaton
            # (see _match_digests): ~8 per needle would be most of its literals,
            # and Hyperscan compiles ~25k literals a second.
            by_raw = {raw: tuple([f[0] for f in forms]) for raw, forms in lits.items()} if hashes else {}
            self._digest_lens: dict[bool, tuple[int, ...]] = {True: (), False: ()}
            self._digest_xs: dict[bool, bytes] = {True: b"", False: b""}
            self._digests, self._b64_digest_all_hex = digest_table(by_raw)
            if self._digests:  # the window sizes to try: digest text lengths, hex and base64
                sizes = [hasher().digest_size for _, hasher in HASHERS]
                self._digest_lens = {True: tuple(sorted(2 * n for n in sizes)),
                                     False: tuple(sorted(-(-4 * n // 3) for n in sizes))}  # unpadded base64
                for is_hex in (True, False):  # runs of class-mapped "x" at least that long
                    self._digest_xs[is_hex] = b"x" * self._digest_lens[is_hex][0]
            self._lit, self._xor, self._trig = lit.result(), xor_.result(), trig.result()
        # Shortest runs worth decoding: the encoded length of the shortest
        # needle value (a 10-digit phone number is 14 base64 characters),
        # clamped to [8, 16] (16 is enough for anything longer).
        minval = min((len(p) for p, fold in zip(self._lit_pats, lit_fold) if not fold), default=12)
        self._regions = RegionParams(
            x_b64=b"x" * max(8, min(16, -(-4 * minval // 3))),
            x_hex=b"x" * max(8, min(16, 2 * minval)),
            x_b32=b"x" * max(8, min(16, -(-8 * minval // 5))),
            minlen=min((len(p) for p in self._lit_pats), default=1),
            html_window=12 * maxlen + 64,
        )

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
        budget = Budget(self._max_bytes)
        gen = Gen.root(data)
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
            children = Decoding(self._regions, gen, budget).run(xor_gzip, self._triggered(gen.big))
            if not children:
                break
            for c in children:
                stats.decoder_calls[c[1][-1]] = stats.decoder_calls.get(c[1][-1], 0) + 1
            gen = Gen.from_children(children, gen)
        stats.decoded_bytes = self._max_bytes - budget.left
        stats.budget_exhausted = budget.exhausted

    def _triggered(self, big: bytes) -> list[list[int]]:
        """Trigger match ends per trigger, sorted (one pass per trigger group)."""
        buckets: list[list[int]] = [[] for _ in range(N_TRIGGERS)]
        for t, end in self._trig.scan(big):
            buckets[t].append(end)
        for b in buckets:
            b.sort()
        return buckets

    def _match_digests(self, gen: Gen, prev: bytes | None, hits: _Hits) -> None:
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
            if is_hex or len(xs) < len(self._regions.x_b64):
                runs = run_list(big.translate(HEX_MAP) if is_hex else gen.b64_map(), xs)
            else:  # the decoders' runs (shorter minimum, found once), the long ones
                runs = at_least(gen.b64_runs(self._regions.x_b64), len(xs))
            for a, z in zip(*runs):
                key = big[a:z]
                if key in vain:
                    continue
                i = gen.locate(a)
                if i >= 0 and not self._digest_windows(gen, prev, hits, i, a, z, is_hex):
                    vain.add(key)

    def _digest_windows(self, gen: Gen, prev: bytes | None, hits: _Hits, i: int, a: int, z: int,
                        is_hex: bool) -> bool:
        """Look one run up; True when a digest key was found in it."""
        big, table, n = gen.big, self._digests, z - a
        found = False
        if not is_hex and not self._b64_digest_all_hex and b"." not in big[a:z].translate(HEX_MAP):
            return False  # an all-hex run holds no base64 digest of this set (its hex digests: the hex pass)
        seg = big[a:z]
        if is_hex:
            seg = seg.lower()
        elif b"-" in seg or b"_" in seg:  # URL-safe: the table holds standard base64 only
            seg = seg.translate(B64URL_TO_STD)
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
                    refs, kind = table[key], KIND_BY_LEN[size]
                    text = key
                    if not is_hex and (b"-" in matched or b"_" in matched):
                        if b"+" in matched or b"/" in matched:
                            continue  # both alphabets: no rendering of this digest
                        kind, text = URL_KIND[kind], key.translate(B64URL)
                    for ref in refs:
                        self._record(hits, gen, i, p, p + size, (ref, digest_text(text, kind), kind), matched, 0)
        return found

    def _match(self, gen: Gen, prev: bytes | None, hits: _Hits) -> None:
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

    def _match_xor(self, gen: Gen, prev: bytes | None, hits: _Hits) -> list[int]:
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
        self, hits: _Hits, gen: Gen, i: int, start: int, end: int, form: _Form, matched: bytes, key: int
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
