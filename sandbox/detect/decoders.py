"""Small, bounded decoders for the encodings firmware uses to hide data.

Each function takes the exact region the scanner picked (the scanner decides
*where* to decode using cheap triggers; see ``scan.py``) and returns decoded
bytes, or ``None`` when the region does not decode.  None of them raises on
arbitrary input, and the decompressors never produce more than ``limit``
bytes: they use incremental decompressors with ``max_length`` /
``output_buffer_limit`` so a bomb costs at most ``limit`` bytes of memory.

Text-producing decoders (JSON, HTML, UTF-16) return UTF-8, since needles are
matched as UTF-8.
"""

from __future__ import annotations

import binascii
import html
import re
import zlib
from functools import lru_cache
from urllib.parse import unquote_to_bytes

import brotli

__all__ = [
    "inflate",
    "unbrotli",
    "decode_chunked",
    "url_decode",
    "json_unescape",
    "html_unescape",
    "b64_decode",
    "b64_decode_alignments",
    "b32_decode",
    "hex_decode",
    "utf16_decode",
    "xor_bytes",
    "mime_decode",
    "deflate_plausible",
    "brotli_plausible",
]

_FEED = 64 * 1024
_MIN_TRUNCATED_DEFLATE = 64
_WBITS = {"gzip": 31, "zlib": 15, "deflate": -15}


@lru_cache(maxsize=256)
def _xor_table(key: int) -> bytes:
    """Translation table mapping every byte b to b ^ key (built on demand)."""
    return bytes(b ^ key for b in range(256))


def xor_bytes(data: bytes, key: int) -> bytes:
    """Single-byte XOR via ``bytes.translate`` (C speed, no Python loop)."""
    return data.translate(_xor_table(key & 0xFF))


def deflate_plausible(head: bytes) -> bool:
    """Cheap check of a raw-deflate first block header before paying for zlib.

    Rejects the reserved block type 3 and stored blocks whose LEN/NLEN do not
    complement each other -- together most random starts.
    """
    if not head:
        return False
    btype = (head[0] >> 1) & 3
    if btype == 3:
        return False
    if btype == 0:
        if len(head) < 5:
            return False
        return (head[1] | head[2] << 8) ^ (head[3] | head[4] << 8) == 0xFFFF
    return True


def brotli_plausible(head: bytes) -> bool:
    """Cheap check of a brotli stream header (RFC 7932 sections 9.1-9.2).

    Brotli has no magic bytes and every decoder attempt costs microseconds,
    so reject up front: the reserved window code, an empty last meta-block,
    a metadata meta-block first (encoders never start with one) and MLEN with
    a superfluous zero top nibble.  About half of random starts fail here.
    """
    if len(head) < 5:
        return False
    v = int.from_bytes(head[:8], "little")
    if v & 1:
        if (v >> 1) & 7:
            pos = 4
        elif (v >> 4) & 7 == 1:
            return False
        else:
            pos = 7
    else:
        pos = 1
    if (v >> pos) & 1:  # ISLAST
        pos += 1
        if (v >> pos) & 1:  # ISLASTEMPTY
            return False
    pos += 1
    mnibbles = (v >> pos) & 3
    if mnibbles == 3:
        return False
    nibbles = mnibbles + 4
    mlen = (v >> (pos + 2)) & ((1 << (4 * nibbles)) - 1)
    return nibbles == 4 or mlen >> (4 * (nibbles - 1)) != 0


def inflate(data: bytes | memoryview, kind: str, limit: int, xor_key: int = 0) -> tuple[bytes, int] | None:
    """Decompress a gzip/zlib/raw-deflate stream starting at ``data[0]``.

    Returns ``(output, consumed_input_bytes)``.  Output stops at ``limit``
    bytes (bomb guard).  gzip and zlib streams were located by their magic
    bytes, so output produced before a corruption is kept (captures are often
    truncated or damaged); a raw deflate stream has no magic, so it must
    decode cleanly to its end, or through at least 64 input bytes when the
    input is truncated (a few random bytes often decode without error).
    ``xor_key`` undoes a single-byte XOR on the fly (XOR-obfuscated gzip).
    """
    if limit <= 0 or not data:
        return None
    view = memoryview(data)
    dec = zlib.decompressobj(_WBITS[kind])
    out: list[bytes] = []
    total = fed = 0
    table = _xor_table(xor_key) if xor_key else None
    try:
        while fed < len(view) and total < limit and not dec.eof:
            chunk: bytes | memoryview = view[fed : fed + _FEED]
            fed += len(chunk)
            if table is not None:
                chunk = bytes(chunk).translate(table)
            piece = dec.decompress(chunk, limit - total)
            out.append(piece)
            total += len(piece)
            while dec.unconsumed_tail and total < limit and not dec.eof:
                piece = dec.decompress(dec.unconsumed_tail, limit - total)
                out.append(piece)
                total += len(piece)
    except zlib.error:
        if kind == "deflate":
            return None
    if not total or (kind == "deflate" and not dec.eof and total < limit and fed < _MIN_TRUNCATED_DEFLATE):
        return None  # short input that is not a complete stream: random bytes
    consumed = fed - len(dec.unused_data) - len(dec.unconsumed_tail)
    return b"".join(out), max(consumed, 1)


