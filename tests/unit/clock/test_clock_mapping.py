"""Host <-> device time mapping, with wall-clock jumps as new segments."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sandbox.clock.mapping import ClockMapping


def test_linear_roundtrip_and_jump() -> None:
    m = ClockMapping.linear(1000.0, 5000.0, 3600.0)
    assert m.to_device(1001.0) == 5000.0 + 3600.0
    assert m.to_host(m.to_device(1002.5)) == 1002.5
    j = m.with_jump(1001.0, 86400.0)
    assert j.to_device(1000.5) == m.to_device(1000.5)       # before the jump: unchanged
    assert j.to_device(1001.0) == m.to_device(1001.0) + 86400  # at and after: shifted
    assert j.to_device(1002.0) == m.to_device(1002.0) + 86400
    assert ClockMapping.from_dict(j.to_dict()) == j


@given(st.floats(0, 1e6), st.floats(-1e7, 1e7), st.floats(1.0, 1e5), st.floats(0, 1e3))
def test_to_host_inverts_to_device(h: float, d: float, rate: float, dt: float) -> None:
    m = ClockMapping.linear(h, d, rate)
    assert abs(m.to_host(m.to_device(h + dt)) - (h + dt)) < 1e-6 * max(1.0, abs(h + dt))
