"""The provider base class: one authority's ``ContentProvider`` over its SQLite file.

Each provider module subclasses it with its ``DbSpec`` and the operations
its AOSP provider implements; the defaults here are what a provider that
does not implement one does.
"""

from __future__ import annotations

import sqlite3

from .db import DbSpec, open_db
from .errors import Cursor, Values
from .request import Uri


class Provider:
    """One authority's ContentProvider, re-enacted over its SQLite file."""

    spec: DbSpec

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_db(self.spec)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def query(
        self, uri: Uri, projection: list[str] | None, selection: str | None, sort: str | None
    ) -> Cursor | None:
        raise NotImplementedError

    def insert(self, uri: Uri, values: Values) -> str | None:
        raise NotImplementedError

    def update(self, uri: Uri, values: Values, selection: str | None) -> int:
        raise NotImplementedError

    def delete(self, uri: Uri, selection: str | None) -> int:
        raise NotImplementedError

    def get_type(self, uri: Uri) -> str | None:
        return None
