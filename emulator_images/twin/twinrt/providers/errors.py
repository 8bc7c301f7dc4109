"""What a provider call can end with: a Java exception or a cursor.

``ProviderError`` carries the Java class name Android would throw (``content``
prints it as a stack trace would); ``Cursor`` keeps SQLite's own value types;
``_sqlite_error`` maps a sqlite3 error to the message Android's SQLite wrapper
formats.  ``Value``/``Values`` are ``ContentValues``' value types.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


Value = None | bool | int | float | str | bytes
Values = dict[str, Value]


IAE = "java.lang.IllegalArgumentException"
UOE = "java.lang.UnsupportedOperationException"
ISE = "java.lang.IllegalStateException"


class ProviderError(Exception):
    """An exception the Android provider would throw, under its Java name.

    ``content`` prints it as ``e.printStackTrace()`` would, so the Java class
    name matters as much as the message.
    """

    def __init__(self, java_class: str, message: str, *, remote: bool = True) -> None:
        super().__init__(message)
        self.java_class = java_class
        self.message = message
        # Thrown inside the provider (crossed Binder) rather than in ``content``.
        self.remote = remote

    def __str__(self) -> str:
        return f"{self.java_class}: {self.message}"


@dataclass
class Cursor:
    """Column names and rows, with SQLite's own value types kept."""

    columns: list[str]
    rows: list[tuple[Value, ...]]


def _sqlite_error(exc: sqlite3.Error, sql: str) -> ProviderError:
    """Map a sqlite3 error to the exception Android's SQLite wrapper throws.

    Android formats ``<sqlite message> (code N NAME)`` and, for errors while
    preparing a statement, appends ``, while compiling: <sql>``; constraint
    failures become ``SQLiteConstraintException``.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", None)
    msg = str(exc)
    if code is None:
        code, name = 1, "SQLITE_ERROR"
    java = "android.database.sqlite.SQLiteException"
    primary = code & 0xFF
    if primary == 19:
        java = "android.database.sqlite.SQLiteConstraintException"
    elif primary == 13:
        java = "android.database.sqlite.SQLiteFullException"
    elif primary in (5, 6):
        java = "android.database.sqlite.SQLiteDatabaseLockedException"
    text = f"{msg} (code {code} {name})"
    if primary == 1:
        text += f": , while compiling: {sql}"
    return ProviderError(java, text)
