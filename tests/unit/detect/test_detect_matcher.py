"""Tests for sandbox.detect.matcher and sandbox.detect.hashing."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.detect import Needle, Scanner
from sandbox.detect.hashing import hashed_forms, hex_kind
from sandbox.detect.matcher import LiteralMatcher, RegexTriggers, Trigger, resolve_backend

BACKENDS = ["pyahocorasick"] + (["hyperscan"] if resolve_backend("hyperscan") == "hyperscan" else [])


def naive(patterns: list[bytes], caseless: list[bool], data: bytes) -> list[tuple[int, int]]:
    out = []
    for i, (p, fold) in enumerate(zip(patterns, caseless)):
        hay, pat = (data.lower(), p.lower()) if fold else (data, p)
        start = hay.find(pat)
        while start >= 0:
            out.append((i, start + len(p)))
            start = hay.find(pat, start + 1)
    return sorted(out)


@pytest.mark.parametrize("backend", BACKENDS)
class TestLiteralMatcher:
    def test_overlapping_nul_and_case(self, backend: str) -> None:
        pats = [b"abc", b"bcd", b"a\x00b", b"\x00\x00\x01", b"DEADbeef", b"\xff\xfe"]
        fold = [False, False, False, False, True, False]
        m = LiteralMatcher(pats, fold, backend=backend)
        assert m.backend == backend
        data = b"xabcd a\x00b \x00\x00\x01 deadBEEF DEADBEEF ABC \xff\xfe"
        assert sorted(m.scan(data)) == naive(pats, fold, data)

    def test_empty_cases(self, backend: str) -> None:
        assert LiteralMatcher([], backend=backend).scan(b"abc") == []
        assert LiteralMatcher([b"abc"], backend=backend).scan(b"") == []
        with pytest.raises(ValueError):
            LiteralMatcher([b""], backend=backend)

    def test_sharding(self, backend: str) -> None:
        pats = [b"needle%03d" % i for i in range(50)]
        m = LiteralMatcher(pats, backend=backend, shard_size=7)
        assert sorted(m.scan(b"needle007 needle049 needle050")) == [(7, 9), (49, 19)]

    @settings(max_examples=40, deadline=None)
    @given(
        pats=st.lists(st.binary(min_size=1, max_size=4), min_size=1, max_size=8, unique=True),
        data=st.binary(max_size=200),
        fold=st.booleans(),
    )
    def test_matches_naive_search(self, backend: str, pats: list[bytes], data: bytes, fold: bool) -> None:
        folds = [fold and i % 2 == 0 for i in range(len(pats))]
        # duplicate literals under case folding are fine; compare multisets
        assert sorted(LiteralMatcher(pats, folds, backend=backend).scan(data)) == naive(pats, folds, data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_regex_triggers_groups(backend: str) -> None:
    trig = RegexTriggers(
        [Trigger("a", rb"ab+c"), Trigger("b", rb"x{3}", group=1), Trigger("c", rb"hello", caseless=True)],
        backend=backend,
    )
    assert sorted(trig.scan(b"abbbc xxx HeLLo")) == [(0, 5), (1, 9), (2, 15)]


def test_backend_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HONEYPHONE_DETECT_BACKEND", "pyahocorasick")
    assert resolve_backend() == "pyahocorasick"
    assert Scanner([Needle("+15405550123", 1)]).backend == "pyahocorasick"


def test_fallback_when_hyperscan_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sandbox.detect.matcher as matcher

    monkeypatch.setattr(matcher, "_hyperscan", lambda: None)
    assert resolve_backend("hyperscan") == "pyahocorasick"
    sc = Scanner([Needle("+15405550123", 1)])
    assert sc.backend == "pyahocorasick"
    assert [h.chain for h in sc.scan(b"x=" + base64.b64encode(b"+15405550123"))] == [("base64",)]


class TestHashing:
    def test_forms(self) -> None:
        forms = hashed_forms("héllo")
        raw = "héllo".encode()
        md5 = hashlib.md5(raw).digest()
        texts = {f.kind: f.text for f in forms}
        assert texts["md5-hex"] == md5.hex()
        assert texts["md5-b64"] == base64.b64encode(md5).decode()
        sha = hashlib.sha256(raw).digest()
        if base64.b64encode(sha) != base64.urlsafe_b64encode(sha):
            assert texts["sha256-b64url"] == base64.urlsafe_b64encode(sha).decode()
        assert all(not f.pattern.endswith(b"=") for f in forms)
        assert {f.caseless for f in forms if f.is_hex} == {True}
        assert {f.caseless for f in forms if not f.is_hex} == {False}

    def test_hex_kind(self) -> None:
        form = next(f for f in hashed_forms("x") if f.kind == "sha1-hex")
        assert hex_kind(form, form.text.upper().encode()) == ("sha1-hex-upper", form.text.upper())
        assert hex_kind(form, form.text.encode()) == ("sha1-hex", form.text)


class TestScannerConstruction:
    def test_duplicate_values_report_every_ref(self) -> None:
        sc = Scanner([Needle("Zed Quill", "a"), Needle("Zed Quill", "b"), Needle("", "empty")])
        assert {h.ref for h in sc.scan(b"hi Zed Quill")} == {"a", "b"}

    def test_unhashable_ref_rejected_early(self) -> None:
        with pytest.raises(TypeError):
            Scanner([Needle("abc", [])])  # type: ignore[arg-type]

    def test_hashes_off(self) -> None:
        sc = Scanner([Needle("Zed Quill", 1)], hashes=False)
        assert sc.scan(hashlib.md5(b"Zed Quill").hexdigest().encode()) == []

    def test_text_needles_case_sensitive(self) -> None:
        sc = Scanner([Needle("Zed Quill", 1)])
        assert sc.scan(b"zed quill ZED QUILL") == []


def test_scanner_digest_table_has_every_hashed_form() -> None:
    """The scanner's lookup table renders digests exactly as hashed_forms does
    (URL-safe base64 through the standard key: windows are looked up in the
    standard alphabet)."""
    from sandbox.detect.hashing import B64URL, KIND_BY_LEN, URL_KIND, digest_text

    for value in ("héllo", "+15405550123", "Zed Quill"):
        sc = Scanner([Needle(value, "r")])
        forms = hashed_forms(value)
        std = {f.pattern for f in forms if not f.kind.endswith("b64url")}
        assert set(sc._digests) == std
        got = set()
        for key, refs in sc._digests.items():
            assert refs == ("r",)
            kind = KIND_BY_LEN[len(key)]
            got.add((digest_text(key, kind), kind.kind))
            if not kind.is_hex and key.translate(B64URL) != key:
                url = URL_KIND[kind]
                got.add((digest_text(key.translate(B64URL), url), url.kind))
        assert got == {(f.text, f.kind) for f in forms}


def test_escape_writes_every_byte() -> None:
    from sandbox.detect.matcher import _escape

    assert _escape(b"A\x00\xff") == b"\\x41\\x00\\xff"


def test_needles_ending_in_another_needle_share_its_pattern() -> None:
    """An E.164 number ends in its other renderings: it is verified where its
    suffix matched instead of compiling a pattern of its own, plain and XORed."""
    sc = Scanner([Needle("+15405550123", "e164"), Needle("15405550123", "cc"), Needle("5405550123", "digits")])
    assert sc._lit_pats == [b"5405550123"]
    assert len(sc._xor_pats) == 2  # the gzip magic's and the digits'
    assert {h.ref for h in sc.scan(b"tel=+15405550123;")} == {"e164", "cc", "digits"}
    assert {h.ref for h in sc.scan(b"tel=15405550123;")} == {"cc", "digits"}
    assert {h.ref for h in sc.scan(b"+1 5405550123 +25405550123")} == {"digits"}
    xored = bytes(b ^ 0x5A for b in b"+15405550123")
    assert {(h.ref, h.chain) for h in sc.scan(b"\x01\x02" + xored + b"\x03")} == {
        (ref, ("xor-0x5a",)) for ref in ("e164", "cc", "digits")}
    assert {h.ref for h in sc.scan(xored[1:])} == {"cc", "digits"}  # the "+" cut off
