"""Property tests: a canary pushed through a random encoding chain is found with
that chain; unrelated data yields nothing; bombs stay within the budget.

Generator constraints (and why):

* Layers have types.  json-escape, html-entities and utf16le/be take text
  (valid UTF-8) only -- escaping raw binary as JSON/HTML/UTF-16 is not a
  lossless encoding.  Everything else takes any bytes.
* chunked is transport framing: only the outermost layer, after HTTP headers.
* xor-k is found by known plaintext: only directly over the canary or over a
  gzip stream (magic bytes).  XOR over text encodings has no known plaintext.
* raw deflate and brotli have no magic: they are sniffed where a stream
  starts (HTTP body announced by Content-Encoding, start of a decoded
  payload).  So when the chain contains them the outermost encoding is
  delimited (a space / the HTTP header), not glued to random bytes.
* Bodies contain spaces (>= 1 per 24 chars, so '+'-only URL encoding is
  recognised as text), and at most 8 consecutive non-Latin-1 characters (the
  UTF-16 detector follows runs of (char, NUL) pairs).
* A '=' glued right after an unpadded base64/base32 run looks like padding;
  suffix junk never starts with '='.

Expected chain (documented normalisations): base64 / base64url-nopad ->
"base64", hex-upper / hex-lower -> "hex", json-escape -> "json",
html-entities -> "html", xor-k -> "xor-0xkk"; a layer that leaves the
canary's current representation verbatim in its output (JSON/HTML escaping
of text without special characters, a body sent as one chunk, brotli storing
a short input uncompressed...) is dropped, because the scanner reports a hit
at the shallowest layer where the canary is visible -- except that a raw
deflate/brotli stream is only "visible" at the start of its container.  The
canary's representation after a character-wise layer (XOR, URL, HTML, UTF-16,
hex) is the encoding of the canary alone; after any other layer it is the
whole payload; a JSON string includes its quotes (they are how it is found).  The expected chain
must be among the chains reported for the canary; other canaries must not be
reported.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import html.entities
import json
import logging
import os
import resource
import zlib
from dataclasses import dataclass
from urllib.parse import quote_plus

import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.detect import Hit, Needle, Scanner

PHONES = ["+1540555%04d" % n for n in (123, 4567, 8910, 2468, 1357, 9999, 1000, 3141)] + [
    "2005557367",  # 10 bytes: base64 is 14 chars + "==", shorter than the usual 16-char run
    "2005559152",
]
BODIES = [
    "Pick up kids at 5pm ZQX001K — ok? “yes” & café/bar",
    "Meet me at the old mill ZQX002K, bring 3 keys <now>",
    "Pay ₹450 to Ana ZQX003K tomorrow; code ÆØÅ 😀 done",
    "zqx004k lower case body with spaces only here",
    'Quote "ZQX005K" said O\'Neil \\ back\\slash \t tab',
    "☃☃ snow ZQX006K ☃ at the café Ω",
]
CANARIES = [(f"phone{i}", v) for i, v in enumerate(PHONES)] + [(f"body{i}", v) for i, v in enumerate(BODIES)]
# Fixed examples by default (stable CI); DETECT_PROPERTY_EXAMPLES=5000 explores randomly.
_EXPLORE = int(os.environ.get("DETECT_PROPERTY_EXAMPLES", "0"))
PROPS = settings(
    max_examples=_EXPLORE or 120,
    deadline=None,
    derandomize=not _EXPLORE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner([Needle(v, ref) for ref, v in CANARIES])


# -- layer encoders (independent of the decoders under test) --------------------

TEXT_ONLY = {"json-escape", "html-entities", "utf16le", "utf16be"}
BINARY_OUT = {"gzip", "deflate", "zlib", "brotli", "utf16le", "utf16be", "xor", "chunked"}
START_SENSITIVE = {"deflate", "brotli"}
# Character-wise layers: the canary's encoding is a substring whatever surrounds it.
# (Not json-escape: a JSON string is recognised by its quotes, so they are part
# of its representation -- an outer layer that changes them must be undone.)
LOCAL = {"xor", "urlencode", "html-entities", "utf16le", "utf16be", "hex-upper", "hex-lower"}
LAYERS = [
    "gzip", "deflate", "zlib", "brotli", "base64", "base64url-nopad", "base32", "hex-upper", "hex-lower",
    "urlencode", "json-escape", "html-entities", "utf16le", "utf16be", "xor", "chunked",
]  # fmt: skip
REPORTED = {
    "base64url-nopad": "base64", "hex-upper": "hex", "hex-lower": "hex",
    "json-escape": "json", "html-entities": "html",
}  # fmt: skip


def _html_escape(text: str, style: int) -> bytes:
    out = []
    for ch in html.escape(text, quote=True):
        if ord(ch) < 128:
            out.append(ch)
        elif style == 0 and ord(ch) in html.entities.codepoint2name and len(html.entities.codepoint2name[ord(ch)]) <= 7:
            out.append(f"&{html.entities.codepoint2name[ord(ch)]};")
        elif style == 1:
            out.append(f"&#x{ord(ch):X};")
        else:
            out.append(f"&#{ord(ch)};")
    return "".join(out).encode()


def _chunked(data: bytes, cuts: list[int]) -> bytes:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    pieces = [data[a:b] for a, b in zip(points, points[1:]) if b > a]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@dataclass
class Layer:
    name: str
    param: int = 0
    flag: bool = False
    cuts: tuple[int, ...] = ()

    def apply(self, data: bytes) -> bytes:
        n = self.name
        if n == "gzip":
            return gzip.compress(data, compresslevel=1 + self.param % 9, mtime=0)
        if n == "zlib":
            return zlib.compress(data, self.param % 10)
        if n == "deflate":
            c = zlib.compressobj(1 + self.param % 9, zlib.DEFLATED, -15)
            return c.compress(data) + c.flush()
        if n == "brotli":
            packed: bytes = brotli.compress(data, quality=self.param % 12)
            return packed
        if n == "base64":
            return base64.b64encode(data)
        if n == "base64url-nopad":
            return base64.urlsafe_b64encode(data).rstrip(b"=")
        if n == "base32":
            enc = base64.b32encode(data)
            return enc.lower() if self.flag else enc
        if n == "hex-upper":
            return data.hex().upper().encode()
        if n == "hex-lower":
            return data.hex().encode()
        if n == "urlencode":
            return quote_plus(data).encode()
        if n == "json-escape":
            out = json.dumps(data.decode("utf-8"), ensure_ascii=True)
            return (out.replace("/", "\\/") if self.flag else out).encode()
        if n == "html-entities":
            return _html_escape(data.decode("utf-8"), self.param % 3)
        if n in ("utf16le", "utf16be"):
            return data.decode("utf-8").encode("utf-16-le" if n == "utf16le" else "utf-16-be")
        if n == "xor":
            return bytes(b ^ self.param for b in data)
        if n == "chunked":
            return _chunked(data, list(self.cuts))
        raise AssertionError(n)

    def apply_local(self, rep: bytes) -> bytes:
        """The encoding of ``rep`` alone, as it appears inside the encoded payload."""
        return self.apply(rep)

    def reported(self) -> tuple[str, ...]:
        if self.name == "xor":
            return (f"xor-0x{self.param:02x}",)
        return (REPORTED.get(self.name, self.name),)


@st.composite
def chains(draw: st.DrawFn) -> list[Layer]:
    """Up to 3 layers, innermost first, respecting the type constraints."""
    depth = draw(st.integers(0, 3))
    layers: list[Layer] = []
    text = True
    for k in range(depth):
        allowed = [n for n in LAYERS if text or n not in TEXT_ONLY]
        if k != depth - 1:
            allowed.remove("chunked")
        if not (k == 0 or layers[-1].name == "gzip"):
            allowed.remove("xor")
        name = draw(st.sampled_from(allowed))
        layer = Layer(
            name,
            param=draw(st.integers(1, 255)),
            flag=draw(st.booleans()),
            cuts=tuple(draw(st.lists(st.integers(1, 400), max_size=4))),
        )
        layers.append(layer)
        text = name not in BINARY_OUT
    return layers


def encode(value: bytes, layers: list[Layer], needle: bytes | None = None) -> tuple[bytes, tuple[str, ...]]:
    """Apply the layers; return the payload and the chain the scanner must report
    for ``needle`` (default: the whole value)."""
    payload, rep = value, needle or value
    kept: list[tuple[str, ...]] = []
    anchored = False  # rep is a raw deflate/brotli stream: findable only where a stream starts
    for layer in layers:
        payload = layer.apply(payload)
        visible = payload.startswith(rep) if anchored else rep in payload
        if not visible:  # the layer hid the canary: undoing it is needed
            kept.append(layer.reported())
            # Character-wise encodings map the canary's representation on its
            # own, whatever surrounds it; the others (alignment, compression,
            # framing) make the whole payload the representation.
            rep = layer.apply_local(rep) if layer.name in LOCAL else payload
            anchored = layer.name in START_SENSITIVE
    chain = tuple(e for elems in reversed(kept) for e in elems)
    return payload, chain


GLUE = {
    "base64": b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "base64url-nopad": b"abcdefghijklmnopqrstuvwxyz0123456789-_",
    "base32": b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    "hex-upper": b"0123456789ABCDEF",
    "hex-lower": b"0123456789abcdef",
}


def embed(payload: bytes, layers: list[Layer], prefix: bytes, suffix: bytes, glue: bytes, glue2: bytes) -> bytes:
    """Put the payload inside random surroundings, the way its outer layer travels."""
    suffix = suffix.lstrip(b"=")
    outer = layers[-1].name if layers else "raw"
    names = {layer.name for layer in layers}
    if outer == "chunked":
        return prefix + b"\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + payload + suffix
    if outer in START_SENSITIVE:
        ce = b"br" if outer == "brotli" else b"deflate"
        return prefix + b"\r\nHTTP/1.1 200 OK\r\nContent-Encoding: " + ce + b"\r\n\r\n" + payload + suffix
    if outer == "json-escape":
        return prefix + b'{"k": ' + payload + b"}" + suffix
    if outer == "urlencode":
        return prefix + b"?q=" + payload + b"&z=1" + suffix
    if outer == "html-entities":
        return prefix + b"<p>" + payload + b"</p>" + suffix
    if names & START_SENSITIVE:
        return prefix + b" " + payload + b" " + suffix
    if outer in GLUE:
        alphabet = GLUE[outer]
        before = bytes(alphabet[b % len(alphabet)] for b in glue)
        after = bytes(alphabet[b % len(alphabet)] for b in glue2)
        return prefix + before + payload + after + suffix
    return prefix + payload + suffix


def refs_and_chains(hits: list[Hit]) -> dict[object, set[tuple[str, ...]]]:
    out: dict[object, set[tuple[str, ...]]] = {}
    for h in hits:
        out.setdefault(h.ref, set()).add(h.chain)
    return out


junk = st.binary(max_size=48)


@PROPS
@given(
    canary=st.sampled_from(CANARIES),
    layers=chains(),
    prefix=junk,
    suffix=junk,
    glue=st.binary(max_size=5),
    glue2=st.binary(max_size=5),
)
def test_encoded_canary_found_with_its_chain(
    scanner: Scanner, canary: tuple[str, str], layers: list[Layer], prefix: bytes, suffix: bytes, glue: bytes,
    glue2: bytes,
) -> None:
    ref, value = canary
    payload, expected = encode(value.encode(), layers)
    data = embed(payload, layers, prefix, suffix, glue, glue2)
    found = refs_and_chains(scanner.scan(data))
    assert set(found) == {ref}, (layers, expected, found)
    assert expected in found[ref], (layers, expected, found)


WORDS = st.lists(st.sampled_from(["alpha", "beta", "x9", "Zeta", "k=v", "a/b", "50%", "end."]), max_size=80)


@settings(PROPS, max_examples=_EXPLORE or 60)
@given(
    canary=st.sampled_from(CANARIES),
    layers=chains(),
    before=WORDS,
    after=WORDS,
    prefix=junk,
    glue=st.binary(max_size=5),
)
def test_encoded_canary_in_long_context(
    scanner: Scanner, canary: tuple[str, str], layers: list[Layer], before: list[str], after: list[str],
    prefix: bytes, glue: bytes,
) -> None:
    """Same property with the canary inside a longer text, so encoded runs are
    long (blob code paths: padding-derived alignment, shifted alignments)."""
    ref, value = canary
    text = " ".join([*before, value, *after]).encode()
    payload, expected = encode(text, layers, value.encode())
    data = embed(payload, layers, prefix, b"", glue, b"")
    found = refs_and_chains(scanner.scan(data))
    assert set(found) == {ref}, (layers, expected, found)
    assert expected in found[ref], (layers, expected, found)


@PROPS
@given(
    canary=st.sampled_from(BODIES),
    algo=st.sampled_from(["md5", "sha1", "sha256"]),
    upper=st.booleans(),
    # hashed forms are plain literals: not searched under XOR
    layers=chains().filter(lambda ls: all(layer.name != "xor" for layer in ls)),
    prefix=junk,
    suffix=junk,
)
def test_hashed_canary_found(
    scanner: Scanner, canary: str, algo: str, upper: bool, layers: list[Layer], prefix: bytes, suffix: bytes
) -> None:
    digest = hashlib.new(algo, canary.encode()).hexdigest()
    text = digest.upper() if upper else digest
    field = b'{"uid": "' + text.encode() + b'", "v": 2}'
    payload, expected = encode(field, layers, text.encode())
    data = embed(payload, layers, prefix, suffix, b"", b"")
    kind = f"{algo}-hex-upper" if upper else f"{algo}-hex"
    hits = [h for h in scanner.scan(data) if h.chain[-1:] == (kind,)]
    assert any(h.chain == (*expected, kind) and h.needle == text for h in hits), (layers, expected, hits)


def test_md5_upper_hex_in_json_field(scanner: Scanner) -> None:
    body = BODIES[1]
    md5u = hashlib.md5(body.encode()).hexdigest().upper()
    data = json.dumps({"user": {"note_hash": md5u, "n": 1}}).encode()
    hits = scanner.scan(data)
    assert [(h.ref, h.chain, h.needle) for h in hits] == [("body1", ("md5-hex-upper",), md5u)]


# -- negatives -----------------------------------------------------------------


NEG = settings(max_examples=_EXPLORE or 60, deadline=None, derandomize=not _EXPLORE, database=None)


@NEG
@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes_no_hits(scanner: Scanner, data: bytes) -> None:
    assert scanner.scan(data) == []


@NEG
@given(blob=st.binary(min_size=1, max_size=3000), urlsafe=st.booleans(), wrap=st.sampled_from([b'{"d":"%s"}', b"x=%s&y"]))
def test_random_base64_blobs_no_hits(scanner: Scanner, blob: bytes, urlsafe: bool, wrap: bytes) -> None:
    enc = base64.urlsafe_b64encode(blob) if urlsafe else base64.b64encode(blob)
    assert scanner.scan(wrap % enc) == []


@NEG
@given(value=st.text(min_size=1, max_size=40), algo=st.sampled_from(["md5", "sha1", "sha256"]), form=st.integers(0, 3))
def test_hashes_of_other_values_no_hits(scanner: Scanner, value: str, algo: str, form: int) -> None:
    if value in dict(CANARIES).values():
        return
    d = hashlib.new(algo, value.encode()).digest()
    text = [d.hex(), d.hex().upper(), base64.b64encode(d).decode(), base64.urlsafe_b64encode(d).decode()][form]
    assert scanner.scan(b'{"h":"' + text.encode() + b'"}') == []


@NEG
@given(
    number=st.integers(0, 9999).filter(lambda n: "+1540555%04d" % n not in PHONES and n not in (7367, 9152)),
    layers=chains(),
    fmt=st.sampled_from(["+1540555%04d", "1540555%04d", "(540) 555-%04d"]),
)
def test_phone_numbers_not_in_set_no_hits(scanner: Scanner, number: int, layers: list[Layer], fmt: str) -> None:
    payload, _ = encode((fmt % number).encode(), layers)
    assert scanner.scan(embed(payload, layers, b"a=", b"&b", b"", b"")) == []


# -- robustness and bombs --------------------------------------------------------------

TRICKY = [
    b"\x1f\x8b\x08", b"\x78\x9c", b"\r\n\r\n", b"1a\r\n", b"Content-Encoding: br\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n\r\n", b"\\u", b"\\ud83d", b'"', b"\\", b"&#", b"&amp;", b"%", b"%4",
    b"+", b"=", b"\xff\xfe", b"\xfe\xff", b"A\x00B\x00C\x00D\x00", b"QUJDRA", b"4142", b"MFRGG===",
]  # fmt: skip


@settings(NEG, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.one_of(st.sampled_from(TRICKY), st.binary(max_size=30)), max_size=30))
def test_scan_never_fails_internally(scanner: Scanner, parts: list[bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="sandbox.detect.scan"):
        assert isinstance(scanner.scan(b"".join(parts)), list)
    assert not caplog.records


def _gzip_bomb(total: int) -> bytes:
    """~1 MiB of gzip that inflates to ``total`` zero bytes, built in streaming
    fashion so the test itself never holds the inflated data."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    out = [comp.compress(block) for _ in range(total >> 20)]
    out.append(comp.flush())
    return b"".join(out)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return _gzip_bomb(1 << 30)  # 1 GiB of zeros


