"""The one place protobuf messages become frozen dataclasses and back.

Unset ``optional`` scenario fields become the ``Scenario`` defaults here, and
enum values a newer client might send that this server does not know become
``InvalidArgument`` rather than a crash.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from sandbox.model import Scenario, Stage, Verdict
from sandbox.orchestrator.errors import InvalidArgument
from sandbox.orchestrator.model import AnalysisRecord, AnalysisState, ArtifactRecord, EventRecord, LeaseGrant

from .gen.honeyphone.v1 import fleet_pb2 as fpb
from .gen.honeyphone.v1 import sandbox_pb2 as pb

_DEFAULT = Scenario()


def timestamp(t: float | None) -> Timestamp | None:
    if t is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(round(t * 1e9)))
    return ts


def seconds(ts: Timestamp) -> float:
    return ts.ToNanoseconds() / 1e9


def scenario_from_proto(msg: pb.Scenario) -> Scenario:
    return Scenario(
        hours=msg.hours if msg.HasField("hours") else _DEFAULT.hours,
        seed=msg.seed if msg.HasField("seed") else _DEFAULT.seed,
        contacts=msg.contacts if msg.HasField("contacts") else _DEFAULT.contacts,
        sms=msg.sms if msg.HasField("sms") else _DEFAULT.sms,
        calls=msg.calls if msg.HasField("calls") else _DEFAULT.calls,
        locale=msg.locale if msg.HasField("locale") else _DEFAULT.locale,
        profile=msg.profile if msg.HasField("profile") else _DEFAULT.profile,
    )


def scenario_to_proto(s: Scenario) -> pb.Scenario:
    return pb.Scenario(
        hours=s.hours, seed=s.seed, contacts=s.contacts, sms=s.sms, calls=s.calls, locale=s.locale, profile=s.profile
    )


def stage_to_proto(stage: Stage) -> pb.Stage.ValueType:
    return pb.Stage.Value("STAGE_" + stage.name)


def stage_from_proto(value: int, field: str = "stage") -> Stage:
    try:
        name = pb.Stage.Name(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument(f"{field}: unknown stage {value}") from None
    if value == pb.STAGE_UNSPECIFIED:
        raise InvalidArgument(f"{field}: required")
    return Stage[name.removeprefix("STAGE_")]


def verdict_to_proto(verdict: Verdict | None) -> pb.Verdict.ValueType:
    return pb.VERDICT_UNSPECIFIED if verdict is None else pb.Verdict.Value("VERDICT_" + verdict.name)


def verdict_from_proto(value: int, field: str = "verdict") -> Verdict | None:
    try:
        name = pb.Verdict.Name(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument(f"{field}: unknown verdict {value}") from None
    return None if value == pb.VERDICT_UNSPECIFIED else Verdict[name.removeprefix("VERDICT_")]


def state_to_proto(state: AnalysisState) -> pb.AnalysisState.ValueType:
    return pb.AnalysisState.Value("ANALYSIS_STATE_" + state.name)


def state_from_proto(value: int, field: str = "state") -> AnalysisState | None:
    try:
        name = pb.AnalysisState.Name(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument(f"{field}: unknown state {value}") from None
    return None if value == pb.ANALYSIS_STATE_UNSPECIFIED else AnalysisState[name.removeprefix("ANALYSIS_STATE_")]


def artifact_to_proto(a: ArtifactRecord) -> pb.ArtifactInfo:
    return pb.ArtifactInfo(name=a.name, sha256=a.sha256, size=a.size)


def artifact_from_proto(msg: pb.ArtifactInfo, analysis_id: str = "") -> ArtifactRecord:
    return ArtifactRecord("", analysis_id, msg.name, msg.sha256, msg.size)


def analysis_to_proto(rec: AnalysisRecord, artifacts: Iterable[ArtifactRecord] = ()) -> pb.Analysis:
    msg = pb.Analysis(
        id=rec.id, state=state_to_proto(rec.state), firmware_sha256=rec.firmware_sha256,
        scenario=scenario_to_proto(rec.scenario), priority=rec.priority, labels=dict(rec.labels),
        verdict=verdict_to_proto(rec.verdict), error=rec.error or "", stage=stage_to_proto(rec.stage),
        attempts=rec.attempts, max_attempts=rec.max_attempts, worker_id=rec.worker_id or "",
        created_at=timestamp(rec.created_at), updated_at=timestamp(rec.updated_at),
        finished_at=timestamp(rec.finished_at), artifacts=[artifact_to_proto(a) for a in artifacts],
    )
    if rec.device_hours is not None:
        msg.device_hours = rec.device_hours
    return msg


def analysis_from_proto(msg: pb.Analysis) -> tuple[AnalysisRecord, list[ArtifactRecord]]:
    """The client's view of an analysis (``seq`` and ``lease_id`` are server-internal)."""
    state = state_from_proto(msg.state) or AnalysisState.QUEUED
    rec = AnalysisRecord(
        id=msg.id, firmware_sha256=msg.firmware_sha256, scenario=scenario_from_proto(msg.scenario),
        priority=msg.priority, labels=dict(msg.labels), state=state,
        created_at=seconds(msg.created_at), updated_at=seconds(msg.updated_at), max_attempts=msg.max_attempts,
        attempts=msg.attempts, verdict=verdict_from_proto(msg.verdict), error=msg.error or None,
        stage=stage_from_proto(msg.stage) if msg.stage else Stage.QUEUED,
        device_hours=msg.device_hours if msg.HasField("device_hours") else None,
        worker_id=msg.worker_id or None,
        finished_at=seconds(msg.finished_at) if msg.HasField("finished_at") else None,
    )
    return rec, [artifact_from_proto(a, msg.id) for a in msg.artifacts]


def event_to_proto(ev: EventRecord) -> pb.Event:
    msg = pb.Event(sequence=ev.sequence, stage=stage_to_proto(ev.stage), message=ev.message, time=timestamp(ev.time))
    if ev.device_hours is not None:
        msg.device_hours = ev.device_hours
    return msg


def event_from_proto(msg: pb.Event, analysis_id: str) -> EventRecord:
    hours = msg.device_hours if msg.HasField("device_hours") else None
    return EventRecord(analysis_id, msg.sequence, stage_from_proto(msg.stage), msg.message, hours, seconds(msg.time))


def worker_event_to_proto(stage: Stage, message: str, device_hours: float | None) -> fpb.WorkerEvent:
    msg = fpb.WorkerEvent(stage=stage_to_proto(stage), message=message)
    if device_hours is not None:
        msg.device_hours = device_hours
    return msg


def worker_event_from_proto(msg: fpb.WorkerEvent, field: str) -> tuple[Stage, str, float | None]:
    hours = msg.device_hours if msg.HasField("device_hours") else None
    return stage_from_proto(msg.stage, f"{field}.stage"), msg.message, hours


def lease_to_proto(g: LeaseGrant) -> fpb.Lease:
    return fpb.Lease(
        analysis_id=g.analysis_id, lease_id=g.lease_id, deadline=timestamp(g.deadline),
        scenario=scenario_to_proto(g.scenario), firmware_sha256=g.firmware_sha256, labels=dict(g.labels),
        attempt=g.attempt,
    )


def lease_from_proto(msg: fpb.Lease) -> LeaseGrant:
    return LeaseGrant(
        msg.analysis_id, msg.lease_id, seconds(msg.deadline), scenario_from_proto(msg.scenario),
        msg.firmware_sha256, dict(msg.labels), msg.attempt,
    )
