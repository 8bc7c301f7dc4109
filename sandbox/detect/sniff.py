"""Which candidate stream starts are worth a raw deflate / brotli attempt, in bulk.

Why a module: raw deflate and brotli have no magic, so the scanner tries
them at the start of every decoded binary piece (``regions.Decoding.starts``)
-- in header-heavy traffic one per request id or token.  The scalar checks
(:func:`decoders.deflate_plausible`, :func:`decoders.brotli_plausible`)
cost ~0.2 and ~1.4 us of interpreter work per start; here the same bit tests
run as numpy array operations over all starts of a generation, so only the
starts that pass cost Python work.  The results are those of the scalar
functions on ``big[q:q+8]`` exactly (a head cut short by the end of the
buffer is zero-extended, as ``int.from_bytes`` of the shorter head is);
``tests/unit/detect/test_detect_sniff.py`` holds them to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .decoders import brotli_plausible, deflate_plausible

_BULK = 16  # fewer starts than this: the scalar checks are cheaper than array set-up
_ZLIB_SECOND = np.array([0x01, 0x5E, 0x9C, 0xDA], np.uint8)


def sniff_flags(big: bytes, starts: Sequence[int]) -> tuple[list[bool], list[bool], list[bool]]:
    """``(magic, deflate, brotli)`` per start ``q``: the 8-byte head at ``q``
    begins with a gzip or zlib magic (those streams are found by their
    trigger instead), passes :func:`deflate_plausible`, passes
    :func:`brotli_plausible`."""
    if len(starts) < _BULK:
        heads = [big[q : q + 8] for q in starts]
        return (
            [h[:2] == b"\x1f\x8b" or (h[:1] == b"\x78" and h[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda")) for h in heads],
            [deflate_plausible(h) for h in heads],
            [brotli_plausible(h) for h in heads],
        )
    n = len(big)
    q = np.asarray(starts, np.int64)
    idx = q[:, None] + np.arange(8, dtype=np.int64)
    inside = idx < n
    data = np.frombuffer(big, np.uint8)
    b = np.where(inside, data[np.minimum(idx, max(n - 1, 0))] if n else 0, 0).astype(np.uint8)
    hl = inside.sum(axis=1)
    b0, b1 = b[:, 0], b[:, 1]
    magic = ((b0 == 0x1F) & (b1 == 0x8B)) | ((b0 == 0x78) & np.isin(b1, _ZLIB_SECOND))
    # deflate: reserved block type 3 out; a stored block needs LEN == ~NLEN
    btype = (b0 >> 1) & 3
    w = b[:, 1:5].astype(np.uint32)
    stored_ok = (hl >= 5) & (((w[:, 0] | w[:, 1] << 8) ^ (w[:, 2] | w[:, 3] << 8)) == 0xFFFF)
    deflate = (hl > 0) & (btype != 3) & ((btype != 0) | stored_ok)
    # brotli: see decoders.brotli_plausible, step by step on uint64 words
    v = np.ascontiguousarray(b).view("<u8").ravel()
    one, three, seven = np.uint64(1), np.uint64(3), np.uint64(7)
    odd = (v & one).astype(bool)
    wbits = (v >> np.uint64(1)) & seven
    pos = np.where(odd, np.where(wbits != 0, 4, 7), 1).astype(np.uint64)
    bad = odd & (wbits == 0) & (((v >> np.uint64(4)) & seven) == 1)  # reserved window code
    islast = ((v >> pos) & one).astype(bool)
    pos = pos + islast.astype(np.uint64)
    bad |= islast & ((v >> pos) & one).astype(bool)  # ISLASTEMPTY
    pos = pos + one
    mnibbles = (v >> pos) & three
    bad |= mnibbles == 3  # a metadata meta-block first
    nibbles = mnibbles + np.uint64(4)
    mlen = (v >> (pos + np.uint64(2))) & ((one << (np.uint64(4) * nibbles)) - one)
    top_ok = (nibbles == 4) | ((mlen >> (np.uint64(4) * (nibbles - one))) != 0)
    brot = (hl >= 5) & ~bad & top_ok
    return magic.tolist(), deflate.tolist(), brot.tolist()
