"""Tests for sandbox.detect.alphabets: alphabet runs found at C speed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sandbox.detect.alphabets import B64_MAP, URL_MAP, distinct_runs, run_bounds, run_list


def _slow_runs(data: bytes, alphabet: bytes, minimum: int) -> list[tuple[int, int]]:
    out, start = [], None
    for k, b in enumerate(data + b"\x00"):
        if b in alphabet and k < len(data):
            start = k if start is None else start
        elif start is not None:
            if k - start >= minimum:
                out.append((start, k))
            start = None
    return out


B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"


@given(data=st.binary(max_size=200) | st.text("ab=/-. \x00", max_size=200).map(str.encode),
       minimum=st.integers(1, 20))
def test_run_list_finds_every_maximal_run(data: bytes, minimum: int) -> None:
    starts, ends = run_list(data.translate(B64_MAP), b"x" * minimum)
    assert list(zip(starts, ends)) == _slow_runs(data, B64, minimum)


def test_distinct_keeps_first_occurrences_in_order() -> None:
    data = b"tok1 abc tok1 xyz abc tok1= tok1"
    runs = run_list(data.translate(B64_MAP), b"xxx")
    assert [data[a:z] for a, z in distinct_runs(data, runs, 0)] == [b"tok1", b"abc", b"xyz"]
    # with one byte of context, a run followed by "=" (or by the end) is another key
    assert [data[a:z + 1] for a, z in distinct_runs(data, runs, 1)] == [b"tok1 ", b"abc ", b"xyz ", b"tok1=", b"tok1"]


def test_run_bounds_grows_past_its_window() -> None:
    data = b" " + b"a" * 5000 + b"%41" + b"b" * 3000 + b" "
    assert run_bounds(data, 5001, 0, len(data), URL_MAP) == (1, len(data) - 1)
    assert run_bounds(data, 5001, 100, 6000, URL_MAP) == (100, 6000)
