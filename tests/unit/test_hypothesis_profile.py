"""CI runs the property and fuzz tests on fixed cases (tests/conftest.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import Phase, settings


@pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE", "ci") != "ci", reason="another profile was selected")
def test_the_default_profile_is_derandomized_without_shrinking_or_deadline() -> None:
    current = settings.default
    assert current.derandomize and current.database is None and current.deadline is None
    assert Phase.shrink not in current.phases
    assert settings(max_examples=7).derandomize  # per-test settings inherit it
