"""Two ``honeyphone serve --store postgresql://…`` processes on one real PostgreSQL, with fake-runner workers.

Each worker talks to one orchestrator (alpha to A, beta to B); clients submit
on one and watch on the other.  The faults: SIGKILL of orchestrator A in the
middle of a campaign (every analysis still finishes exactly once, with one
report, and a watch through A resumes on B), and a PostgreSQL restart in the
middle of a campaign (both orchestrators answer UNAVAILABLE meanwhile, stay
up, reconnect, and nothing is lost or done twice).  "Exactly once" is read
from the database itself: one FINISHED event, one report and one accepted
completion per analysis.

The server belongs to this module (it is restarted); it runs on loopback
only.  Skipped, saying why, when the PostgreSQL binaries are missing.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from farm_harness import free_port, honeyphone, stop, wait_ready, worker
from pgcluster import PgServer, running_server

from sandbox.api.channel import open_channel
from sandbox.api.client import SandboxClient
from sandbox.model import Scenario, Stage
from sandbox.orchestrator.model import AnalysisState, EventRecord

TERMINAL = {AnalysisState.SUCCEEDED, AnalysisState.FAILED, AnalysisState.CANCELLED}


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    yield from running_server()


class PgFarm:
    def __init__(self, tmp: Path, pg: PgServer, lease_seconds: int) -> None:
        if pg.proc is None:
            pg.start()
        self.tmp = tmp
        self.pg = pg
        self.dsn = pg.new_database()
        self.lease_seconds = lease_seconds
        self.log = tmp / "farm.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.addresses: dict[str, str] = {}

    def serve(self, name: str) -> subprocess.Popen[bytes]:
        address = self.addresses.setdefault(name, f"127.0.0.1:{free_port()}")
        p = honeyphone(
            "serve", "--listen", address, "--lease-seconds", str(self.lease_seconds), "--store", self.dsn,
            data=self.tmp / f"orch-{name}", log=self.log,
        )
        self.procs.append(p)
        return p

    def client(self, name: str) -> SandboxClient:
        return wait_ready(self.addresses[name])

    def worker(self, name: str, orchestrator: str) -> subprocess.Popen[bytes]:
        p = worker(self.addresses[orchestrator], self.tmp / name, self.log, name)
        self.procs.append(p)
        return p

    def submit(self, client: SandboxClient, n: int, seconds: float) -> list[str]:
        bundle = self.tmp / "bundle.tgz"
        bundle.write_bytes(b"\x1f\x8b fake bundle")
        with bundle.open("rb") as f:
            sha, _ = client.upload_firmware(f, "bundle.tgz")
        return [client.submit(sha, Scenario(hours=24, seed=i), labels={"fake.seconds": str(seconds)}).id for i in range(n)]

    def wait_all(self, client: SandboxClient, ids: list[str], timeout: float = 120.0) -> dict[str, AnalysisState]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = {aid: client.get(aid)[0].state for aid in ids}
            except grpc.RpcError as exc:  # the database may still be coming back
                if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            if all(s in TERMINAL for s in states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(0.2)

    def once_each(self, ids: list[str]) -> dict[str, tuple[int, int, int]]:
        """Per analysis, from the database: (FINISHED events, reports, accepted completions)."""
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT a.id,"
                " (SELECT count(*) FROM events e WHERE e.analysis_id = a.id AND e.stage = %s),"
                " (SELECT count(*) FROM reports r WHERE r.analysis_id = a.id),"
                " (SELECT count(*) FROM leases l WHERE l.analysis_id = a.id AND l.state = 'completed')"
                " FROM analyses a WHERE a.id = ANY(%s)",
                (Stage.FINISHED.value, ids),
            ).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def close(self) -> None:
        for p in self.procs:
            stop(p, signal.SIGKILL, timeout=10)


@pytest.fixture
def make_farm(tmp_path: Path, pg: PgServer) -> Iterator[Callable[[int], PgFarm]]:
    farms: list[PgFarm] = []

    def make(lease_seconds: int) -> PgFarm:
        f = PgFarm(tmp_path, pg, lease_seconds)
        farms.append(f)
        return f

    yield make
    for f in farms:
        f.close()
        if any(p.returncode not in (0, -9) for p in f.procs):
            print(f.log.read_text()[-5000:])


def running(client: SandboxClient, ids: list[str], workers: int, timeout: float = 30.0) -> None:
    """Wait until analyses are fast-forwarding on ``workers`` different workers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recs = [client.get(aid)[0] for aid in ids]
        if len({r.worker_id for r in recs if r.stage == Stage.FAST_FORWARDING}) >= workers:
            return
        time.sleep(0.1)
    raise AssertionError(f"not running on {workers} workers")


def health_becomes(address: str, status: int, timeout: float = 30.0) -> None:
    stub = health_pb2_grpc.HealthStub(open_channel(address))
    deadline = time.monotonic() + timeout
    while stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status != status:
        assert time.monotonic() < deadline, f"{address} health never became {status}"
        time.sleep(0.1)


