"""What only the shared PostgreSQL store has to get right: several orchestrators on one database.

Each test runs against a real server (tests/conftest.py), in this process:
two ``Orchestrator`` objects on one database stand for two ``honeyphone
serve`` processes (the subprocess versions are in
tests/integration/api/test_farm_postgres.py).  Skipped, saying why, when the
PostgreSQL binaries are missing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from pgcluster import PgServer, running_server

from sandbox.model import Scenario, Stage, Verdict
from sandbox.errors import EnvironmentProblem
from sandbox.orchestrator.errors import LimitExceeded, PreconditionFailed, StoreUnavailable
from sandbox.orchestrator.model import (
    AnalysisRecord,
    AnalysisState,
    ArtifactRecord,
    Completion,
    LeaseRecord,
    LeaseState,
    WorkerProgress,
    new_analysis_id,
)
from sandbox.orchestrator.postgres_store import CHUNK_BYTES, SCHEMA_VERSION, PostgresStore
from sandbox.orchestrator.runtime import Orchestrator, open_store
from sandbox.orchestrator.sqlite_store import SqliteStore
from sandbox.orchestrator.store import Store
from sandbox.settings import FleetSettings

SETTINGS = FleetSettings(lease_seconds=30, max_attempts=3)


def analysis() -> AnalysisRecord:
    return AnalysisRecord(
        id=new_analysis_id(), firmware_sha256="ab" * 32, scenario=Scenario(hours=12.5, seed=7), priority=0,
        labels={}, state=AnalysisState.QUEUED, created_at=1.0, updated_at=1.0, max_attempts=3,
    )


@pytest.fixture
def pair(pg_dsn: str) -> Iterator[tuple[Orchestrator, Orchestrator]]:
    """Two orchestrators on one database, both started (listening, reaping)."""
    a = Orchestrator(PostgresStore(pg_dsn), SETTINGS)
    b = Orchestrator(PostgresStore(pg_dsn), SETTINGS)
    a.start()
    b.start()
    yield a, b
    a.close()
    b.close()


def upload(orch: Orchestrator, data: bytes = b"firmware") -> str:
    return orch.service.upload_firmware("fw.tgz", [data]).sha256


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_survives_reopen(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Queued, running, reports and artifacts are intact after the process goes away."""
    dsn = request.getfixturevalue("pg_dsn") if backend == "postgresql" else ""

    def open_it() -> Store:
        return PostgresStore(dsn) if dsn else SqliteStore(tmp_path)

    store = open_it()
    blob = store.blobs.write([b"artifact-bytes"], 1000)
    with store.transaction() as tx:
        queued = tx.insert_analysis(analysis())
        running = tx.insert_analysis(replace(analysis(), state=AnalysisState.RUNNING, lease_id="l-" + "3" * 16))
        done = tx.insert_analysis(replace(analysis(), state=AnalysisState.SUCCEEDED, verdict=Verdict.CLEAN))
        tx.insert_lease(LeaseRecord("l-" + "3" * 16, running.id, "w-" + "3" * 16, LeaseState.ACTIVE, 9e9, 1, 1.0))
        tx.put_report(done.id, '{"ok": true}')
        tx.put_artifact(ArtifactRecord("l-" + "4" * 16, done.id, "pcap", blob.sha256, blob.size))
        tx.append_event(running.id, Stage.BOOTING, "boot", None, 2.0)
    reopened = open_it()  # the first one is not closed: a killed process does not close either
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


