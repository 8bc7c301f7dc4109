"""The twin's toybox-style date: argument forms."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "emulator_images" / "twin"))

from twinrt.datecmd import DateError, parse_target  # noqa: E402

NOW = 1_795_600_000.0  # 2026-11-25


def test_print_forms_are_not_sets() -> None:
    assert parse_target([], NOW) is None
    assert parse_target(["+%s"], NOW) is None
    assert parse_target(["-u"], NOW) is None


def test_set_forms() -> None:
    assert parse_target(["@1700000000"], NOW) == 1_700_000_000
    assert parse_target(["-s", "2030-01-02 03:04:05"], NOW) == 1_893_553_445
    assert parse_target(["-s", "@42"], NOW) == 42
    # toybox MMDDhhmm[[CC]YY][.ss]
    assert parse_target(["010203042030.05"], NOW) == 1_893_553_445
    assert parse_target(["01020304"], NOW) == parse_target(["-s", "2026-01-02 03:04:00"], NOW)
    with pytest.raises(DateError):
        parse_target(["-s", "not a date"], NOW)