def test_gzip_bomb_respects_budget(gzip_bomb: bytes) -> None:
    budget = 16 << 20
    sc = Scanner([Needle(v, ref) for ref, v in CANARIES], max_decoded_bytes=budget)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = b"junk" + gzip_bomb + b"tail " + PHONES[0].encode()
    hits = sc.scan(data)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert sc.last_stats.decoded_bytes <= budget
    assert sc.last_stats.budget_exhausted
    assert grown_mib < 200
    assert ("phone0", ()) in {(h.ref, h.chain) for h in hits}  # the raw layer is still matched


def test_nested_bombs_respect_budget(gzip_bomb: bytes) -> None:
    budget = 8 << 20
    sc = Scanner([Needle(v, ref) for ref, v in CANARIES], max_decoded_bytes=budget, max_depth=6)
    small = _gzip_bomb(64 << 20)
    nested = gzip.compress(small * 3) + base64.b64encode(small) + brotli.compress(bytes(32 << 20), quality=1)
    sc.scan(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\n" + nested)
    assert sc.last_stats.decoded_bytes <= budget


def test_depth_bound() -> None:
    value = PHONES[0].encode()
    for _ in range(6):
        value = base64.b64encode(value)
    deep = Scanner([Needle(PHONES[0], "p")], max_depth=4)
    assert deep.scan(b" " + value + b" ") == []
    assert deep.last_stats.generations == 5
    deeper = Scanner([Needle(PHONES[0], "p")], max_depth=6)
    assert [h.chain for h in deeper.scan(b" " + value + b" ")] == [("base64",) * 6]
