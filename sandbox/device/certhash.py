"""Android's CA file names: OpenSSL's ``subject_hash_old``, computed here.

Android looks system CAs up by ``<hash>.<n>`` where hash is OpenSSL's
``X509_subject_name_hash_old``: the MD5 of the certificate's DER-encoded
subject Name, first four bytes read little-endian, as 8 hex digits.  Doing it
in Python avoids needing openssl on the host; the DER walk below reads only
the TLV framing up to the subject, bounds-checked.
"""

from __future__ import annotations

import base64
import hashlib
import re

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)


class CertError(ValueError):
    pass


def pem_to_der(pem: bytes) -> bytes:
    m = _PEM.search(pem)
    if not m:
        raise CertError("no PEM certificate block")
    try:
        return base64.b64decode(b"".join(m.group(1).split()), validate=True)
    except ValueError as exc:
        raise CertError(f"bad base64 in the PEM block: {exc}") from exc


def _tlv(der: bytes, off: int) -> tuple[int, int, int]:
    """(tag, content offset, end offset) of the TLV at ``off``."""
    if off + 2 > len(der):
        raise CertError("truncated DER")
    tag, first = der[off], der[off + 1]
    pos = off + 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(der):
            raise CertError("unsupported DER length")
        length = int.from_bytes(der[pos : pos + n], "big")
        pos += n
    end = pos + length
    if end > len(der):
        raise CertError("DER element runs past the end")
    return tag, pos, end


def subject_der(der: bytes) -> bytes:
    """The DER bytes (tag, length and content) of the certificate's subject Name."""
    tag, cert_body, _ = _tlv(der, 0)
    if tag != 0x30:
        raise CertError("not a DER certificate")
    tag, tbs_body, tbs_end = _tlv(der, cert_body)
    if tag != 0x30:
        raise CertError("no tbsCertificate")
    pos = tbs_body
    tag, _, end = _tlv(der, pos)
    if tag == 0xA0:  # [0] EXPLICIT version
        pos = end
    fields = []
    for _ in range(5):  # serialNumber, signature, issuer, validity, subject
        if pos >= tbs_end:
            raise CertError("tbsCertificate ends before the subject")
        tag, _, end = _tlv(der, pos)
        fields.append((tag, pos, end))
        pos = end
    tag, start, end = fields[4]
    if tag != 0x30 or fields[0][0] != 0x02:
        raise CertError("unexpected tbsCertificate layout")
    return der[start:end]


def subject_hash_old(pem_or_der: bytes) -> str:
    """``openssl x509 -subject_hash_old`` for a PEM or DER certificate."""
    der = pem_to_der(pem_or_der) if pem_or_der.lstrip().startswith(b"-----") else pem_or_der
    digest = hashlib.md5(subject_der(der), usedforsecurity=False).digest()
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def android_ca_name(pem: bytes, existing: set[str] | frozenset[str] = frozenset()) -> str:
    """``<hash>.<n>`` with the lowest ``n`` not already taken by another certificate."""
    h = subject_hash_old(pem)
    n = 0
    while f"{h}.{n}" in existing:
        n += 1
    return f"{h}.{n}"


__all__ = ["CertError", "android_ca_name", "pem_to_der", "subject_der", "subject_hash_old"]
