"""The twin's ``content`` command: ``python3 -m twinrt.content ARGS...``.

It parses arguments exactly as AOSP ``cmds/content/.../Content.java`` does
(usage text, ``[ERROR] ...`` lines, ``--bind name:type:value`` with ``\\``
escaping, ``--projection a:b``), runs the operation against the SQLite-backed
providers in :mod:`twinrt.providers`, and prints what Android prints:
nothing for insert/update/delete, ``Row: N col=value, ...`` or
``No result found.`` for query, and for a failure ``Error while accessing
provider:<authority>`` plus a Java-style stack trace on stderr.

One deliberate difference: Android's ``content`` always exits 0; this one
exits 1 after a usage error or a provider error so that host code on the
twin can tell.  Host code must not rely on it, since a real device cannot.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from dataclasses import dataclass, field
from typing import TextIO

from . import providers
from .providers import ProviderError, Uri, Value, Values

USAGE = (
    "usage: adb shell content [subcommand] [options]\n"
    "\n"
    "usage: adb shell content insert --uri <URI> [--user <USER_ID>]"
    " --bind <BINDING> [--bind <BINDING>...] [--extra <BINDING>...]\n"
    "  <URI> a content provider URI.\n"
    "  <BINDING> binds a typed value to a column and is formatted:\n"
    "  <COLUMN_NAME>:<TYPE>:<COLUMN_VALUE> where:\n"
    "  <TYPE> specifies data type such as:\n"
    "  b - boolean, s - string, i - integer, l - long, f - float, d - double, n - null\n"
    "  Note: Omit the value for passing an empty string, e.g column:s:\n"
    "  Example:\n"
    '  # Add "new_setting" secure setting with value "new_value".\n'
    "  adb shell content insert --uri content://settings/secure --bind name:s:new_setting"
    " --bind value:s:new_value\n"
    "\n"
    "usage: adb shell content update --uri <URI> [--user <USER_ID>]"
    " [--where <WHERE>] [--extra <BINDING>...]\n"
    "  <WHERE> is a SQL style where clause in quotes (You have to escape single quotes"
    " - see example below).\n"
    "  Example:\n"
    '  # Change "new_setting" secure setting to "newer_value".\n'
    "  adb shell content update --uri content://settings/secure --bind"
    " value:s:newer_value --where \"name='new_setting'\"\n"
    "\n"
    "usage: adb shell content delete --uri <URI> [--user <USER_ID>] --bind <BINDING>"
    " [--bind <BINDING>...] [--where <WHERE>] [--extra <BINDING>...]\n"
    "  Example:\n"
    '  # Remove "new_setting" secure setting.\n'
    "  adb shell content delete --uri content://settings/secure "
    "--where \"name='new_setting'\"\n"
    "\n"
    "usage: adb shell content query --uri <URI> [--user <USER_ID>]"
    " [--projection <PROJECTION>] [--where <WHERE>] [--sort <SORT_ORDER>]"
    " [--extra <BINDING>...]\n"
    "  <PROJECTION> is a list of colon separated column names and is formatted:\n"
    "  <COLUMN_NAME>[:<COLUMN_NAME>...]\n"
    "  <SORT_ORDER> is the order in which rows in the result should be sorted.\n"
    "  Example:\n"
    '  # Select "name" and "value" columns from secure settings where "name" is '
    'equal to "new_setting" and sort the result by name in ascending order.\n'
    "  adb shell content query --uri content://settings/secure --projection name:value"
    " --where \"name='new_setting'\" --sort \"name ASC\"\n"
    "\n"
    "usage: adb shell content call --uri <URI> --method <METHOD> [--arg <ARG>]\n"
    "       [--extra <BINDING> ...]\n"
    "  <METHOD> is the name of a provider-defined method\n"
    "  <ARG> is an optional string argument\n"
    "  <BINDING> is like --bind above, typed data of the form <KEY>:{b,s,i,l,f,d}:<VAL>\n"
    "\n"
    "usage: adb shell content read --uri <URI> [--user <USER_ID>]\n"
    "  Example:\n"
    "  adb shell 'content read --uri content://settings/system/ringtone_cache' > host.ogg\n"
    "\n"
    "usage: adb shell content write --uri <URI> [--user <USER_ID>]\n"
    "  Example:\n"
    "  adb shell 'content write --uri content://settings/system/ringtone_cache' < host.ogg\n"
    "\n"
    "usage: adb shell content gettype --uri <URI> [--user <USER_ID>]\n"
    "  Example:\n"
    "  adb shell content gettype --uri content://media/internal/audio/media/\n"
    "\n"
)

URI_NOT_SPECIFIED = "Content provider URI not specified. Did you specify --uri argument?"
BINDINGS_NOT_SPECIFIED = "Bindings not specified. Did you specify --bind argument(s)?"

USER_SYSTEM = 0
USER_CURRENT = -2


class UsageError(ValueError):
    """Content.java's IllegalArgumentException while parsing (NumberFormatException too)."""


