"""Building ``content`` command lines and parsing what ``content query`` prints.

Escaping and quoting live here, once, for every device kind.  Current Android
splits ``--bind COL:TYPE:VALUE`` on unescaped colons, a backslash making the
next character literal, so every ``:`` and ``\\`` in a value is escaped.
The whole command goes through ``shlex.quote`` because ``adb shell`` joins
its arguments and the device shell splits them again.

``content query`` prints ``Row: N col=value, col=value`` with no quoting, which
is ambiguous when a value contains ``, ``.  The parser therefore needs the
projection: it knows which column comes next and splits only at
``, <next column>=``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BindValue = str | int | float | bool | None


@dataclass(frozen=True)
class Bind:
    """One typed ``--bind`` (or ``--extra``) argument."""

    column: str
    type: str  # s, i, l, b, f, d, n
    value: str

    @classmethod
    def of(cls, column: str, value: BindValue) -> "Bind":
        """Choose the type Android needs: epoch-ms fits only in ``l``, so ints are ``l``."""
        if value is None:
            return cls(column, "n", "")
        if isinstance(value, bool):
            return cls(column, "b", "true" if value else "false")
        if isinstance(value, int):
            return cls(column, "l", str(value))
        if isinstance(value, float):
            return cls(column, "d", repr(value))
        return cls(column, "s", str(value))

    def argument(self) -> str:
        if ":" in self.column or not self.column:
            raise ValueError(f"invalid column name {self.column!r}")
        return f"{self.column}:{self.type}:{escape_value(self.value)}"


def escape_value(value: str) -> str:
    """Current Content.java: a backslash makes the next character literal."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def insert_command(uri: str, values: Mapping[str, BindValue], user: int | None = None) -> str:
    args = ["content", "insert", "--uri", uri]
    if user is not None:
        args += ["--user", str(user)]
    for column, value in values.items():
        args += ["--bind", Bind.of(column, value).argument()]
    return shlex.join(args)


def query_command(
    uri: str,
    projection: Sequence[str],
    where: str | None = None,
    sort: str | None = None,
    user: int | None = None,
) -> str:
    if not projection:
        raise ValueError("a projection is required to parse query output unambiguously")
    args = ["content", "query", "--uri", uri, "--projection", ":".join(projection)]
    if where is not None:
        args += ["--where", where]
    if sort is not None:
        args += ["--sort", sort]
    if user is not None:
        args += ["--user", str(user)]
    return shlex.join(args)


def delete_command(uri: str, where: str | None = None, user: int | None = None) -> str:
    args = ["content", "delete", "--uri", uri]
    if where is not None:
        args += ["--where", where]
    if user is not None:
        args += ["--user", str(user)]
    return shlex.join(args)


def parse_query_output(text: str, projection: Sequence[str]) -> list[dict[str, str | None]]:
    """Parse ``content query`` output for a known projection; NULL becomes None."""
    if text.strip() in ("", "No result found."):
        return []
    rows: list[str] = []
    for line in text.split("\n"):
        if line.startswith("Row: ") and _row_header_len(line, projection) is not None:
            rows.append(line)
        elif rows:
            rows[-1] += "\n" + line
    result: list[dict[str, str | None]] = []
    for raw in rows:
        raw = raw[_row_header_len(raw, projection) or 0:]
        if raw.endswith("\n"):
            raw = raw[:-1]
        result.append(_split_row(raw, projection))
    return result


def _row_header_len(line: str, projection: Sequence[str]) -> int | None:
    rest = line[5:]
    num, sep, tail = rest.partition(" ")
    if not sep or not num.isdigit() or not tail.startswith(projection[0] + "="):
        return None
    return 5 + len(num) + 1


def _split_row(raw: str, projection: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    pos = len(projection[0]) + 1
    for i, column in enumerate(projection):
        if i + 1 < len(projection):
            marker = f", {projection[i + 1]}="
            end = raw.find(marker, pos)
            if end < 0:
                raise ValueError(f"cannot find column {projection[i + 1]!r} in row {raw!r}")
            value = raw[pos:end]
            pos = end + len(marker)
        else:
            value = raw[pos:]
        out[column] = None if value == "NULL" else value
    return out
