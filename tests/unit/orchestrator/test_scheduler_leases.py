"""Lease expiry, re-leasing, max attempts, idempotent completion, cancellation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.model import Scenario, Stage, Verdict
from sandbox.orchestrator.errors import InvalidArgument, NotFound, PreconditionFailed
from sandbox.orchestrator.memory_store import MemoryStore
from sandbox.orchestrator.model import AnalysisState, Completion, WorkerProgress
from sandbox.orchestrator.runtime import Orchestrator
from sandbox.orchestrator.sqlite_store import SqliteStore
from sandbox.settings import FleetSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
def orch(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Orchestrator]:
    store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    o = Orchestrator(store, FleetSettings(lease_seconds=10, max_attempts=2), clock)
    yield o
    o.close()


def submit(orch: Orchestrator, **labels: str) -> str:
    fw = orch.service.upload_firmware("fw.tgz", [b"firmware"])
    return orch.service.submit(fw.sha256, Scenario(hours=10), 0, labels).id


def stages(orch: Orchestrator, aid: str) -> list[Stage]:
    return [e.stage for e in orch.service.watch(aid, 1, lambda: False, poll_s=0.01)]


def done(lease_id: str, verdict: Verdict = Verdict.CLEAN) -> Completion:
    return Completion(lease_id, verdict, json.dumps({"verdict": verdict.value}))


def test_lease_respects_slots_and_profiles(orch: Orchestrator) -> None:
    ids = [submit(orch) for _ in range(3)]
    w = orch.scheduler.register_worker("a", 2, ["twin"])
    android = orch.scheduler.register_worker("b", 4, ["android"])
    assert orch.scheduler.lease(android.id, 4) == []
    first = orch.scheduler.lease(w.id, 5)
    assert [g.analysis_id for g in first] == ids[:2]
    assert orch.scheduler.lease(w.id, 5) == []  # no free slot
    assert orch.service.get(ids[0])[0].state == AnalysisState.RUNNING


def test_expired_lease_is_released_and_taken_over(orch: Orchestrator, clock: Clock) -> None:
    aid = submit(orch)
    w1 = orch.scheduler.register_worker("one", 1, ["twin"])
    w2 = orch.scheduler.register_worker("two", 1, ["twin"])
    (g1,) = orch.scheduler.lease(w1.id, 1)
    clock.now += 9
    assert orch.scheduler.heartbeat(w1.id, [WorkerProgress(g1.lease_id)]).expired == ()
    clock.now += 9  # extended by the heartbeat: still valid
    assert orch.scheduler.expire_due() == 0
    clock.now += 2
    assert orch.scheduler.expire_due() == 1
    rec = orch.service.get(aid)[0]
    assert rec.state == AnalysisState.QUEUED and rec.attempts == 1
    (g2,) = orch.scheduler.lease(w2.id, 1)
    assert g2.analysis_id == aid and g2.attempt == 2
    # the first worker wakes up: told its lease expired, and its completion is ignored
    assert orch.scheduler.heartbeat(w1.id, [WorkerProgress(g1.lease_id)]).expired == (g1.lease_id,)
    late = orch.scheduler.complete(done(g1.lease_id, Verdict.LEAK))
    assert not late.accepted and "expired" in late.ignored_reason
    ok = orch.scheduler.complete(done(g2.lease_id))
    assert ok.accepted and not ok.duplicate and ok.state == AnalysisState.SUCCEEDED
    rec, doc = orch.service.report(aid)
    assert rec.verdict == Verdict.CLEAN and json.loads(doc) == {"verdict": "clean"}
    assert stages(orch, aid) == [Stage.QUEUED, Stage.LEASED, Stage.QUEUED, Stage.LEASED, Stage.FINISHED]


def test_max_attempts_fails_with_reason(orch: Orchestrator, clock: Clock) -> None:
    aid = submit(orch)
    w = orch.scheduler.register_worker("flaky", 1, ["twin"])
    for _ in range(2):
        assert len(orch.scheduler.lease(w.id, 1)) == 1
        clock.now += 11
        orch.scheduler.expire_due()
    rec = orch.service.get(aid)[0]
    assert rec.state == AnalysisState.FAILED and rec.attempts == 2
    assert rec.error is not None and "gave up after 2 attempts" in rec.error and "flaky" in rec.error
    assert orch.scheduler.lease(w.id, 1) == []
    assert stages(orch, aid)[-1] == Stage.FAILED
    with pytest.raises(PreconditionFailed, match="failed"):
        orch.service.report(aid)


def test_completion_is_idempotent_with_exactly_one_report(orch: Orchestrator) -> None:
    aid = submit(orch)
    w = orch.scheduler.register_worker("w", 1, ["twin"])
    (g,) = orch.scheduler.lease(w.id, 1)
    assert orch.scheduler.complete(done(g.lease_id, Verdict.LEAK)).accepted
    again = orch.scheduler.complete(done(g.lease_id, Verdict.CLEAN))
    assert again.accepted and again.duplicate
    rec, doc = orch.service.report(aid)
    assert rec.verdict == Verdict.LEAK and json.loads(doc)["verdict"] == "leak"
    assert stages(orch, aid).count(Stage.FINISHED) == 1


def test_retryable_error_requeues_then_fails(orch: Orchestrator) -> None:
    aid = submit(orch)
    w = orch.scheduler.register_worker("w", 1, ["twin"])
    (g,) = orch.scheduler.lease(w.id, 1)
    orch.scheduler.complete(Completion(g.lease_id, None, "", "docker went away", retryable=True))
    assert orch.service.get(aid)[0].state == AnalysisState.QUEUED
    (g,) = orch.scheduler.lease(w.id, 1)
    orch.scheduler.complete(Completion(g.lease_id, None, "", "docker went away again", retryable=True))
    rec = orch.service.get(aid)[0]
    assert rec.state == AnalysisState.FAILED and rec.error == "docker went away again"


def test_cancel_running_tells_worker_and_ignores_its_completion(orch: Orchestrator) -> None:
    aid = submit(orch)
    w = orch.scheduler.register_worker("w", 1, ["twin"])
    (g,) = orch.scheduler.lease(w.id, 1)
    assert orch.service.cancel(aid).state == AnalysisState.CANCELLED
    assert orch.service.cancel(aid).state == AnalysisState.CANCELLED  # no-op
    assert orch.scheduler.heartbeat(w.id, [WorkerProgress(g.lease_id)]).cancelled == (g.lease_id,)
    assert not orch.scheduler.complete(done(g.lease_id)).accepted
    assert stages(orch, aid)[-1] == Stage.CANCELLED
    other = submit(orch)
    (g2,) = orch.scheduler.lease(w.id, 1)
    orch.scheduler.complete(done(g2.lease_id))
    with pytest.raises(PreconditionFailed):
        orch.service.cancel(other)


def test_heartbeat_events_and_validation(orch: Orchestrator) -> None:
    aid = submit(orch)
    w = orch.scheduler.register_worker("w", 1, ["twin"])
    (g,) = orch.scheduler.lease(w.id, 1)
    orch.scheduler.heartbeat(w.id, [WorkerProgress(g.lease_id, ((Stage.FAST_FORWARDING, "ff", 4.0),))])
    assert orch.service.get(aid)[0].device_hours == 4.0
    with pytest.raises(InvalidArgument, match="not a worker stage"):
        orch.scheduler.heartbeat(w.id, [WorkerProgress(g.lease_id, ((Stage.FINISHED, "", None),))])
    with pytest.raises(InvalidArgument, match="device_hours"):
        orch.scheduler.heartbeat(w.id, [WorkerProgress(g.lease_id, ((Stage.BOOTING, "", -1.0),))])
    with pytest.raises(NotFound, match="not registered"):
        orch.scheduler.heartbeat("w-" + "0" * 16, [])
    with pytest.raises(InvalidArgument, match="verdict"):
        orch.scheduler.complete(Completion(g.lease_id, None, "{}"))
    with pytest.raises(InvalidArgument, match="JSON object"):
        orch.scheduler.complete(Completion(g.lease_id, Verdict.CLEAN, "[1]"))


def test_recover_gives_live_workers_a_full_term(orch: Orchestrator, clock: Clock) -> None:
    submit(orch)
    w = orch.scheduler.register_worker("w", 1, ["twin"])
    orch.scheduler.lease(w.id, 1)
    clock.now += 60  # the orchestrator was down for a while
    assert orch.scheduler.recover() == 1
    assert orch.scheduler.expire_due() == 0
    clock.now += 11
    assert orch.scheduler.expire_due() == 1
