"""Hashed forms of canary values.

Firmware often "anonymises" personal data by hashing it before upload, which
hides nothing: the hash of a known canary is itself a fingerprint.  For every
needle value we derive MD5, SHA-1 and SHA-256 of its UTF-8 bytes and render
each digest the ways SDKs commonly print it: hex (lower or upper) and base64
(standard or URL-safe).  These renderings become plain literals in the
matcher, so hashed copies cost nothing extra per scanned byte.

Case design: hex is a case-insensitive encoding, so one *caseless* literal
covers lower, upper (and mixed) hex; the reported kind says which case was
seen (``md5-hex`` vs ``md5-hex-upper``).  Base64 is case-significant, so its
literals are exact.  Base64 literals omit the ``=`` padding so padded and
unpadded occurrences both match; the reported needle text is the canonical
padded form.  When a digest's standard and URL-safe base64 coincide (no
``+``/``/`` in it) a single literal is emitted with kind ``<algo>-b64``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Hashable
from dataclasses import dataclass
from itertools import repeat
__all__ = ["HashForm", "hashed_forms", "hex_kind", "ALGORITHMS"]

ALGORITHMS: tuple[str, ...] = ("md5", "sha1", "sha256")


@dataclass(frozen=True)
class HashForm:
    """One literal derived from a digest of a needle value.

    ``kind`` is the chain element reported on a hit (for hex forms it is the
    lower-case kind; :func:`hex_kind` refines it from the matched bytes).
    ``text`` is the canonical hash text reported as ``Hit.needle``.
    """

    pattern: bytes
    caseless: bool
    kind: str
    text: str
    is_hex: bool


def hashed_forms(value: str) -> list[HashForm]:
    """Return the literal renderings of MD5/SHA-1/SHA-256 of ``value``."""
    raw = value.encode("utf-8")
    forms: list[HashForm] = []
    for algo in ALGORITHMS:
        digest = hashlib.new(algo, raw).digest()
        hex_text = digest.hex()
        forms.append(HashForm(hex_text.encode(), True, f"{algo}-hex", hex_text, True))
        std = base64.b64encode(digest)
        url = base64.urlsafe_b64encode(digest)
        if std == url:
            forms.append(HashForm(std.rstrip(b"="), False, f"{algo}-b64", std.decode(), False))
        else:
            forms.append(HashForm(std.rstrip(b"="), False, f"{algo}-b64", std.decode(), False))
            forms.append(HashForm(url.rstrip(b"="), False, f"{algo}-b64url", url.decode(), False))
    return forms


def hex_kind(form: HashForm, matched: bytes) -> tuple[str, str]:
    """Refine a caseless hex hit into (kind, needle text) from what was seen.

    All-upper hex (no lower-case letters, at least one upper-case letter) is
    reported as ``-hex-upper``; anything else as ``-hex``.
    """
    if matched.isupper():
        return form.kind + "-upper", form.text.upper()
    return form.kind, form.text


# -- the scanner's lookup table ------------------------------------------------
# Why here: the table holds the same renderings as :func:`hashed_forms`
# (checked by a test), keyed for lookup by window (see scan.py,
# ``_match_digests``) instead of compiled into an automaton.

_HEXDIGITS = b"0123456789abcdefABCDEF"


#: Shared kind descriptors of the digest table: (algorithm, encoding) -> HashForm
#: with the kind only (the digest text lives in each form tuple).
_DIGEST_KINDS = {(algo, enc): HashForm(b"", enc == "hex", f"{algo}-{enc}", "", enc == "hex")
                 for algo in ALGORITHMS for enc in ("hex", "b64", "b64url")}
HASHERS = (("md5", hashlib.md5), ("sha1", hashlib.sha1), ("sha256", hashlib.sha256))
B64URL = bytes.maketrans(b"+/", b"-_")
B64URL_TO_STD = bytes.maketrans(b"-_", b"+/")
#: The URL-safe kind of each standard base64 kind (the table keys standard
#: base64 only; a window is looked up in the standard alphabet).
URL_KIND = {_DIGEST_KINDS[algo, "b64"]: _DIGEST_KINDS[algo, "b64url"] for algo in ALGORITHMS}


#: The kind of a digest key, by its length: every (algorithm, rendering) has
#: its own (hex 32/40/64, unpadded base64 22/27/43), so the table's values
#: need not say it.
KIND_BY_LEN = {len(binascii.hexlify(hasher().digest())) if enc == "hex" else
                len(binascii.b2a_base64(hasher().digest(), newline=False).rstrip(b"=")): _DIGEST_KINDS[algo, enc]
                for algo, hasher in HASHERS for enc in ("hex", "b64")}
assert len(KIND_BY_LEN) == 2 * len(HASHERS)


def digest_table(by_raw: dict[bytes, tuple[Hashable, ...]]) -> tuple[dict[bytes, tuple[Hashable, ...]], bool]:
    """The renderings of :func:`sandbox.detect.hashing.hashed_forms`, keyed by
    lookup text (hex lower-cased, base64 unpadded) to the needles' refs, and
    whether a base64 key is made of hex digits only.  10,000 canaries make
    ~300,000 keys, so the table is built per (algorithm, rendering) with
    ``map``/``zip`` and ``dict.update`` (C loops), and a key's value is the
    refs tuple of its needle value, shared by its six keys (the kind comes
    from the key's length, ``KIND_BY_LEN``): a Python statement and a
    tuple per key were a quarter of the compile time.  URL-safe base64 has
    no keys of its own: windows are looked up in the standard alphabet (see
    ``_digest_windows``)."""
    raws = list(by_raw)
    refs = list(by_raw.values())
    table: dict[bytes, tuple[Hashable, ...]] = {}
    all_hex = False
    for _, hasher in HASHERS:
        digests = [hasher(r).digest() for r in raws]
        table.update(zip(map(binascii.hexlify, digests), refs))
        keys = [binascii.b2a_base64(d, newline=False).rstrip(b"=") for d in digests]
        table.update(zip(keys, refs))
        # Could a base64 digest text be all hex digits?  (p ~ 1e-10 each; checked, not assumed)
        all_hex = all_hex or not all(map(bytes.translate, keys, repeat(None), repeat(_HEXDIGITS)))
    return table, all_hex


def digest_text(key: bytes, kind: HashForm) -> str:
    """The canonical text of a digest key: hex as is, base64 padded."""
    text = key.decode("ascii")
    return text if kind.is_hex else text + "=" * (-len(text) % 4)
