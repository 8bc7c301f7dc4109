"""Fixtures of the api tests: a fresh in-process server per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import Api, close_api, open_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = open_api(tmp_path)
    yield a
    close_api(a)
