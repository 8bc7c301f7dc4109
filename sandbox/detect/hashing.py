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
import hashlib
from dataclasses import dataclass
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
