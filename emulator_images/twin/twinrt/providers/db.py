"""Provider database files: opening, creating and writing them.

See the package docstring for why the files use the rollback journal, mode
0644 in 0771 directories, and one ``BEGIN IMMEDIATE`` per write.  ``DbSpec``
names a file, its ``DATABASE_VERSION`` and its schema; ``open_db`` creates it
once even under concurrent first use.  The ``db_*`` helpers are
``SQLiteDatabase.insert/update/delete``.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .. import paths
from .errors import Cursor, IAE, ProviderError, Value, Values, _sqlite_error
from .java import _sql_value
from .phone import _dialable_digits, phone_numbers_equal

BUSY_TIMEOUT_MS = 30_000
DB_FILE_MODE = 0o644
DB_DIR_MODE = 0o771


@dataclass(frozen=True)
class DbSpec:
    device_path: str
    version: int  # SQLiteOpenHelper stores DATABASE_VERSION in PRAGMA user_version
    schema: tuple[str, ...]
    seed: Callable[[sqlite3.Connection], None] | None = None


def _collate(a: str, b: str) -> int:
    ka, kb = a.casefold(), b.casefold()
    return (ka > kb) - (ka < kb) or (a > b) - (a < b)


def _register_functions(conn: sqlite3.Connection) -> None:
    """Android registers these on its connections; the schema and queries use them."""
    conn.create_function("PHONE_NUMBERS_EQUAL", -1, phone_numbers_equal, deterministic=True)
    conn.create_function(
        "_PHONE_NUMBER_STRIPPED_REVERSED",
        1,
        lambda n: None if n is None else _dialable_digits(str(n))[::-1],
        deterministic=True,
    )
    for name in ("PHONEBOOK", "LOCALIZED", "UNICODE"):
        conn.create_collation(name, _collate)


def _ensure_dir(path: Path) -> None:
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing[:2]:  # databases/ and the package directory, as on Android
        try:
            os.chmod(created, DB_DIR_MODE)
        except OSError:
            pass


def open_db(spec: DbSpec) -> sqlite3.Connection:
    """Open (creating on first use) one provider database.

    Creation happens inside ``BEGIN IMMEDIATE`` and re-checks the version so
    that concurrent first uses create the schema once.
    """
    path = paths.under(spec.device_path)
    _ensure_dir(path.parent)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _register_functions(conn)
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "delete":
            conn.execute("PRAGMA journal_mode=DELETE")
        if conn.execute("PRAGMA user_version").fetchone()[0] != spec.version:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for stmt in spec.schema:
                        conn.execute(stmt)
                    if spec.seed is not None:
                        spec.seed(conn)
                    conn.execute(f"PRAGMA user_version={spec.version}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        try:
            if path.stat().st_mode & 0o777 != DB_FILE_MODE:
                os.chmod(path, DB_FILE_MODE)
        except OSError:
            pass
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def write_txn(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One committed write transaction: readers see all of it or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def run_query(conn: sqlite3.Connection, sql: str) -> Cursor:
    try:
        cur = conn.execute(sql)
        rows = cur.fetchall()
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, sql) from None
    return Cursor([d[0] for d in cur.description or ()], rows)


def run_exec(conn: sqlite3.Connection, sql: str, args: Sequence[Value] = ()) -> int:
    try:
        return conn.execute(sql, [_sql_value(a) for a in args]).rowcount
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, sql) from None


def db_insert(conn: sqlite3.Connection, table: str, values: Values, null_column_hack: str | None = None) -> int:
    """``SQLiteDatabase.insert``: errors are logged and swallowed, returning -1.

    Column names go into the SQL unquoted, as Android does.
    """
    if values:
        cols = list(values)
        sql = f"INSERT INTO {table}({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
        args = [_sql_value(values[c]) for c in cols]
    else:
        sql = f"INSERT INTO {table}({null_column_hack}) VALUES (NULL)"
        args = []
    try:
        conn.execute("SAVEPOINT ins")
        cur = conn.execute(sql, args)
        conn.execute("RELEASE ins")
        return int(cur.lastrowid or -1)
    except sqlite3.Error:
        conn.execute("ROLLBACK TO ins")
        conn.execute("RELEASE ins")
        return -1


def db_update(conn: sqlite3.Connection, table: str, values: Values, where: str | None) -> int:
    """``SQLiteDatabase.update`` (errors propagate, unlike insert)."""
    if not values:
        raise ProviderError(IAE, "Empty values")
    cols = list(values)
    sql = f"UPDATE {table} SET " + ",".join(f"{c}=?" for c in cols)
    if where:
        sql += f" WHERE {where}"
    return run_exec(conn, sql, [values[c] for c in cols])


def db_delete(conn: sqlite3.Connection, table: str, where: str | None) -> int:
    sql = f"DELETE FROM {table}" + (f" WHERE {where}" if where else "")
    return run_exec(conn, sql)