def contiguous_to_the_end(events: list[EventRecord]) -> bool:
    return [e.sequence for e in events] == list(range(1, len(events) + 1)) and events[-1].stage == Stage.FINISHED


def test_submit_on_one_watch_on_the_other_workers_on_both(make_farm: Callable[[int], PgFarm]) -> None:
    farm: PgFarm = make_farm(10)
    farm.serve("a")
    farm.serve("b")
    a, b = farm.client("a"), farm.client("b")
    farm.worker("alpha", "a")
    farm.worker("beta", "b")
    ids = farm.submit(a, 10, seconds=0.5)
    watched = list(b.watch(ids[0]))  # live, through B, while A took the submission
    assert contiguous_to_the_end(watched)
    states = farm.wait_all(b, ids)
    assert set(states.values()) == {AnalysisState.SUCCEEDED}, states
    assert len({b.get(aid)[0].worker_id for aid in ids}) == 2, "workers of both orchestrators took work"
    for aid in ids:
        assert contiguous_to_the_end(list(a.watch(aid)))
        rec, arts = b.get(aid)
        assert [x.name for x in arts] == ["flows.json", "report.html"] and rec.attempts == 1
    out = farm.tmp / "report.html"  # uploaded through one orchestrator, downloaded through either
    assert a.download_artifact(ids[1], "report.html", out) == b.download_artifact(ids[1], "report.html", out) > 0
    assert set(farm.once_each(ids).values()) == {(1, 1, 1)}


def test_sigkill_one_orchestrator_mid_campaign(make_farm: Callable[[int], PgFarm]) -> None:
    farm: PgFarm = make_farm(2)
    orch_a = farm.serve("a")
    farm.serve("b")
    a, b = farm.client("a"), farm.client("b")
    farm.worker("alpha", "a")
    farm.worker("beta", "b")
    ids = farm.submit(a, 8, seconds=3.0)
    watched: dict[str, list[EventRecord]] = {aid: [] for aid in ids[:3]}
    resumed: dict[str, bool] = {}

    def watch_through_a_then_b(aid: str) -> None:
        got = watched[aid]
        try:
            for ev in a.watch(aid, reconnect_s=-1):  # give up at the first failure
                got.append(ev)
            resumed[aid] = False
        except grpc.RpcError:
            nxt = got[-1].sequence + 1 if got else 1
            got.extend(b.watch(aid, from_sequence=nxt))
            resumed[aid] = True

    threads = [threading.Thread(target=watch_through_a_then_b, args=(aid,)) for aid in watched]
    for t in threads:
        t.start()
    running(a, ids, workers=2)  # alpha, whose orchestrator dies, holds leases
    orch_a.send_signal(signal.SIGKILL)
    orch_a.wait(10)
    states = farm.wait_all(b, ids)
    for t in threads:
        t.join(60)
    assert set(states.values()) == {AnalysisState.SUCCEEDED}, states
    assert set(farm.once_each(ids).values()) == {(1, 1, 1)}, farm.once_each(ids)
    for aid, events in watched.items():
        assert contiguous_to_the_end(events), (aid, [(e.sequence, e.stage) for e in events])
    assert any(resumed.values()), "a watch was cut by the kill and resumed on B"
    for aid in ids:
        assert b.report(aid)[0] is not None
    assert any(b.get(aid)[0].attempts == 2 for aid in ids), "alpha's leases expired and ran again on beta"


def test_postgres_restart_mid_campaign(make_farm: Callable[[int], PgFarm]) -> None:
    # A lease term far beyond the outage: no lease may expire while the
    # database is away, so a second run of any analysis would be a bug.
    farm: PgFarm = make_farm(30)
    orch_a = farm.serve("a")
    orch_b = farm.serve("b")
    a, b = farm.client("a"), farm.client("b")
    farm.worker("alpha", "a")
    farm.worker("beta", "b")
    ids = farm.submit(a, 10, seconds=3.0)
    running(b, ids, workers=2)
    farm.pg.stop("immediate")  # like a crash: WAL replay when it starts again
    for client in (a, b):
        with pytest.raises(grpc.RpcError) as err:
            client.get(ids[0])
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
    for name in ("a", "b"):  # readiness: their reapers notice within a second
        health_becomes(farm.addresses[name], health_pb2.HealthCheckResponse.NOT_SERVING)
    assert orch_a.poll() is None and orch_b.poll() is None
    farm.pg.start()
    for name in ("a", "b"):
        health_becomes(farm.addresses[name], health_pb2.HealthCheckResponse.SERVING)
    states = farm.wait_all(a, ids)
    assert set(states.values()) == {AnalysisState.SUCCEEDED}, states
    assert set(farm.once_each(ids).values()) == {(1, 1, 1)}, farm.once_each(ids)
    for aid in ids:
        rec, _ = b.get(aid)
        assert rec.attempts == 1, (aid, rec.attempts)
        assert contiguous_to_the_end(list(b.watch(aid)))
    listed, _ = b.list(page_size=50)
    assert sorted(r.id for r in listed) == sorted(ids)
    assert orch_a.poll() is None and orch_b.poll() is None
