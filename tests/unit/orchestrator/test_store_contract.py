"""One contract suite, run against every Store backend.

Whatever the backend, the orchestrator's rules depend on these behaviours:
sequence numbers without gaps, FIFO within a priority, atomic transactions,
content-addressed blobs, and (for SQLite and PostgreSQL) surviving a reopen.
The PostgreSQL backend runs against a real server started by the tests
(tests/conftest.py); without the binaries those cases skip, saying why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sandbox.model import Scenario, Stage, Verdict
from sandbox.orchestrator.errors import LimitExceeded, NotFound
from sandbox.orchestrator.memory_store import MemoryStore
from sandbox.orchestrator.model import (
    AnalysisRecord,
    AnalysisState,
    ArtifactRecord,
    FirmwareRecord,
    LeaseRecord,
    LeaseState,
    WorkerRecord,
    new_analysis_id,
)
from sandbox.orchestrator.postgres_store import PostgresStore
from sandbox.orchestrator.sqlite_store import SqliteStore
from sandbox.orchestrator.store import Store

Factory = Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    opened: list[Store] = []
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgresql" else ""

    def factory() -> Store:
        store: Store
        if request.param == "memory":
            store = MemoryStore()
        elif request.param == "sqlite":
            store = SqliteStore(tmp_path / "data")
        else:
            store = PostgresStore(dsn)
        opened.append(store)
        return store

    yield factory
    for s in opened:
        s.close()


def analysis(priority: int = 0, profile: str = "twin", labels: dict[str, str] | None = None) -> AnalysisRecord:
    return AnalysisRecord(
        id=new_analysis_id(), firmware_sha256="ab" * 32, scenario=Scenario(profile=profile, hours=12.5, seed=7),
        priority=priority, labels=labels or {}, state=AnalysisState.QUEUED, created_at=1.0, updated_at=1.0,
        max_attempts=3,
    )


def test_analysis_roundtrip_and_update(make_store: Factory) -> None:
    store = make_store()
    with store.transaction() as tx:
        rec = tx.insert_analysis(analysis(labels={"team": "red"}))
    assert rec.seq > 0
    done = replace(rec, state=AnalysisState.SUCCEEDED, verdict=Verdict.LEAK, stage=Stage.FINISHED, device_hours=3.5)
    with store.transaction() as tx:
        assert tx.get_analysis(rec.id) == rec
        tx.update_analysis(done)
    with store.transaction() as tx:
        assert tx.get_analysis(rec.id) == done
        assert tx.get_analysis("0" * 16) is None


def test_queue_order_priority_then_fifo_and_profiles(make_store: Factory) -> None:
    store = make_store()
    with store.transaction() as tx:
        low = tx.insert_analysis(analysis(priority=-1))
        a = tx.insert_analysis(analysis())
        high = tx.insert_analysis(analysis(priority=5))
        b = tx.insert_analysis(analysis())
        android = tx.insert_analysis(analysis(profile="android", priority=9))
    with store.transaction() as tx:
        assert [r.id for r in tx.queued(("twin",), 10)] == [high.id, a.id, b.id, low.id]
        assert [r.id for r in tx.queued(("twin", "android"), 2)] == [android.id, high.id]
        tx.update_analysis(replace(high, state=AnalysisState.RUNNING))
        assert [r.id for r in tx.queued(("twin",), 10)] == [a.id, b.id, low.id]


def test_list_filters_and_pages_newest_first(make_store: Factory) -> None:
    store = make_store()
    with store.transaction() as tx:
        recs = [tx.insert_analysis(analysis(labels={"n": str(i % 2)})) for i in range(5)]
    with store.transaction() as tx:
        page = tx.list_analyses(state=None, labels={}, before_seq=None, limit=3)
        assert [r.id for r in page] == [r.id for r in reversed(recs)][:3]
        rest = tx.list_analyses(state=None, labels={}, before_seq=page[-1].seq, limit=3)
        assert [r.id for r in rest] == [recs[1].id, recs[0].id]
        odd = tx.list_analyses(state=AnalysisState.QUEUED, labels={"n": "1"}, before_seq=None, limit=10)
        assert [r.id for r in odd] == [recs[3].id, recs[1].id]
        assert tx.list_analyses(state=AnalysisState.FAILED, labels={}, before_seq=None, limit=10) == []


def test_event_sequences_are_per_analysis_and_gapless(make_store: Factory) -> None:
    store = make_store()
    with store.transaction() as tx:
        a, b = tx.insert_analysis(analysis()), tx.insert_analysis(analysis())
        for i in range(3):
            tx.append_event(a.id, Stage.FAST_FORWARDING, f"a{i}", float(i), 10.0 + i)
        tx.append_event(b.id, Stage.QUEUED, "b0", None, 1.0)
    with store.transaction() as tx:
        assert [e.sequence for e in tx.events(a.id, 0, 100)] == [1, 2, 3]
        assert [e.message for e in tx.events(a.id, 2, 100)] == ["a1", "a2"]
        assert [e.message for e in tx.events(a.id, 1, 2)] == ["a0", "a1"]
        assert tx.events(a.id, 4, 100) == []
        ev = tx.events(b.id, 1, 10)[0]
        assert (ev.sequence, ev.stage, ev.device_hours, ev.time) == (1, Stage.QUEUED, None, 1.0)


def test_transaction_rolls_back_on_error(make_store: Factory) -> None:
    store = make_store()
    with store.transaction() as tx:
        rec = tx.insert_analysis(analysis())
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.update_analysis(replace(rec, state=AnalysisState.FAILED))
        tx.append_event(rec.id, Stage.FAILED, "x", None, 1.0)
        tx.insert_analysis(analysis())
        tx.put_report(rec.id, "{}")
        raise RuntimeError("boom")
    with store.transaction() as tx:
        assert tx.get_analysis(rec.id) == rec
        assert tx.events(rec.id, 1, 10) == []
        assert tx.get_report(rec.id) is None
        assert len(tx.list_analyses(state=None, labels={}, before_seq=None, limit=10)) == 1


def test_leases_workers_firmware_reports_artifacts(make_store: Factory) -> None:
    store = make_store()
    with store.transaction() as tx:
        rec = tx.insert_analysis(analysis())
        tx.put_worker(WorkerRecord("w-" + "1" * 16, "box", 2, ("twin", "android"), 1.0, 2.0))
        tx.insert_lease(LeaseRecord("l-" + "1" * 16, rec.id, "w-" + "1" * 16, LeaseState.ACTIVE, 50.0, 1, 1.0))
        tx.insert_lease(LeaseRecord("l-" + "2" * 16, rec.id, "w-" + "1" * 16, LeaseState.ACTIVE, 150.0, 1, 2.0))
        tx.put_firmware(FirmwareRecord("cd" * 32, 10, "fw.tgz", 1.0))
        tx.put_firmware(FirmwareRecord("cd" * 32, 10, "other-name.tgz", 2.0))  # first one wins
        tx.put_report(rec.id, '{"a": 1}')
        tx.put_artifact(ArtifactRecord("l-" + "1" * 16, rec.id, "pcap", "ee" * 32, 5))
        tx.put_artifact(ArtifactRecord("l-" + "1" * 16, rec.id, "flows", "ff" * 32, 6))
    with store.transaction() as tx:
        w = tx.get_worker("w-" + "1" * 16)
        assert w is not None and w.profiles == ("twin", "android")
        assert [x.id for x in tx.leases(state=LeaseState.ACTIVE, deadline_before=100.0)] == ["l-" + "1" * 16]
        lease = tx.get_lease("l-" + "2" * 16)
        assert lease is not None
        tx.update_lease(replace(lease, state=LeaseState.EXPIRED))
        assert [x.id for x in tx.leases(state=LeaseState.EXPIRED, worker_id="w-" + "1" * 16)] == ["l-" + "2" * 16]
        fw = tx.get_firmware("cd" * 32)
        assert fw is not None and fw.filename == "fw.tgz"
        assert tx.get_report(rec.id) == '{"a": 1}'
        assert [a.name for a in tx.artifacts("l-" + "1" * 16)] == ["flows", "pcap"]
        assert tx.artifacts("l-" + "2" * 16) == []


def test_blobs_are_content_addressed_and_bounded(make_store: Factory) -> None:
    store = make_store()
    data = b"x" * 100_000
    info = store.blobs.write([data[:40_000], data[40_000:]], limit=200_000)
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    assert store.blobs.write([data], limit=200_000) == info
    with store.blobs.open(info.sha256) as f:
        assert f.read() == data
    with pytest.raises(LimitExceeded):
        store.blobs.write([b"y" * 10, b"y" * 10], limit=15)
    assert not store.blobs.exists(hashlib.sha256(b"y" * 20).hexdigest())
    with pytest.raises(NotFound):
        store.blobs.open("00" * 32)


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    """Queued, running, reports and artifacts are intact after the process goes away."""
    store = SqliteStore(tmp_path)
    blob = store.blobs.write([b"artifact-bytes"], 1000)
    with store.transaction() as tx:
        queued = tx.insert_analysis(analysis())
        running = tx.insert_analysis(replace(analysis(), state=AnalysisState.RUNNING, lease_id="l-" + "3" * 16))
        done = tx.insert_analysis(replace(analysis(), state=AnalysisState.SUCCEEDED, verdict=Verdict.CLEAN))
        tx.insert_lease(LeaseRecord("l-" + "3" * 16, running.id, "w-" + "3" * 16, LeaseState.ACTIVE, 9e9, 1, 1.0))
        tx.put_report(done.id, '{"ok": true}')
        tx.put_artifact(ArtifactRecord("l-" + "4" * 16, done.id, "pcap", blob.sha256, blob.size))
        tx.append_event(running.id, Stage.BOOTING, "boot", None, 2.0)
    # no close(): a killed process does not close either
    reopened = SqliteStore(tmp_path)
    with reopened.transaction() as tx:
        assert tx.get_analysis(queued.id) == queued
        assert tx.get_analysis(running.id) == running
        assert tx.get_report(done.id) == '{"ok": true}'
        assert [lease.id for lease in tx.leases(state=LeaseState.ACTIVE)] == ["l-" + "3" * 16]
        assert [a.sha256 for a in tx.artifacts("l-" + "4" * 16)] == [blob.sha256]
        assert [e.message for e in tx.events(running.id, 1, 10)] == ["boot"]
        assert [r.id for r in tx.queued(("twin",), 10)] == [queued.id]
        nxt = tx.insert_analysis(analysis())
    assert nxt.seq > done.seq
    with reopened.blobs.open(blob.sha256) as f:
        assert f.read() == b"artifact-bytes"
    reopened.close()
    store.close()


def test_submissions_remember_their_idempotency_key(make_store: Factory) -> None:
    store = make_store()
    with store.transaction() as tx:
        rec = tx.insert_analysis(analysis())
        assert tx.get_submission("req-1") is None
        tx.put_submission("req-1", rec.id)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put_submission("req-2", rec.id)
        raise RuntimeError("boom")
    with store.transaction() as tx:
        assert tx.get_submission("req-1") == rec.id
        assert tx.get_submission("req-2") is None
