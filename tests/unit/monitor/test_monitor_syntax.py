"""syntax tests: strace's C-style string escapes decode as strace wrote them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.monitor.syntax import unescape


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "plain"),
        (r"a\"b", 'a"b'),
        (r"back\\slash", "back\\slash"),
        (r"\t\n\r\v\f", "\t\n\r\v\f"),
        (r"\x41\x4a", "AJ"),
        (r"\303\251t\303\251", "été"),
        (r"\1\0011", "\x01\x011"),
        (r"\377", "\\xff"),
        ("trailing\\", "trailing\\"),
    ],
)
def test_unescape(raw: str, expected: str) -> None:
    assert unescape(raw) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_unescape_inverts_strace_quoting(data: bytes) -> None:
    out = []
    for i, b in enumerate(data):
        nxt = data[i + 1] if i + 1 < len(data) else None
        if b == 0x22:
            out.append('\\"')
        elif b == 0x5C:
            out.append("\\\\")
        elif b == 0x0A:
            out.append("\\n")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        elif nxt is not None and 0x30 <= nxt <= 0x37:
            out.append(f"\\{b:03o}")  # strace pads when a digit follows
        else:
            out.append(f"\\{b:o}")
    decoded = unescape("".join(out))
    assert decoded == data.decode("utf-8", "backslashreplace")