# --------------------------------------------------------------------------
# Java parsing primitives
# --------------------------------------------------------------------------


def _number_format(text: str | None) -> UsageError:
    return UsageError(f'For input string: "{text}"')


_JAVA_INT = re.compile(r"[+-]?\d+")


def parse_java_int(text: str, bits: int = 32) -> int:
    """``Integer.parseInt`` / ``Long.parseLong`` (radix 10)."""
    if not _JAVA_INT.fullmatch(text):
        raise _number_format(text)
    value = int(text)
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise _number_format(text)
    return value


_JAVA_DECIMAL = re.compile(r"[+-]?(NaN|Infinity|(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)[fFdD]?)")
_JAVA_HEX = re.compile(r"([+-]?)0[xX]([0-9a-fA-F]*\.?[0-9a-fA-F]*)[pP]([+-]?\d+)[fFdD]?")


def parse_java_double(text: str) -> float:
    """``Double.parseDouble``: Java's grammar, surrounding whitespace trimmed."""
    trimmed = text.strip("".join(chr(c) for c in range(0x21)))
    if not trimmed:
        raise UsageError("empty String")
    if _JAVA_DECIMAL.fullmatch(trimmed):
        body = trimmed.rstrip("fFdD") if not trimmed.endswith("Infinity") else trimmed
        return float(body.replace("Infinity", "inf"))
    m = _JAVA_HEX.fullmatch(trimmed)
    if m and m.group(2) not in ("", "."):
        return float.fromhex(f"{m.group(1)}0x{m.group(2)}p{m.group(3)}")
    raise _number_format(text)


def parse_java_float(text: str) -> float:
    """``Float.parseFloat``: as a double, then rounded to single precision."""
    return providers.to_float32(parse_java_double(text))


def split_with_escaping(argument: str, split_char: str) -> list[str]:
    """``Content.Parser.splitWithEscaping``: ``\\`` makes the next character literal."""
    res: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(argument):
        c = argument[i]
        if c == "\\":
            i += 1
            if i == len(argument):
                raise UsageError("Invalid escaping")
            cur.append(argument[i])
        elif c == split_char:
            res.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    res.append("".join(cur))
    return res


