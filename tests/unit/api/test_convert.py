"""Protobuf <-> dataclass conversion round-trips, and unset fields take the defaults."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.api import convert
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb
from sandbox.model import Scenario, Stage, Verdict
from sandbox.orchestrator.errors import InvalidArgument
from sandbox.orchestrator.model import AnalysisRecord, AnalysisState, EventRecord

scenarios = st.builds(
    Scenario,
    hours=st.floats(1, 720), seed=st.integers(0, 2**63 - 1), contacts=st.integers(0, 10_000),
    sms=st.integers(0, 10_000), calls=st.integers(0, 10_000), locale=st.sampled_from(["en_US", "de_DE", "fr"]),
    profile=st.sampled_from(["twin", "android"]),
)
times = st.floats(0, 4e9).map(lambda t: round(t, 6))


@given(scenarios)
def test_scenario_roundtrip(s: Scenario) -> None:
    assert convert.scenario_from_proto(convert.scenario_to_proto(s)) == s


def test_unset_scenario_fields_take_defaults() -> None:
    assert convert.scenario_from_proto(pb.Scenario()) == Scenario()
    assert convert.scenario_from_proto(pb.Scenario(contacts=0)).contacts == 0  # explicit zero is kept


@given(
    s=scenarios, state=st.sampled_from(AnalysisState), stage=st.sampled_from(Stage),
    verdict=st.none() | st.sampled_from(Verdict), hours=st.none() | st.floats(0, 720), t=times,
    labels=st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), st.text(max_size=5), max_size=3),
)
def test_analysis_roundtrip(
    s: Scenario, state: AnalysisState, stage: Stage, verdict: Verdict | None, hours: float | None, t: float,
    labels: dict[str, str],
) -> None:
    rec = AnalysisRecord(
        id="0123456789abcdef", firmware_sha256="ab" * 32, scenario=s, priority=-3, labels=labels, state=state,
        created_at=t, updated_at=t, max_attempts=3, attempts=1, verdict=verdict, error="e", stage=stage,
        device_hours=hours, worker_id="w-" + "1" * 16, finished_at=t,
    )
    back, arts = convert.analysis_from_proto(convert.analysis_to_proto(rec))
    assert arts == []
    assert back == rec or abs(back.created_at - rec.created_at) < 1e-6


@given(stage=st.sampled_from(Stage), hours=st.none() | st.floats(0, 720), t=times)
def test_event_roundtrip(stage: Stage, hours: float | None, t: float) -> None:
    ev = EventRecord("0123456789abcdef", 7, stage, "m", hours, t)
    back = convert.event_from_proto(convert.event_to_proto(ev), ev.analysis_id)
    assert (back.sequence, back.stage, back.device_hours) == (7, stage, hours)
    assert abs(back.time - t) < 1e-6


def test_unknown_enums_are_invalid_arguments() -> None:
    for fn in (convert.stage_from_proto, convert.verdict_from_proto, convert.state_from_proto):
        with pytest.raises(InvalidArgument, match="unknown"):
            fn(99)
    with pytest.raises(InvalidArgument, match="required"):
        convert.stage_from_proto(0)
