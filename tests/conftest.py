"""Fixtures shared by unit and integration tests: a real PostgreSQL server.

The server is started once per test process (pytest-xdist worker), each test
gets its own database, and the server is stopped at the end.  When the
binaries are missing the tests that need it skip, saying why and how to get
them; scripts/setup-host.sh installs them, so CI runs them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgcluster import PgServer, unavailable_reason


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PgServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    """A fresh database on the session's server."""
    if pg_server.proc is None or pg_server.proc.poll() is not None:  # a fault test stopped it
        pg_server.start()
    return pg_server.new_database()