def escape_bind_part(text: str) -> str:
    """Escape a column name or value for ``--bind``: the inverse of splitting."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def bind_argument(column: str, type_code: str, value: str) -> str:
    """Build a ``--bind`` argument whose value survives ``split_with_escaping``."""
    return f"{escape_bind_part(column)}:{type_code}:{escape_bind_part(value)}"


def parse_binding(argument: str | None) -> tuple[str, Value]:
    """``Content.Parser.parseBindValue``."""
    if not argument:
        raise UsageError(f"Binding not well formed: {'null' if argument is None else argument}")
    split = split_with_escaping(argument, ":")
    if len(split) != 3:
        raise UsageError(f"Binding not well formed: {argument}")
    column, type_code, value = split
    kind = type_code.lower()
    if type_code == "s":
        return column, value
    if kind == "b":
        return column, value.lower() == "true"
    if kind == "i":
        return column, parse_java_int(value, 32)
    if kind == "l":
        return column, parse_java_int(value, 64)
    if kind == "f":
        return column, parse_java_float(value)
    if kind == "d":
        return column, parse_java_double(value)
    if kind == "n":
        return column, None
    raise UsageError(f"Unsupported type: {type_code}")


_PROJECTION_SPLIT = re.compile(r"[ \t\n\x0b\f\r]*:[ \t\n\x0b\f\r]*")


def split_projection(text: str) -> list[str]:
    """``String.split("[\\\\s]*:[\\\\s]*")``: trailing empty strings are dropped."""
    parts = _PROJECTION_SPLIT.split(text)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


# --------------------------------------------------------------------------
# Command parsing (Content.Parser)
# --------------------------------------------------------------------------


@dataclass
class Command:
    op: str
    uri: Uri
    user: int = USER_SYSTEM
    values: Values = field(default_factory=dict)
    extras: Values = field(default_factory=dict)
    where: str | None = None
    projection: list[str] | None = None
    sort: str | None = None
    method: str | None = None
    arg: str | None = None


_ALLOWED = {
    "insert": {"--uri", "--user", "--bind", "--extra"},
    "delete": {"--uri", "--user", "--where", "--extra"},
    "update": {"--uri", "--user", "--where", "--bind", "--extra"},
    "query": {"--uri", "--user", "--where", "--sort", "--projection", "--extra"},
    "call": {"--uri", "--user", "--method", "--arg", "--extra"},
    "read": {"--uri", "--user"},
    "write": {"--uri", "--user"},
    "gettype": {"--uri", "--user"},
}


class _Tokens:
    def __init__(self, args: list[str]) -> None:
        self._args = args
        self._next = 0

    def next(self) -> str | None:
        if self._next < len(self._args):
            self._next += 1
            return self._args[self._next - 1]
        return None

    def value_for(self, argument: str) -> str:
        """``argumentValueRequired``: a non-empty value not starting with ``--``."""
        value = self.next()
        if not value or value.startswith("--"):
            raise UsageError(f"No value for argument: {argument}")
        return value


def parse_command(args: list[str]) -> Command:
    """Parse argv as Content.java does; raises UsageError with Android's message."""
    tokens = _Tokens(args)
    op = tokens.next()
    if op not in _ALLOWED:
        raise UsageError(f"Unsupported operation: {'null' if op is None else op}")
    allowed = _ALLOWED[op]
    uri: Uri | None = None
    cmd = Command(op, providers.parse_uri(""))
    while (argument := tokens.next()) is not None:
        if argument not in allowed:
            raise UsageError(f"Unsupported argument: {argument}")
        if argument == "--uri":
            uri = providers.parse_uri(tokens.value_for(argument))
        elif argument == "--user":
            cmd.user = parse_java_int(tokens.value_for(argument))
        elif argument == "--bind":
            column, value = parse_binding(tokens.next())
            cmd.values.pop(column, None)
            cmd.values[column] = value
        elif argument == "--extra":
            key, value = parse_binding(tokens.next())
            cmd.extras[key] = value
        elif argument == "--where":
            cmd.where = tokens.value_for(argument)
        elif argument == "--sort":
            cmd.sort = tokens.value_for(argument)
        elif argument == "--projection":
            cmd.projection = split_projection(tokens.value_for(argument))
        elif argument == "--method":
            cmd.method = tokens.value_for(argument)
        elif argument == "--arg":
            cmd.arg = tokens.value_for(argument)
    if uri is None:
        raise UsageError(URI_NOT_SPECIFIED)
    cmd.uri = uri
    if op in ("insert", "update") and not cmd.values:
        raise UsageError(BINDINGS_NOT_SPECIFIED)
    if op == "call" and cmd.method is None:
        raise UsageError("Content provider method not specified.")
    return cmd


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def format_value(value: Value) -> str:
    """How QueryCommand renders one cell (REAL via ``getFloat``)."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "BLOB"
    if isinstance(value, float):
        return providers.java_float_str(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def format_row(index: int, columns: list[str], row: tuple[Value, ...]) -> str:
    """``Row: N col=value, col=value`` (no escaping, exactly as Android)."""
    cells = ", ".join(f"{name}={format_value(value)}" for name, value in zip(columns, row))
    return f"Row: {index} {cells}"


_FRAMES = {
    "insert": ("ContentProviderProxy.insert(ContentProviderNative.java:578)", "InsertCommand", 563),
    "delete": ("ContentProviderProxy.delete(ContentProviderNative.java:624)", "DeleteCommand", 582),
    "update": ("ContentProviderProxy.update(ContentProviderNative.java:651)", "UpdateCommand", 763),
    "query": ("ContentProviderProxy.query(ContentProviderNative.java:488)", "QueryCommand", 703),
    "call": ("ContentProviderProxy.call(ContentProviderNative.java:738)", "CallCommand", 605),
    "gettype": ("ContentProviderProxy.getType(ContentProviderNative.java:528)", "GetTypeCommand", 620),
    "read": ("ContentProviderProxy.openFile(ContentProviderNative.java:801)", "ReadCommand", 636),
    "write": ("ContentProviderProxy.openFile(ContentProviderNative.java:801)", "WriteCommand", 652),
}
# Exceptions DatabaseUtils.writeExceptionToParcel sends by code and
# readExceptionFromParcel re-creates itself; the rest go through Parcel.
_DATABASE_UTILS_CODES = {
    "java.io.FileNotFoundException",
    "java.lang.IllegalArgumentException",
    "java.lang.UnsupportedOperationException",
    "android.database.sqlite.SQLiteAbortException",
    "android.database.sqlite.SQLiteConstraintException",
    "android.database.sqlite.SQLiteDatabaseCorruptException",
    "android.database.sqlite.SQLiteFullException",
    "android.database.sqlite.SQLiteDiskIOException",
    "android.database.sqlite.SQLiteException",
}


def stack_trace(error: ProviderError, op: str) -> str:
    """What ``e.printStackTrace()`` prints in ``Content$Command.execute``."""
    lines = [f"{error.java_class}: {error.message}"]
    proxy, command, line = _FRAMES[op]
    if error.remote:
        if error.java_class in _DATABASE_UTILS_CODES:
            lines += [
                "\tat android.database.DatabaseUtils.readExceptionFromParcel(DatabaseUtils.java:172)",
                "\tat android.database.DatabaseUtils.readExceptionFromParcel(DatabaseUtils.java:142)",
            ]
        else:
            lines += [
                "\tat android.os.Parcel.createExceptionOrNull(Parcel.java:3255)",
                "\tat android.os.Parcel.createException(Parcel.java:3235)",
                "\tat android.os.Parcel.readException(Parcel.java:3218)",
                "\tat android.database.DatabaseUtils.readExceptionFromParcel(DatabaseUtils.java:190)",
                "\tat android.database.DatabaseUtils.readExceptionFromParcel(DatabaseUtils.java:142)",
            ]
        lines += [
            f"\tat android.content.{proxy}",
            f"\tat com.android.commands.content.Content${command}.onExecute(Content.java:{line})",
        ]
    lines += [
        "\tat com.android.commands.content.Content$Command.execute(Content.java:531)",
        "\tat com.android.commands.content.Content.main(Content.java:781)",
        "\tat com.android.internal.os.RuntimeInit.nativeFinishInit(Native Method)",
        "\tat com.android.internal.os.RuntimeInit.main(RuntimeInit.java:363)",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------


def _java_str(value: str | None) -> str:
    """String concatenation of a possibly-null Java String."""
    return "null" if value is None else value


def _selection(cmd: Command) -> str | None:
    """ContentProvider unpacks QUERY_ARG_SQL_SELECTION (``--where`` or an extra)."""
    if cmd.where is not None:
        return cmd.where
    extra = cmd.extras.get("android:query-arg-sql-selection")
    return extra if isinstance(extra, str) else None


def _sort(cmd: Command) -> str | None:
    if cmd.sort is not None:
        return cmd.sort
    extra = cmd.extras.get("android:query-arg-sql-sort-order")
    return extra if isinstance(extra, str) else None


def execute(cmd: Command, out: TextIO) -> None:
    """Run a parsed command; raises ProviderError as the provider would."""
    authority = cmd.uri.authority
    provider = providers.provider_for(authority) if cmd.user in (USER_SYSTEM, USER_CURRENT) else None
    if provider is None:
        raise ProviderError(providers.ISE, f"Could not find provider: {_java_str(authority)}", remote=False)
    try:
        if cmd.op == "insert":
            provider.insert(cmd.uri, cmd.values)
        elif cmd.op == "update":
            provider.update(cmd.uri, cmd.values, _selection(cmd))
        elif cmd.op == "delete":
            provider.delete(cmd.uri, _selection(cmd))
        elif cmd.op == "query":
            cursor = provider.query(cmd.uri, cmd.projection, _selection(cmd), _sort(cmd))
            if cursor is None or not cursor.rows:
                out.write("No result found.\n")
            else:
                for index, row in enumerate(cursor.rows):
                    out.write(format_row(index, cursor.columns, row) + "\n")
        elif cmd.op == "gettype":
            out.write(f"Result: {provider.get_type(cmd.uri) or 'null'}\n")
        elif cmd.op == "call":
            out.write("Result: null\n")  # ContentProvider.call's default
        else:  # read / write: ContentProvider.openFile's default
            raise ProviderError("java.io.FileNotFoundException", f"No files supported by provider at {cmd.uri}")
    except sqlite3.Error as exc:  # e.g. a locked or corrupt database file
        raise providers._sqlite_error(exc, "") from None
    except OSError as exc:  # the database directory or file cannot be created or opened
        raise ProviderError(
            "android.database.sqlite.SQLiteCantOpenDatabaseException",
            f"Cannot open database: {exc.strerror or exc} (code 14 SQLITE_CANTOPEN)",
        ) from None
    finally:
        provider.close()


def run(args: list[str], out: TextIO, err: TextIO) -> int:
    """The whole command: parse, execute, print.  Returns the exit status."""
    try:
        cmd = parse_command(args)
    except UsageError as exc:
        out.write(USAGE + "\n")
        out.write(f"[ERROR] {exc}\n")
        return 1
    try:
        execute(cmd, out)
    except ProviderError as exc:
        out.flush()
        err.write(f"Error while accessing provider:{_java_str(cmd.uri.authority)}\n")
        err.write(stack_trace(exc, cmd.op))
        return 1
    return 0


def _argv_as_java_strings(argv: list[str]) -> list[str]:
    """Java decodes argv as UTF-8, replacing invalid bytes with U+FFFD."""
    return [os.fsencode(a).decode("utf-8", "replace") for a in argv]


def main() -> None:
    out = open(sys.stdout.fileno(), "w", encoding="utf-8", errors="replace", newline="\n", closefd=False)
    err = open(sys.stderr.fileno(), "w", encoding="utf-8", errors="replace", newline="\n", closefd=False)
    try:
        status = run(_argv_as_java_strings(sys.argv[1:]), out, err)
    finally:
        out.flush()
        err.flush()
    sys.exit(status)


if __name__ == "__main__":
    main()