def test_migrations_run_once_when_orchestrators_start_together(pg_dsn: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PostgresStore(pg_dsn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 4
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
        conn.execute("INSERT INTO schema_migrations VALUES (%s, now())", (SCHEMA_VERSION + 1,))
    with pytest.raises(EnvironmentProblem, match="newer than this Honeyphone"):
        PostgresStore(pg_dsn)
    for s in stores:
        s.close()


def test_open_store_picks_the_backend(tmp_path: Path, pg_dsn: str) -> None:
    assert isinstance(open_store(tmp_path, FleetSettings()), SqliteStore)
    pg = open_store(tmp_path, FleetSettings(store=pg_dsn))
    assert isinstance(pg, PostgresStore) and pg.shared
    pg.close()
    with pytest.raises(EnvironmentProblem, match="not supported"):
        open_store(tmp_path, FleetSettings(store="mysql://x@y/z"))


def test_unreachable_database_at_start_says_so() -> None:
    with pytest.raises(EnvironmentProblem, match="unavailable"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout_s=1)


def test_blobs_span_rows_and_are_shared(pair: tuple[Orchestrator, Orchestrator], pg_dsn: str) -> None:
    a, b = pair
    data = bytes(range(256)) * (CHUNK_BYTES * 3 // 256 + 1000)  # three full rows and a partial one
    info = a.store.blobs.write((data[i : i + 65536] for i in range(0, len(data), 65536)), limit=len(data))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert b.store.blobs.exists(info.sha256)
    with b.store.blobs.open(info.sha256) as f:
        assert f.read() == data
    assert b.store.blobs.write([data], limit=len(data)) == info  # stored once
    with pytest.raises(LimitExceeded):
        a.store.blobs.write([data], limit=len(data) - 1)
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT upload) FROM blob_chunks").fetchone()
        assert row == (4, 1)  # no staging rows of the refused or duplicate uploads


def test_two_orchestrators_never_lease_one_analysis_twice(pair: tuple[Orchestrator, Orchestrator]) -> None:
    a, b = pair
    sha = upload(a)
    ids = {a.service.submit(sha, Scenario(hours=1, seed=i), 0, {}).id for i in range(40)}
    workers = [o.scheduler.register_worker(f"w{i}", 4, ["twin"]) for i, o in enumerate((a, b, a, b))]
    grants: dict[str, list[str]] = {}
    lock = threading.Lock()

    def drain(orch: Orchestrator, worker_id: str) -> None:
        while True:
            got = orch.scheduler.lease(worker_id, 4)
            if not got:
                return
            for g in got:
                with lock:
                    grants.setdefault(g.analysis_id, []).append(worker_id)
                orch.scheduler.complete(Completion(g.lease_id, Verdict.CLEAN, '{"ok": 1}'))

    threads = [threading.Thread(target=drain, args=(o, w.id)) for o, w in zip((a, b, a, b), workers, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(grants) == ids and all(len(v) == 1 for v in grants.values())
    for aid in ids:
        rec, _ = b.service.get(aid)
        assert rec.state == AnalysisState.SUCCEEDED and rec.attempts == 1


def test_one_worker_is_never_overbooked_through_two_orchestrators(pair: tuple[Orchestrator, Orchestrator]) -> None:
    a, b = pair
    sha = upload(a)
    for i in range(10):
        a.service.submit(sha, Scenario(hours=1, seed=i), 0, {})
    w = a.scheduler.register_worker("w", 3, ["twin"])
    got: list[int] = []
    threads = [threading.Thread(target=lambda o=o: got.append(len(o.scheduler.lease(w.id, 3)))) for o in (a, b) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(got) == 3


def test_watch_on_b_follows_what_a_writes_and_cancels(pair: tuple[Orchestrator, Orchestrator]) -> None:
    a, b = pair
    sha = upload(a)
    rec = a.service.submit(sha, Scenario(hours=1, seed=1), 0, {})
    seen: list[Stage] = []
    watcher = threading.Thread(target=lambda: seen.extend(e.stage for e in b.service.watch(rec.id, 1, lambda: True)))
    watcher.start()
    w = b.scheduler.register_worker("w", 1, ["twin"])
    (grant,) = b.scheduler.lease(w.id, 1)
    cancelled = a.service.cancel(rec.id)  # through the other orchestrator
    assert cancelled.state == AnalysisState.CANCELLED
    assert b.scheduler.heartbeat(w.id, [WorkerProgress(grant.lease_id)]).cancelled == (grant.lease_id,)
    watcher.join(timeout=30)
    assert not watcher.is_alive()
    assert seen == [Stage.QUEUED, Stage.LEASED, Stage.CANCELLED]
    result = a.scheduler.complete(Completion(grant.lease_id, Verdict.LEAK, "{}"))
    assert not result.accepted and result.state == AnalysisState.CANCELLED


def test_notify_reaches_the_other_bus(pair: tuple[Orchestrator, Orchestrator]) -> None:
    """B's bus hears of A's events by LISTEN, not only by re-reading the table."""
    a, b = pair
    sha = upload(a)
    rec = a.service.submit(sha, Scenario(hours=1, seed=1), 0, {})
    with b.bus.subscribe(rec.id) as sub:
        a.service.cancel(rec.id)
        assert sub.wait(1, timeout=30)  # sequence 2 (cancelled) arrived through NOTIFY


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test alone, since it is stopped and started again."""
    yield from running_server()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_database_down_is_unavailable_then_reconnects(own_server: PgServer, mode: str) -> None:
    dsn = own_server.new_database()
    orch = Orchestrator(PostgresStore(dsn, connect_timeout_s=1), SETTINGS)
    orch.start()
    sha = upload(orch)
    before = orch.service.submit(sha, Scenario(hours=1, seed=1), 0, {})
    own_server.stop(mode)
    with pytest.raises(StoreUnavailable):
        orch.service.get(before.id)
    with pytest.raises(StoreUnavailable):
        orch.service.submit(sha, Scenario(hours=1, seed=2), 0, {})
    with pytest.raises(StoreUnavailable):
        orch.store.blobs.open(sha)
    own_server.start()
    assert orch.service.get(before.id)[0] == before  # the same store object, reconnected
    after = orch.service.submit(sha, Scenario(hours=1, seed=3), 0, {})
    seen: list[int] = []
    with orch.bus.subscribe(after.id) as sub:  # LISTEN is back too
        orch.service.cancel(after.id)
        seen.append(int(sub.wait(1, timeout=30)))
    assert seen == [1]
    page, _ = orch.service.list(None, {}, 10, "")
    assert sorted(r.id for r in page.analyses) == sorted([before.id, after.id])
    orch.close()


def test_an_outage_longer_than_a_lease_term_requeues_nothing(own_server: PgServer) -> None:
    """No worker could heartbeat while the database was away: leases get a full term when it is back."""
    now = [1000.0]
    orch = Orchestrator(PostgresStore(own_server.new_database(), connect_timeout_s=1), SETTINGS, lambda: now[0])
    sha = upload(orch)
    rec = orch.service.submit(sha, Scenario(hours=1, seed=1), 0, {})
    w = orch.scheduler.register_worker("w", 1, ["twin"])
    (grant,) = orch.scheduler.lease(w.id, 1)
    own_server.stop("fast")
    now[0] += 10 * SETTINGS.lease_seconds
    with pytest.raises(StoreUnavailable):
        orch.scheduler.expire_due()
    own_server.start()
    assert orch.scheduler.expire_due() == 0
    assert orch.scheduler.heartbeat(w.id, [WorkerProgress(grant.lease_id)]).expired == ()
    now[0] += 2 * SETTINGS.lease_seconds  # a worker that stays silent still loses the lease
    assert orch.scheduler.expire_due() == 1
    assert orch.service.get(rec.id)[0].state == AnalysisState.QUEUED
    orch.close()


def test_a_retried_submission_through_either_orchestrator_queues_once(pair: tuple[Orchestrator, Orchestrator]) -> None:
    a, b = pair
    sha = upload(a)
    scenario = Scenario(hours=1, seed=5)
    results: list[str] = []
    lock = threading.Lock()

    def submit(orch: Orchestrator) -> None:
        rec = orch.service.submit(sha, scenario, 0, {"team": "red"}, request_id="retry-me")
        with lock:
            results.append(rec.id)

    threads = [threading.Thread(target=submit, args=(o,)) for o in (a, b) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    page, _ = b.service.list(None, {}, 50, "")
    assert [r.id for r in page.analyses] == results[:1]
    with pytest.raises(PreconditionFailed, match="already used"):
        b.service.submit(sha, replace(scenario, seed=6), 0, {"team": "red"}, request_id="retry-me")
    other = b.service.submit(sha, scenario, 0, {"team": "red"}, request_id="another")
    assert other.id != results[0]

