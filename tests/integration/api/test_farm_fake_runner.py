"""A real farm: ``honeyphone serve`` plus two ``honeyphone worker`` processes with the fake runner.

Checks that a batch completes across workers, that a SIGKILLed worker's
analysis is re-leased and completes elsewhere with exactly one report, that a
SIGKILLed and restarted orchestrator loses nothing, and that SIGTERM drains.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from farm_harness import free_port, serve, stop, wait_ready, worker

from sandbox.api.client import SandboxClient
from sandbox.model import Scenario, Stage, Verdict
from sandbox.orchestrator.model import AnalysisState

TERMINAL = {AnalysisState.SUCCEEDED, AnalysisState.FAILED, AnalysisState.CANCELLED}


class Farm:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.address = f"127.0.0.1:{free_port()}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = tmp / "farm.log"

    def serve(self) -> subprocess.Popen[bytes]:
        p = serve(self.address, self.tmp / "orch", self.log)
        self.procs.append(p)
        return p

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        p = worker(self.address, self.tmp / name, self.log, name)
        self.procs.append(p)
        return p

    def submit(self, client: SandboxClient, n: int, seconds: float) -> list[str]:
        bundle = self.tmp / "bundle.tgz"
        bundle.write_bytes(b"\x1f\x8b fake bundle")
        with bundle.open("rb") as f:
            sha, _ = client.upload_firmware(f, "bundle.tgz")
        return [client.submit(sha, Scenario(hours=24, seed=i), labels={"fake.seconds": str(seconds)}).id for i in range(n)]

    def wait_all(self, client: SandboxClient, ids: list[str], timeout: float = 90.0) -> dict[str, AnalysisState]:
        deadline = time.monotonic() + timeout
        while True:
            states = {aid: client.get(aid)[0].state for aid in ids}
            if all(s in TERMINAL for s in states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(0.2)

    def close(self) -> None:
        for p in self.procs:
            stop(p, signal.SIGKILL, timeout=10)


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    f = Farm(tmp_path)
    yield f
    f.close()
    if any(p.returncode not in (0, -9) for p in f.procs):
        print(f.log.read_text()[-5000:])


def running_on(client: SandboxClient, ids: list[str], timeout: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recs = [client.get(aid)[0] for aid in ids]
        found = {r.id: r.worker_id or "" for r in recs if r.state == AnalysisState.RUNNING and r.stage == Stage.FAST_FORWARDING}
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("nothing started running")


def test_twelve_analyses_on_two_workers(farm: Farm) -> None:
    farm.serve()
    client = wait_ready(farm.address)
    farm.worker("alpha")
    farm.worker("beta")
    ids = farm.submit(client, 12, seconds=0.4)
    states = farm.wait_all(client, ids)
    assert set(states.values()) == {AnalysisState.SUCCEEDED}, states
    workers = {client.get(aid)[0].worker_id for aid in ids}
    assert len(workers) == 2, "both workers took work"
    for i, aid in enumerate(ids):
        verdict, doc = client.report(aid)
        assert verdict == (Verdict.CLEAN, Verdict.LEAK, Verdict.SUSPICIOUS)[i % 3] and aid in doc
        assert [a.name for a in client.get(aid)[1]] == ["flows.json", "report.html"]
        events = list(client.watch(aid))
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert events[-1].stage == Stage.FINISHED


def test_killed_worker_work_is_released_and_finished_elsewhere(farm: Farm) -> None:
    farm.serve()
    client = wait_ready(farm.address)
    alpha = farm.worker("alpha")
    ids = farm.submit(client, 2, seconds=4.0)
    first = running_on(client, ids)
    beta = farm.worker("beta")
    alpha.send_signal(signal.SIGKILL)
    alpha.wait(10)
    states = farm.wait_all(client, ids)
    assert set(states.values()) == {AnalysisState.SUCCEEDED}, states
    for aid in first:
        rec, _ = client.get(aid)
        assert rec.attempts == 2 and rec.worker_id not in first.values()
        stages = [e.stage for e in client.watch(aid)]
        assert stages.count(Stage.FINISHED) == 1 and stages.count(Stage.LEASED) == 2
        assert client.report(aid)[0] is not None
    stop(beta)


def test_orchestrator_killed_and_restarted_loses_nothing(farm: Farm) -> None:
    orch = farm.serve()
    client = wait_ready(farm.address)
    farm.worker("alpha")
    farm.worker("beta")
    ids = farm.submit(client, 8, seconds=1.5)
    running_on(client, ids)
    orch.send_signal(signal.SIGKILL)
    orch.wait(10)
    time.sleep(1.0)
    farm.serve()
    client = wait_ready(farm.address)
    states = farm.wait_all(client, ids)
    assert set(states.values()) == {AnalysisState.SUCCEEDED}, states
    for aid in ids:
        stages = [e.stage for e in client.watch(aid)]
        assert stages.count(Stage.FINISHED) == 1 and stages[-1] == Stage.FINISHED
    listed, _ = client.list(page_size=50)
    assert sorted(r.id for r in listed) == sorted(ids)


def test_sigterm_drains_running_work(farm: Farm) -> None:
    farm.serve()
    client = wait_ready(farm.address)
    alpha = farm.worker("alpha")
    ids = farm.submit(client, 1, seconds=1.5)
    running_on(client, ids)
    assert stop(alpha, signal.SIGTERM) == 0
    assert client.get(ids[0])[0].state == AnalysisState.SUCCEEDED
