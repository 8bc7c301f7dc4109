"""activity tests: merged activity intervals and per-port spans stay
bounded, sorted and complete."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.monitor.activity import Activity, add_to_spans, interval_distance


def test_add_to_spans_out_of_order_and_capped() -> None:
    spans: list[float] = []
    for ts in (10.0, 20.0, 5.0, 10.5, 19.5):
        add_to_spans(spans, ts, ts, 1.0)
    assert spans == [5.0, 5.0, 10.0, 10.5, 19.5, 20.0]
    add_to_spans(spans, 30.0, 31.0, 1.0)
    add_to_spans(spans, 40.0, 40.0, 1.0)  # a fifth span: the two closest (5 and 10-10.5) merge
    assert len(spans) == 8
    assert spans[:4] == [5.0, 10.5, 19.5, 20.0]
    add_to_spans(spans, 8.0, 9.5, 1.0)  # joins the 5.0-10.5 span
    assert spans[:2] == [5.0, 10.5]


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.floats(0.0, 1e4, allow_nan=False), st.floats(0.0, 50.0, allow_nan=False)),
                min_size=1, max_size=40))
def test_add_to_spans_invariants(adds: list[tuple[float, float]]) -> None:
    spans: list[float] = []
    for start, length in adds:
        add_to_spans(spans, start, start + length, 1.0)
        assert len(spans) % 2 == 0 and 2 <= len(spans) <= 8
        assert spans == sorted(spans)  # sorted, disjoint spans
    pairs = list(zip(spans[::2], spans[1::2]))
    for start, length in adds:  # every use is covered by one span
        assert any(a <= start and start + length <= b for a, b in pairs)


def test_interval_distance() -> None:
    iv = ((1.0, 2.0, 3), (10.0, 10.0, 1))
    assert interval_distance(iv, 1.5) == 0.0
    assert interval_distance(iv, 2.5) == 0.5
    assert interval_distance(iv, 9.0) == 1.0
    assert interval_distance(iv, 0.0) == 1.0
    assert interval_distance(iv, 10.0) == 0.0
    assert interval_distance((), 1.0) == float("inf")


def test_activity_is_bounded_and_keeps_counts() -> None:
    act = Activity(gap=1.0, cap=16)
    for i in range(10_000):
        act.add(i * 10.0)
    act.add(5.0)  # out of order
    frozen = act.freeze()
    assert len(frozen) <= 16
    assert sum(c for _, _, c in frozen) == 10_001
    assert frozen[0][0] == 0.0 and frozen[-1][1] == 99_990.0
    assert all(a[1] < b[0] for a, b in zip(frozen, frozen[1:]))


def test_out_of_order_activity_merges() -> None:
    act = Activity(gap=1.0, cap=100)
    for ts in (10.0, 20.0, 5.0, 10.5, 19.5, 15.0):
        act.add(ts)
    assert act.freeze() == ((5.0, 5.0, 1), (10.0, 10.5, 2), (15.0, 15.0, 1), (19.5, 20.0, 2))
    act.add(14.5)
    act.add(16.0)
    assert act.freeze()[2] == (14.5, 16.0, 3)
