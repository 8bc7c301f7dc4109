"""Unit tests for sandbox.detect.decoders and for each decoder wired into Scanner."""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
import zlib

import brotli
import pytest

from sandbox.detect import Needle, Scanner
from sandbox.detect import decoders as dec

PHONE = "+15405550123"
BODY = "Meet at the café XKCDTOKEN42 ☃ 5/12 & <b>"


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner([Needle(PHONE, "phone"), Needle(BODY, "body"), Needle("Zyxw Quillfeather", "name")])


def chains(scanner: Scanner, data: bytes) -> set[tuple[object, tuple[str, ...]]]:
    return {(h.ref, h.chain) for h in scanner.scan(data)}


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


# -- pure decoders ------------------------------------------------------------


class TestInflate:
    def test_gzip_zlib_deflate_roundtrip(self) -> None:
        payload = b"hello " * 100
        assert dec.inflate(gzip.compress(payload), "gzip", 10**6) == (payload, len(gzip.compress(payload)))
        z = zlib.compress(payload)
        assert dec.inflate(z + b"trailing", "zlib", 10**6) == (payload, len(z))
        d = raw_deflate(payload)
        assert dec.inflate(d + b"xyz", "deflate", 10**6) == (payload, len(d))

    def test_limit_bounds_output(self) -> None:
        out = dec.inflate(gzip.compress(b"\0" * 1_000_000), "gzip", 1000)
        assert out is not None and len(out[0]) == 1000

    def test_truncated_gzip_keeps_prefix(self) -> None:
        blob = gzip.compress(os.urandom(5000) + b"+15405550123")
        out = dec.inflate(blob[: len(blob) // 2], "gzip", 10**6)
        assert out is not None and 0 < len(out[0]) < 5012

    def test_corrupt_raw_deflate_rejected(self) -> None:
        assert dec.inflate(b"\xff" * 40, "deflate", 100) is None
        assert dec.inflate(b"", "gzip", 100) is None
        assert dec.inflate(b"\x1f\x8b\x08garbage", "gzip", 100) is None

    def test_xor_key_undone_on_the_fly(self) -> None:
        blob = gzip.compress(b"secret")
        out = dec.inflate(dec.xor_bytes(blob, 0x5A), "gzip", 100, xor_key=0x5A)
        assert out is not None and out[0] == b"secret"

    def test_deflate_plausible(self) -> None:
        assert dec.deflate_plausible(raw_deflate(b"abc" * 10))
        assert not dec.deflate_plausible(b"\x07\x00\x00\x00\x00")  # btype 3
        assert not dec.deflate_plausible(b"\x00\x05\x00\x00\x00")  # stored, bad NLEN
        assert dec.deflate_plausible(b"\x01\x05\x00\xfa\xff")  # stored, good NLEN
        assert not dec.deflate_plausible(b"")


class TestBrotli:
    def test_roundtrip_and_trailing_data(self) -> None:
        c = brotli.compress(b"+15405550123 hi")
        assert dec.unbrotli(c, 100) == (b"+15405550123 hi", len(c))
        assert dec.unbrotli(c + b"more flow", 100) is None  # exact payload expected
        assert dec.unbrotli(c + b"more flow", 100, trailing=True) == (b"+15405550123 hi", len(c))

    def test_bomb_bounded(self) -> None:
        bomb = brotli.compress(b"\0" * (8 << 20))
        out = dec.unbrotli(bomb, 4096)
        assert out is not None and len(out[0]) == 4096

    def test_garbage_rejected(self) -> None:
        assert dec.unbrotli(b"", 10) is None
        assert sum(dec.unbrotli(os.urandom(64), 4096) is not None for _ in range(200)) < 10

    def test_plausible_accepts_encoder_output(self) -> None:
        for q in (0, 5, 11):
            for lg in (10, 16, 22, 24):
                assert dec.brotli_plausible(brotli.compress(b"some text " * 7, quality=q, lgwin=lg))
        assert not dec.brotli_plausible(b"\x06\x00\x00")  # too short to hold anything


class TestChunked:
    def test_multi_chunk(self) -> None:
        body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT"
        assert dec.decode_chunked(body, 0, len(body)) == (b"hello world", 2, body.index(b"NEXT") - 2)

    def test_truncated_capture(self) -> None:
        body = b"5\r\nhello\r\nA\r\nabc"
        res = dec.decode_chunked(body, 0, len(body))
        assert res is not None and res[0] == b"helloabc"

    def test_not_chunked(self) -> None:
        assert dec.decode_chunked(b"GET / HTTP/1.1", 0, 14) is None
        assert dec.decode_chunked(b"", 0, 0) is None


class TestTextDecoders:
    def test_url(self) -> None:
        assert dec.url_decode(b"a+b%2B%41%zz%") == b"a b+A%zz%"

    def test_json_escapes(self) -> None:
        s = json.dumps("é \U0001f600 \"q\" /\\ \n\t\x01")
        assert dec.json_unescape(s[1:-1].encode()).decode() == "é \U0001f600 \"q\" /\\ \n\t\x01"
        assert dec.json_unescape(b"a\\/b\\/c") == b"a/b/c"  # fast path
        assert dec.json_unescape(b"\\\\/x") == b"\\/x"  # escaped backslash, then '/'
        assert dec.json_unescape(b"\\ud83d") == "\ud83d".encode("utf-8", "surrogatepass")  # lone surrogate
        assert dec.json_unescape(b"\\uZZZZ \\q") == b"\\uZZZZ \\q"

    def test_html_entities(self) -> None:
        assert dec.html_unescape(b"&lt;b&gt; caf&eacute; &#233;&#xE9; &amp &bogus; \xff").decode(
            "utf-8", "replace"
        ) == "<b> café éé & &bogus; \ufffd"

    def test_utf16(self) -> None:
        assert dec.utf16_decode("Olá ☃".encode("utf-16-le"), False) == "Olá ☃".encode()
        assert dec.utf16_decode("Olá ☃".encode("utf-16-be") + b"\x00", True) == "Olá ☃".encode()
        assert dec.utf16_decode(b"\x00\xd8", False) == "\ufffd".encode()

    def test_mime(self) -> None:
        wrapped = base64.encodebytes(b"x" * 100)  # 76-char lines
        assert dec.mime_decode(wrapped, "base64") == b"x" * 100
        assert dec.mime_decode(b"caf=C3=A9 soft=\r\nbreak", "quoted-printable") == "café softbreak".encode()


class TestAlphabetDecoders:
    @pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b"abcd"])
    def test_base64_any_alignment(self, prefix: bytes) -> None:
        payload = b"+15405550123!?"
        for enc in (base64.b64encode(payload), base64.urlsafe_b64encode(payload).rstrip(b"=")):
            run = prefix + enc + b"xyz"
            assert any(payload in out for out in dec.b64_decode_alignments(run))
            assert payload in dec.b64_decode(prefix + enc, len(prefix) % 4)

    def test_base64_degenerate(self) -> None:
        assert dec.b64_decode(b"") == b""
        assert dec.b64_decode(b"A") == b""
        assert dec.b64_decode(b"QQ") == b"A"

    def test_base32_either_case_any_alignment(self) -> None:
        enc = base64.b32encode(b"+15405550123")
        assert dec.b32_decode(enc) == b"+15405550123"
        assert dec.b32_decode(enc.lower().rstrip(b"=")) == b"+15405550123"
        assert dec.b32_decode(b"XYZ" + enc, 3) == b"+15405550123"
        assert dec.b32_decode(b"") == b""

    def test_hex(self) -> None:
        assert dec.hex_decode(b"2B3135") == b"+15"
        assert dec.hex_decode(b"x2b3135", 1) == b"+15"
        assert dec.hex_decode(b"2b313") == b"+1"
        assert dec.hex_decode(b"zz") == b""

    def test_xor(self) -> None:
        assert dec.xor_bytes(dec.xor_bytes(b"abc", 0x5A), 0x5A) == b"abc"


