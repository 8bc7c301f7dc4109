"""Deciding from a connection's first bytes what protocol the device speaks.

TLS and HTTP go to mitmproxy for decryption and decoding; anything else is
recorded raw.  A client that sends nothing within the peek timeout speaks a
server-first protocol (SMTP, FTP, ...) and is recorded raw as well.
"""

from __future__ import annotations

import struct

HTTP_METHODS = (
    b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT",
    b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"PRI",
)
_HTTP_PREFIXES = tuple(m + b" " for m in HTTP_METHODS)
MAX_DECISION_BYTES = max(len(p) for p in _HTTP_PREFIXES)


def classify(data: bytes) -> str | None:
    """``"tls"``, ``"http"`` or ``"tcp"``; None while more bytes could change the answer."""
    if not data:
        return None
    if data[0] == 0x16:
        if len(data) < 2:
            return None
        return "tls" if data[1] == 0x03 else "tcp"
    if any(data.startswith(p) for p in _HTTP_PREFIXES):
        return "http"
    if len(data) < MAX_DECISION_BYTES and any(p.startswith(data) for p in _HTTP_PREFIXES):
        return None
    return "tcp"


def client_hello_sni(data: bytes) -> str | None:
    """The server name in a TLS ClientHello that starts ``data``, if one is there.

    Only the first record is read; a truncated or malformed hello gives None,
    never an exception (the bytes come from hostile firmware).
    """
    try:
        return _sni(data)
    except (struct.error, IndexError, UnicodeDecodeError):
        return None


def _sni(data: bytes) -> str | None:
    if len(data) < 5 or data[0] != 0x16:
        return None
    (rec_len,) = struct.unpack_from("!H", data, 3)
    body = data[5:5 + rec_len]
    if len(body) < 4 or body[0] != 0x01:  # handshake type client_hello
        return None
    hs_len = int.from_bytes(body[1:4], "big")
    hello = body[4:4 + hs_len]
    pos = 2 + 32  # client_version, random
    pos += 1 + hello[pos]  # session_id
    (n,) = struct.unpack_from("!H", hello, pos)
    pos += 2 + n  # cipher_suites
    pos += 1 + hello[pos]  # compression_methods
    if pos + 2 > len(hello):
        return None
    (ext_total,) = struct.unpack_from("!H", hello, pos)
    pos += 2
    end = min(len(hello), pos + ext_total)
    while pos + 4 <= end:
        ext_type, ext_len = struct.unpack_from("!HH", hello, pos)
        pos += 4
        if ext_type == 0:  # server_name
            ext = hello[pos:pos + ext_len]
            (list_len,) = struct.unpack_from("!H", ext, 0)
            p = 2
            while p + 3 <= 2 + list_len:
                name_type = ext[p]
                (name_len,) = struct.unpack_from("!H", ext, p + 1)
                name = ext[p + 3:p + 3 + name_len]
                if name_type == 0 and len(name) == name_len:
                    return name.decode("ascii")
                p += 3 + name_len
            return None
        pos += ext_len
    return None
