"""Lexical pieces of strace output that the line parser, the syscall
decoders and the address readers all need.

Why one module: the three must agree on what a quoted string, an fd
decoration (``-yy``) and a sockaddr struct look like, and on how strace's
C-style escapes decode; defining them once keeps them from drifting apart.
"""

from __future__ import annotations

import re

__all__ = ["DECO", "SOCKADDR", "STR", "deco_path", "unescape"]

STR = r'"(?:[^"\\]|\\.)*"'
"""A quoted string, escapes included."""

# An fd decoration: paths escape < > " and \, so a bare '>' only appears in a
# socket's "->" or a nested -yy device tag like </dev/null<char 1:3>>.
DECO = r"<(?:\\.|->|<[^<>]*>|[^<>\\])*>"
"""An fd decoration such as ``</etc/hosts>`` or ``<TCP:[a:p->b:q]>``."""

SOCKADDR = r'\{(?:[^{}"]|' + STR + r")*\}"
"""A sockaddr struct ``{sa_family=...}``."""

_ESC_RE = re.compile(r"\\(?:x([0-9a-fA-F]{1,2})|([0-7]{1,3})|(.))", re.S)
_SIMPLE_ESCAPES = {
    "n": 10,
    "t": 9,
    "r": 13,
    "v": 11,
    "f": 12,
    "a": 7,
    "b": 8,
    "e": 27,
}


def unescape(text: str) -> str:
    """Decode strace's C-style escapes (``\\"``, ``\\n``, ``\\x41``, ``\\303``).

    Bytes that are not UTF-8 come back as ``\\xNN`` so the result is always
    printable and JSON-safe.
    """
    if "\\" not in text:
        return text
    out = bytearray()
    pos = 0
    for m in _ESC_RE.finditer(text):
        out += text[pos : m.start()].encode("utf-8", "surrogatepass")
        hexa, octal, char = m.groups()
        if hexa is not None:
            out.append(int(hexa, 16))
        elif octal is not None:
            out.append(int(octal, 8) & 0xFF)
        else:
            code = _SIMPLE_ESCAPES.get(char)
            if code is not None:
                out.append(code)
            else:
                out += char.encode("utf-8", "surrogatepass")
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogatepass")
    return out.decode("utf-8", "backslashreplace")


def deco_path(deco: str | None) -> str | None:
    """The path inside an fd decoration, without a nested ``<char 1:3>``."""
    if not deco or len(deco) < 2:
        return None
    inner = deco[1:-1]
    if inner.endswith(">"):
        cut = inner.rfind("<")
        if cut > 0:
            inner = inner[:cut]
    return unescape(inner)