# -- each decoder through the Scanner ------------------------------------------


class TestScannerDecoders:
    def test_raw(self, scanner: Scanner) -> None:
        hits = scanner.scan(b"xx +15405550123 yy")
        assert [(h.chain, h.offset, h.needle) for h in hits] == [((), 3, PHONE)]
        assert hits[0].excerpt == "xx «+15405550123» yy"

    def test_gzip_anywhere(self, scanner: Scanner) -> None:
        data = os.urandom(100) + gzip.compress(PHONE.encode()) + os.urandom(50)
        assert chains(scanner, data) == {("phone", ("gzip",))}
        assert scanner.scan(data)[0].offset == 100

    def test_zlib_anywhere(self, scanner: Scanner) -> None:
        assert ("phone", ("zlib",)) in chains(scanner, b"junk" + zlib.compress(PHONE.encode() * 2, 9) + b"junk")

    def test_raw_deflate_and_brotli_in_http_bodies(self, scanner: Scanner) -> None:
        payload = (BODY + " ").encode() * 4  # compressible, so not stored verbatim
        for name, blob in (("deflate", raw_deflate(payload)), ("brotli", brotli.compress(payload))):
            data = b"HTTP/1.1 200 OK\r\nContent-Encoding: " + (b"br" if name == "brotli" else b"deflate")
            data += b"\r\n\r\n" + blob + b"HTTP/1.1 200 OK\r\n"
            assert ("body", (name,)) in chains(scanner, data)

    def test_chunked(self, scanner: Scanner) -> None:
        p = PHONE.encode()
        data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n" + p[:4] + b"\r\n8\r\n" + p[4:]
        data += b"\r\n0\r\n\r\n"
        assert chains(scanner, data) == {("phone", ("chunked",))}

    def test_chunked_gzip(self, scanner: Scanner) -> None:
        z = gzip.compress(BODY.encode())
        data = b"HTTP/1.1 200 OK\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(z[k : k + 7]), z[k : k + 7]) for k in range(0, len(z), 7)
        ) + b"0\r\n\r\n"
        assert ("body", ("chunked", "gzip")) in chains(scanner, data)

    def test_urlencoded_form(self, scanner: Scanner) -> None:
        from urllib.parse import urlencode

        data = b"POST / HTTP/1.1\r\n\r\n" + urlencode({"a": "1", "msg": BODY, "p": PHONE}).encode()
        assert {("body", ("urlencode",)), ("phone", ("urlencode",))} <= chains(scanner, data)

    def test_multipart_base64_part(self, scanner: Scanner) -> None:
        part = base64.encodebytes(b"x" * 60 + BODY.encode() + b"y" * 60)
        data = (
            b"--XyZ\r\nContent-Disposition: form-data; name=f\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + part
            + b"\r\n--XyZ--\r\n"
        )
        assert ("body", ("mime-base64",)) in chains(scanner, data)

    def test_quoted_printable(self, scanner: Scanner) -> None:
        qp = binascii.b2a_qp(BODY.encode())
        data = b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp + b"\r\n--b--"
        assert ("body", ("quoted-printable",)) in chains(scanner, data)

    def test_json_string_anywhere(self, scanner: Scanner) -> None:
        data = os.urandom(30).replace(b'"', b"") + b' {"m": ' + json.dumps(BODY).encode() + b"} \xff\xfe"
        assert chains(scanner, data) == {("body", ("json",))}

    def test_json_escaped_slash(self, scanner: Scanner) -> None:
        data = b'{"m":"' + BODY.encode().replace(b"/", b"\\/") + b'"}'
        assert chains(scanner, data) == {("body", ("json",))}

    def test_html(self, scanner: Scanner) -> None:
        import html

        data = b"<p>" + html.escape(BODY).encode("ascii", "xmlcharrefreplace") + b"</p>"
        assert chains(scanner, data) == {("body", ("html",))}

    def test_base64_glued_in_text(self, scanner: Scanner) -> None:
        for glue in (b"", b"Q", b"Qz", b"Qz9", b"Qz9a"):
            data = b"token=" + glue + base64.b64encode(PHONE.encode()) + b"Abc&z=1"
            assert ("phone", ("base64",)) in chains(scanner, data), glue

    def test_base64url_nopad(self, scanner: Scanner) -> None:
        enc = base64.urlsafe_b64encode(b"\xfb\xff" + BODY.encode()).rstrip(b"=")
        assert ("body", ("base64",)) in chains(scanner, b'{"d":"' + enc + b'"}')

    def test_base32_and_hex(self, scanner: Scanner) -> None:
        assert ("phone", ("base32",)) in chains(scanner, b" " + base64.b32encode(PHONE.encode()).lower() + b" ")
        for enc in (PHONE.encode().hex().upper(), PHONE.encode().hex()):
            assert chains(scanner, b"id=" + enc.encode() + b";") == {("phone", ("hex",))}

    def test_utf16_both_orders_and_bom(self, scanner: Scanner) -> None:
        assert chains(scanner, b"\x01\x02" + BODY.encode("utf-16-le") + b"\x03") == {("body", ("utf16le",))}
        assert ("body", ("utf16be",)) in chains(scanner, b"\x01" + BODY.encode("utf-16-be") + b"\x03")
        assert ("phone", ("utf16le",)) in chains(scanner, b"\xff\xfe" + PHONE.encode("utf-16-le"))

    @pytest.mark.parametrize("key", [0x01, 0x20, 0x5A, 0xFF])
    def test_xor_needle(self, scanner: Scanner, key: int) -> None:
        data = os.urandom(20) + dec.xor_bytes(BODY.encode(), key) + os.urandom(20)
        assert ("body", (f"xor-0x{key:02x}",)) in chains(scanner, data)

    @pytest.mark.parametrize("key", [0x01, 0x5A, 0x80, 0xFF])
    def test_xor_phone_with_repeated_digits(self, key: int) -> None:
        """"555" has XOR differences of 0: stored inverted, they are not NULs
        (which the literal compiler cannot take), and still match."""
        sc = Scanner([Needle("+15405550000", "phone")])
        assert all(0 not in p for p in sc._xor_pats)
        data = os.urandom(20) + dec.xor_bytes(b"tel:+15405550000;", key) + os.urandom(20)
        assert ("phone", (f"xor-0x{key:02x}",)) in chains(sc, data)

    def test_xor_gzip(self, scanner: Scanner) -> None:
        data = b"zz" + dec.xor_bytes(gzip.compress(PHONE.encode()), 0x33) + b"qq"
        assert chains(scanner, data) == {("phone", ("xor-0x33", "gzip"))}

    def test_nested_chain(self, scanner: Scanner) -> None:
        inner = base64.b64encode(gzip.compress(json.dumps({"b": BODY}).encode()))
        data = b"HTTP/1.1 200 OK\r\n\r\n" + json.dumps({"blob": inner.decode()}).encode()
        assert ("body", ("base64", "gzip", "json")) in chains(scanner, data)

    def test_hashes(self, scanner: Scanner) -> None:
        md5u = hashlib.md5(BODY.encode()).hexdigest().upper()
        hits = scanner.scan(b'{"h": "' + md5u.encode() + b'"}')
        assert [(h.chain, h.needle) for h in hits] == [(("md5-hex-upper",), md5u)]
        sha = base64.urlsafe_b64encode(hashlib.sha256(PHONE.encode()).digest()).decode()
        kinds = {h.chain[-1] for h in scanner.scan(b"x=" + sha.encode())}
        assert kinds & {"sha256-b64url", "sha256-b64"}
        sha1 = hashlib.sha1(b"Zyxw Quillfeather").hexdigest()
        assert chains(scanner, base64.b64encode(sha1.encode())) == {("name", ("base64", "sha1-hex"))}

    def test_no_duplicate_chain_for_plain_json(self, scanner: Scanner) -> None:
        data = b'{"a":"\\u00e9", "b":"' + PHONE.encode() + b'"}'
        assert chains(scanner, data) == {("phone", ())}

    def test_never_raises(self, scanner: Scanner) -> None:
        for blob in (b"", b"\x00", b"\x1f\x8b\x08", b"\\u", b"&#;", b"%", b"\xff\xfe"):
            scanner.scan(blob)
        assert scanner.scan(bytearray(b"+15405550123"))  # type: ignore[arg-type]
        assert scanner.scan(memoryview(b"+15405550123"))  # type: ignore[arg-type]