def unbrotli(
    data: bytes | memoryview, limit: int, *, trailing: bool = False, min_truncated: int = 1024
) -> tuple[bytes, int] | None:
    """Decompress a brotli stream starting at ``data[0]`` (brotli has no magic).

    Every decoder call costs ~1 us, so the whole input is fed in one call.
    Brotli's decoder fails, losing its output, when fed bytes past the end of
    the stream; with ``trailing=True`` (an HTTP body followed by more of the
    flow) a failure is followed by a bisection on the input length (a prefix
    is "unfinished" before the stream end, "finished" exactly at it and an
    error past it) to recover the stream.  Accepted: a finished stream,
    output cut at ``limit`` (bomb), or a clean truncated stream of at least
    ``min_truncated`` input bytes (short "truncated" streams are mostly
    random bytes not rejected yet).  Returns ``(output, consumed_bytes)``.
    """
    if limit <= 0 or not data:
        return None
    view = memoryview(data)
    n = len(view)
    whole = _brotli_try(view, limit)
    if whole is not None:
        out, finished = whole
        if not out or (not finished and len(out) < limit and n < min_truncated):
            return None
        return out[:limit], n
    if not trailing or (n > 4 and _brotli_try(view[:4], limit) is None):
        return None
    lo, hi = 4, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        part = _brotli_try(view[:mid], limit)
        if part is None:
            hi = mid
            continue
        out, finished = part
        if finished or len(out) >= limit:
            return (out[:limit], mid) if out else None
        lo = mid
    return None


def _brotli_try(piece: memoryview, limit: int) -> tuple[bytes, bool] | None:
    """Decode ``piece`` with a fresh decoder: (output, finished) or None on error."""
    dec = brotli.Decompressor()
    try:
        produced = _brotli_feed(dec, piece, limit)
        return produced, bool(dec.is_finished())
    except brotli.error:
        return None


def _brotli_feed(dec: brotli.Decompressor, piece: bytes | memoryview, limit: int) -> bytes:
    """Feed one piece, draining output while the decoder holds it back."""
    parts = [dec.process(piece, output_buffer_limit=max(limit, 1))]
    got = len(parts[0])
    while not dec.can_accept_more_data() and got < limit:
        more = dec.process(b"", output_buffer_limit=limit - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,8})(?:;[^\r\n]{0,128})?\r\n")


def decode_chunked(buf: bytes, start: int, end: int) -> tuple[bytes, int, int] | None:
    """Undo HTTP/1.1 chunked transfer coding in ``buf[start:end]``.

    Returns ``(payload, n_chunks, end_offset)``.  Truncated captures are
    tolerated: a chunk cut short by the end of the buffer is kept.
    """
    parts: list[bytes] = []
    pos = start
    chunks = 0
    while pos < end:
        m = _CHUNK_LINE.match(buf, pos, end)
        if m is None:
            break
        size = int(m.group(1), 16)
        data_start = m.end()
        if size == 0:
            pos = data_start
            break
        data_end = min(data_start + size, end)
        parts.append(buf[data_start:data_end])
        chunks += 1
        pos = data_end
        if buf[pos : pos + 2] != b"\r\n":
            break
        pos += 2
    if not chunks:
        return None
    return b"".join(parts), chunks, pos


def url_decode(region: bytes) -> bytes:
    """Percent-decoding with ``+`` as space (query strings and form bodies)."""
    return unquote_to_bytes(region.replace(b"+", b" "))


_JSON_ESC = re.compile(
    rb"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|\\u([0-9a-fA-F]{4})"
    rb"|\\([\"\\/bfnrt])"
)
_JSON_SIMPLE_PAIRS = (
    (b'\\"', b'"'), (b"\\/", b"/"), (b"\\n", b"\n"), (b"\\r", b"\r"), (b"\\t", b"\t"), (b"\\b", b"\b"), (b"\\f", b"\f"),
)
_JSON_SIMPLE = {b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t"}


def _json_sub(m: re.Match[bytes]) -> bytes:
    if m.group(1) is not None:
        hi, lo = int(m.group(1), 16), int(m.group(2), 16)
        return chr(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)).encode("utf-8")
    if m.group(3) is not None:
        return chr(int(m.group(3), 16)).encode("utf-8", "surrogatepass")
    return _JSON_SIMPLE[m.group(4)]


def json_unescape(region: bytes) -> bytes:
    """Decode JSON string escapes (``\\uXXXX`` incl. surrogate pairs, ``\\n``, ``\\/`` ...).

    Lenient: bytes that are not escapes pass through untouched, so it works on
    the inside of a string literal found anywhere, not only on whole JSON
    documents.  Lone surrogates are kept (UTF-8 "surrogatepass") rather than
    raising.  Without ``\\u`` and ``\\\\`` every backslash starts a simple
    escape, so plain ``bytes.replace`` is exact (the common ``\\/`` case).
    """
    if b"\\u" not in region and b"\\\\" not in region:
        region = region.replace(b"\\/", b"/")  # by far the most common escape
        if b"\\" in region:
            for esc, char in _JSON_SIMPLE_PAIRS:
                region = region.replace(esc, char)
        return region
    return _JSON_ESC.sub(_json_sub, region)


