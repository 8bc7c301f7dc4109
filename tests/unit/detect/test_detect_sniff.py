"""sandbox.detect.sniff: the bulk stream-start checks equal the scalar ones exactly."""

from __future__ import annotations

import random
import zlib

import brotli

from sandbox.detect import decoders as dec
from sandbox.detect.sniff import sniff_flags


def scalar(big: bytes, starts: list[int]) -> tuple[list[bool], list[bool], list[bool]]:
    heads = [big[q : q + 8] for q in starts]
    magic = [h[:2] == b"\x1f\x8b" or (h[:1] == b"\x78" and h[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda")) for h in heads]
    return magic, [dec.deflate_plausible(h) for h in heads], [dec.brotli_plausible(h) for h in heads]


def test_bulk_equals_scalar_on_random_heads() -> None:
    rng = random.Random(7)
    big = rng.randbytes(20000)
    starts = sorted(rng.sample(range(len(big)), 3000)) + list(range(len(big) - 9, len(big)))
    assert sniff_flags(big, starts) == scalar(big, starts)


def test_bulk_equals_scalar_on_real_streams_and_magic() -> None:
    parts = [brotli.compress(b"some text " * 7, quality=q) for q in range(12)]
    parts += [zlib.compress(b"abc" * 20)[2:], b"\x1f\x8b\x08\x00", b"\x78\x9c\x01", b"\x01\x05\x00\xfa\xff", b"\x06\x00\x00"]
    big = b"".join(parts)
    starts, q = [], 0
    for p in parts:
        starts.append(q)
        q += len(p)
    starts += list(range(len(big) - 4, len(big)))
    assert len(starts) >= 16  # the bulk path
    assert sniff_flags(big, starts) == scalar(big, starts)
    assert any(sniff_flags(big, starts)[2]) and any(sniff_flags(big, starts)[0])


def test_few_starts_use_the_scalar_checks() -> None:
    big = brotli.compress(b"hello hello hello")
    assert sniff_flags(big, [0, 1]) == scalar(big, [0, 1])
    assert sniff_flags(b"", []) == ([], [], [])