class TestHitFields:
    def test_offset_is_outermost_region_start(self, scanner: Scanner) -> None:
        inner = base64.b64encode(gzip.compress(PHONE.encode()))
        data = b"0123456789 data=" + inner + b" tail"
        (hit,) = [h for h in scanner.scan(data) if h.chain == ("base64", "gzip")]
        assert hit.offset == data.index(inner)
        assert hit.needle == PHONE

    def test_excerpt_bounded_and_marked(self, scanner: Scanner) -> None:
        data = b"x" * 500 + BODY.encode() + b"y" * 500
        (hit,) = scanner.scan(data)
        assert len(hit.excerpt) <= 160
        assert f"«{BODY}»" in hit.excerpt
        long_needle = "Q" * 300
        sc = Scanner([Needle(long_needle, 1)], hashes=False)
        (h,) = sc.scan(b"a" + long_needle.encode() + b"b")
        assert len(h.excerpt) <= 160 and h.excerpt.count("«") == 1 and h.excerpt.count("»") == 1

    def test_excerpt_escapes_binary(self, scanner: Scanner) -> None:
        (hit,) = scanner.scan(b"\x00\x01\x02" + PHONE.encode() + b"\xff\xfe\n")
        assert hit.excerpt.isprintable()

    def test_dedup_per_ref_and_chain(self, scanner: Scanner) -> None:
        data = (PHONE.encode() + b" ") * 5 + b" " + base64.b64encode(PHONE.encode())
        assert sorted(h.chain for h in scanner.scan(data)) == [(), ("base64",)]