_ENTITY = re.compile(rb"&(?:#[0-9]{1,7};?|#[xX][0-9A-Fa-f]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};?)")


def _entity_sub(m: re.Match[bytes]) -> bytes:
    text = m.group().decode("ascii")
    out = html.unescape(text)
    if out == text:
        return m.group()
    return out.encode("utf-8", "surrogatepass")


def html_unescape(region: bytes) -> bytes:
    """Decode HTML character references (named, decimal, hex) in UTF-8 bytes.

    Uses :func:`html.unescape` per reference (HTML5 rules, legacy names
    without ``;``); all other bytes pass through, so non-UTF-8 surroundings
    survive unchanged.
    """
    return _ENTITY.sub(_entity_sub, region)


_B64_URL_TO_STD = bytes.maketrans(b"-_", b"+/")


def b64_decode(run: bytes, offset: int = 0) -> bytes:
    """Decode a base64 run (standard or URL-safe, padded or not) from ``offset``.

    Padding is recomputed, a dangling single character dropped, and trailing
    characters past the payload only add junk bytes at the end, so a payload
    glued to neighbouring alphabet characters still decodes at the right
    offset.
    """
    return _b64(run.rstrip(b"=").translate(_B64_URL_TO_STD), offset)


def b64_decode_alignments(run: bytes) -> list[bytes]:
    """:func:`b64_decode` at offsets 0-3.

    Short runs are decoded four times.  For long runs (blobs) the 6-bit
    stream is decoded once and the other alignments are cut from it with
    big-integer shifts (skipping ``o`` characters drops ``6*o`` bits), which
    is ~3x cheaper than three more ``a2b_base64`` passes.
    """
    body = run.rstrip(b"=").translate(_B64_URL_TO_STD)
    n = len(body)
    if n < 256:
        return [_b64(body, 0), _b64(body, 1), _b64(body, 2), _b64(body, 3)]
    try:
        full = binascii.a2b_base64(body + b"A" * (-n % 4))
    except (binascii.Error, ValueError):
        return [_b64(body, 0), _b64(body, 1), _b64(body, 2), _b64(body, 3)]
    bits = len(full) * 8
    value = int.from_bytes(full, "big")
    outs = [full[: 6 * n // 8]]
    for o in (1, 2, 3):
        m = 6 * (n - o) // 8
        shift = bits - 6 * o - 8 * m
        outs.append((value >> shift).to_bytes((bits - shift + 7) // 8, "big")[-m:])
    return outs


def _b64(body: bytes, offset: int) -> bytes:
    if offset:
        body = body[offset:]
    rem = len(body) & 3
    if rem == 1:
        body = body[:-1]
    elif rem:
        body += b"==" if rem == 2 else b"="
    try:
        return binascii.a2b_base64(body)
    except (binascii.Error, ValueError):
        return b""


_B32_TO_HEX32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghijklmnopqrstuv")


def b32_decode(run: bytes, offset: int = 0) -> bytes:
    """Decode an RFC 4648 base32 run (either case, padding optional) from ``offset``.

    Implemented as one big-integer parse (``int(..., 32)`` after mapping to
    the base32hex digit set), which is linear and C-speed, unlike
    :func:`base64.b32decode`.  Incomplete trailing bits are dropped.
    """
    body = run[offset:].rstrip(b"=").upper()
    nbytes = len(body) * 5 // 8
    if not nbytes:
        return b""
    try:
        value = int(body.translate(_B32_TO_HEX32), 32)
    except ValueError:
        return b""
    value >>= len(body) * 5 - nbytes * 8
    return value.to_bytes(nbytes, "big")


def hex_decode(run: bytes, offset: int = 0) -> bytes:
    """Decode a hex run (any case) from ``offset``; an odd last digit is dropped."""
    body = run[offset:]
    body = body[: len(body) & ~1]
    try:
        return bytes.fromhex(body.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return b""


def utf16_decode(region: bytes, big_endian: bool) -> bytes:
    """UTF-16 (LE or BE) to UTF-8; broken surrogates become U+FFFD."""
    region = region[: len(region) & ~1]
    return region.decode("utf-16-be" if big_endian else "utf-16-le", "replace").encode("utf-8")


_B64_KEEP = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
_B64_DROP = bytes(b for b in range(256) if b not in _B64_KEEP)


def mime_decode(body: bytes, transfer_encoding: str) -> bytes:
    """Undo a MIME Content-Transfer-Encoding (``base64`` with line breaks, or
    ``quoted-printable``) as used in multipart bodies and e-mail."""
    if transfer_encoding == "quoted-printable":
        try:
            return binascii.a2b_qp(body)
        except (binascii.Error, ValueError):
            return b""
    return b64_decode(body.translate(None, _B64_DROP))
