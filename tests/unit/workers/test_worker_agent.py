"""The worker agent against an in-process orchestrator, with runners defined here."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.api.channel import open_channel
from sandbox.api.fleet_client import FleetClient
from sandbox.api.server import RunningServer, Security, start_server
from sandbox.model import (
    AnalysisOutcome,
    AnalysisRequest,
    CancelToken,
    ProgressEvent,
    ProgressFn,
    Scenario,
    Stage,
    Verdict,
)
from sandbox.errors import BundleError, EnvironmentProblem
from sandbox.orchestrator.memory_store import MemoryStore
from sandbox.orchestrator.model import AnalysisState
from sandbox.orchestrator.runtime import Orchestrator
from sandbox.settings import FleetSettings, Settings
from workers.agent import WorkerAgent, WorkerConfig
from workers.capacity import HostCapacity, check_slots

FLEET = FleetSettings(lease_seconds=3, max_attempts=2, server_threads=16)


class Env:
    def __init__(self, tmp: Path) -> None:
        self.orch = Orchestrator(MemoryStore(), FLEET)
        self.orch.start()
        self.server: RunningServer = start_server(self.orch, FLEET, "127.0.0.1:0", Security())
        self.address = f"127.0.0.1:{self.server.port}"
        self.settings = Settings(data_dir=tmp)
        self.sha = self.orch.service.upload_firmware("fw", [b"fw-bytes"]).sha256

    def agent(self, runner: object, slots: int = 2, cleanup: object = lambda ids: None) -> WorkerAgent:
        return WorkerAgent(
            self.settings, WorkerConfig(slots=slots, name="t", profiles=("twin",), poll_s=0.05),
            FleetClient(open_channel(self.address)), runner, cleanup,  # type: ignore[arg-type]
        )

    def submit(self, **labels: str) -> str:
        return self.orch.service.submit(self.sha, Scenario(hours=10), 0, labels).id

    def wait_state(self, aid: str, timeout: float = 10.0) -> AnalysisState:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.orch.service.get(aid)[0].state
            if state.terminal:
                return state
            time.sleep(0.02)
        return self.orch.service.get(aid)[0].state


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.server.stop(0)
    e.orch.close()


def runner_ok(request: AnalysisRequest, progress: ProgressFn, token: CancelToken) -> AnalysisOutcome:
    assert request.bundle_path.read_bytes() == b"fw-bytes"
    progress(ProgressEvent(Stage.BOOTING, "boot"))
    progress(ProgressEvent(Stage.FAST_FORWARDING, "half", 5.0))
    progress(ProgressEvent(Stage.FINISHED, "runner's own terminal event is not forwarded"))
    art = request.bundle_path.parent / f"{request.analysis_id}.pcap"
    art.write_bytes(b"pcap")
    return AnalysisOutcome(request.analysis_id, Verdict.SUSPICIOUS, {"ok": True}, {"pcap": art})


def run_in_thread(agent: WorkerAgent) -> threading.Thread:
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    return t


def test_runs_reports_and_drains(env: Env) -> None:
    cleaned: list[list[str]] = []
    agent = env.agent(runner_ok, cleanup=cleaned.append)
    t = run_in_thread(agent)
    ids = [env.submit() for _ in range(3)]
    assert [env.wait_state(a) for a in ids] == [AnalysisState.SUCCEEDED] * 3
    agent.drain()
    t.join(10)
    assert not t.is_alive() and cleaned == [[]]
    rec, arts = env.orch.service.get(ids[0])
    assert rec.verdict == Verdict.SUSPICIOUS and [a.name for a in arts] == ["pcap"]
    stages = [e.stage for e in env.orch.service.watch(ids[0], 1, lambda: False)]
    assert stages == [Stage.QUEUED, Stage.LEASED, Stage.BOOTING, Stage.FAST_FORWARDING, Stage.FINISHED]


def test_runner_exceptions_become_failures(env: Env) -> None:
    def bad_bundle(request: AnalysisRequest, progress: ProgressFn, token: CancelToken) -> AnalysisOutcome:
        raise BundleError("manifest.json is missing")

    def crashes(request: AnalysisRequest, progress: ProgressFn, token: CancelToken) -> AnalysisOutcome:
        raise RuntimeError("device exploded")

    agent = env.agent(bad_bundle)
    t = run_in_thread(agent)
    aid = env.submit()
    assert env.wait_state(aid) == AnalysisState.FAILED
    assert env.orch.service.get(aid)[0].attempts == 1  # not retryable
    agent.drain()
    t.join(10)
    agent = env.agent(crashes)
    t = run_in_thread(agent)
    aid = env.submit()
    assert env.wait_state(aid) == AnalysisState.FAILED
    rec = env.orch.service.get(aid)[0]
    assert rec.attempts == 2 and rec.error == "RuntimeError: device exploded"  # retried once
    agent.drain()
    t.join(10)


def test_failed_outcomes_are_retried_only_when_the_runner_says_so(env: Env) -> None:
    """The real pipeline returns (does not raise) its failures; ``retryable`` decides a re-lease."""

    def fails(request: AnalysisRequest, progress: ProgressFn, token: CancelToken) -> AnalysisOutcome:
        again = request.labels.get("again") == "1"
        return AnalysisOutcome(request.analysis_id, None, {}, {}, error="boot timed out", retryable=again)

    agent = env.agent(fails)
    t = run_in_thread(agent)
    once, twice = env.submit(again="0"), env.submit(again="1")
    assert env.wait_state(once) == env.wait_state(twice) == AnalysisState.FAILED
    assert env.orch.service.get(once)[0].attempts == 1
    rec = env.orch.service.get(twice)[0]
    assert rec.attempts == 2 and rec.error == "boot timed out"  # re-leased, up to max_attempts
    agent.drain()
    t.join(10)


def test_cancel_reaches_the_runner(env: Env) -> None:
    started = threading.Event()
    stopped = threading.Event()

    def slow(request: AnalysisRequest, progress: ProgressFn, token: CancelToken) -> AnalysisOutcome:
        started.set()
        while not token.cancelled:
            time.sleep(0.01)
        stopped.set()
        return AnalysisOutcome(request.analysis_id, None, {}, {}, error="cancelled")

    agent = env.agent(slow)
    t = run_in_thread(agent)
    aid = env.submit()
    assert started.wait(10)
    env.orch.service.cancel(aid)
    assert stopped.wait(10), "the heartbeat carries the cancellation to the runner's token"
    agent.drain()
    t.join(10)
    assert env.orch.service.get(aid)[0].state == AnalysisState.CANCELLED


def test_refuses_slots_the_host_cannot_hold() -> None:
    settings = Settings()
    small = HostCapacity(memory_bytes=3 * 1024**3, cpus=8)
    check_slots(3, settings, small)
    with pytest.raises(EnvironmentProblem, match="refusing 4 slots: this host allows 3") as info:
        check_slots(4, settings, small)
    assert info.value.fix is not None and "--slots 3" in info.value.fix
    with pytest.raises(EnvironmentProblem, match="allows 2"):
        check_slots(3, settings, HostCapacity(memory_bytes=64 * 1024**3, cpus=1))


def test_inflight_journal_finds_only_dead_workers_analyses(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from workers.inflight import InflightJournal, inflight_root

    settings = Settings(data_dir=tmp_path)
    live = InflightJournal(settings)
    live.start("aaaaaaaaaaaaaaaa")
    # a worker that crashed: its directory and marker remain, its lock is gone with its process
    dead = inflight_root(settings) / "999999-deadbeef"
    dead.mkdir(parents=True)
    (dead / ".lock").touch()
    (dead / "bbbbbbbbbbbbbbbb").touch()
    code = (
        "import sys; from pathlib import Path; from sandbox.settings import Settings;"
        "from workers.inflight import InflightJournal;"
        f"j = InflightJournal(Settings(data_dir=Path({str(tmp_path)!r}))); print(','.join(j.orphans())); j.close()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3])))
    assert out.stdout.strip() == "bbbbbbbbbbbbbbbb"  # never the live worker's analysis
    assert not dead.exists()
    live.close()
    assert list(inflight_root(settings).iterdir()) == []


def test_runner_scratch_is_removed_after_reporting(env: Env, tmp_path: Path) -> None:
    scratch_root = tmp_path / "runs"

    def runner(request: AnalysisRequest, progress: ProgressFn, token: CancelToken) -> AnalysisOutcome:
        work = scratch_root / request.analysis_id
        work.mkdir(parents=True)
        (work / "capture.pcap").write_bytes(b"pcap")
        return AnalysisOutcome(request.analysis_id, Verdict.CLEAN, {"ok": True}, {"pcap": work / "capture.pcap"},
                               workdir=work)

    agent = env.agent(runner)
    t = run_in_thread(agent)
    aid = env.submit()
    assert env.wait_state(aid) == AnalysisState.SUCCEEDED
    agent.drain()
    t.join(10)
    _, arts = env.orch.service.get(aid)
    assert [a.name for a in arts] == ["pcap"]  # uploaded first
    assert not (scratch_root / aid).exists()  # then the scratch copy went
