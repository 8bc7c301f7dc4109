"""Hypothesis profiles for the whole suite.

Why: without a profile every run draws new random cases, so CI fails at
random (a generated 33 MB request once hit a size limit) and then spends
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
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

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
