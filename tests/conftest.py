"""Shared by unit and integration tests: Hypothesis profiles and a real
PostgreSQL server.

Hypothesis.  Without a profile every run draws new random cases, so CI fails
at random (a generated 33 MB request once hit a size limit) and then spends
minutes shrinking.  The default profile, ``ci``, is derandomized (the same
cases on every run, from each test's own settings), keeps no example
database, has no deadline and does not shrink (a failure is reproduced
locally with the same profile, and shrunk there with ``dev``).

Select with ``HYPOTHESIS_PROFILE``:

* ``ci`` (default): derandomized, no shrinking, no deadline;
* ``dev``: derandomized, with shrinking (to minimise a failure found in CI);
* ``nightly``: random cases, the example database, shrinking, 10x the
  examples of tests that do not set their own count: full strength, for
  the nightly / benchmark run (``HYPOTHESIS_PROFILE=nightly pytest tests/unit``).

Tests that set ``max_examples`` keep their own counts in every profile.

PostgreSQL.  The server is started once per test process (pytest-xdist
worker), each test gets its own database, and the server is stopped at the
end.  When the binaries are missing the tests that need it skip, saying why
and how to get them; scripts/setup-host.sh installs them, so CI runs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings
from pgcluster import PgServer, running_server

PROFILE_ENV = "HYPOTHESIS_PROFILE"
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)


def pytest_configure(config: pytest.Config) -> None:
    settings.register_profile("ci", derandomize=True, database=None, deadline=None, phases=_NO_SHRINK,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("dev", derandomize=True, database=None, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("nightly", derandomize=False, deadline=None, max_examples=1000,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get(PROFILE_ENV, "ci"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    yield from running_server()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    """A fresh database on the session's server."""
    if pg_server.proc is None or pg_server.proc.poll() is not None:  # a fault test stopped it
        pg_server.start()
    return pg_server.new_database()