def test_xor_found_across_internal_block_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    import sandbox.detect.scan as scan_mod

    monkeypatch.setattr(scan_mod, "_XOR_BLOCK", 1000)
    sc = Scanner([Needle("Hello canary world", 1)])
    x = dec.xor_bytes(b"Hello canary world", 0x42)
    for pos in (0, 990, 999, 1000, 1001, 1990, 2999, 4000 - len(x)):
        data = bytearray(os.urandom(4000))
        data[pos : pos + len(x)] = x
        assert [(h.chain, h.offset) for h in sc.scan(bytes(data))] == [(("xor-0x42",), pos)]


def test_stats_report_work(scanner: Scanner) -> None:
    scanner.scan(b"q=" + base64.b64encode(gzip.compress(PHONE.encode())))
    st = scanner.last_stats
    assert st.generations == 3 and st.decoded_bytes > 0 and not st.budget_exhausted
    assert st.decoder_calls == {"base64": 1, "gzip": 1}


def test_short_needle_base64_run_below_16_chars() -> None:
    sc = Scanner([Needle("2005557367", "national")])
    assert [h.chain for h in sc.scan(b'x "' + base64.b64encode(b"2005557367") + b'" y')] == [("base64",)]
    assert [h.chain for h in sc.scan(b"k=" + base64.b32encode(b"2005557367") + b";")] == [("base32",)]


def test_form_value_glued_after_a_blob(scanner: Scanner) -> None:
    blob = base64.b64encode(os.urandom(3000))
    data = b"payload=" + blob + b"&v=2q=Zyxw+Quillfeather&next"
    assert ("name", ("urlencode",)) in chains(scanner, data)
