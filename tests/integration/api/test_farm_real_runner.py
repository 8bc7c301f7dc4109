"""The farm with the REAL runner: ``honeyphone serve`` plus ``honeyphone worker``
subprocesses that run the analysis pipeline on the local Docker engine (twin,
fakenet, adb, iptables, tcpdump).  Nothing is faked.

* twelve analyses of the example firmware on two workers x two slots all
  complete with the right verdict and one report each, and leave nothing;
* a worker SIGKILLed mid-analysis: the analysis is re-leased, the other worker
  clears the dead attempt's network/containers/rules and completes it once;
* a worker SIGKILLed mid-analysis and restarted on its data dir removes the
  leftovers of the analysis it had in flight (containers, networks, rules);
* the command line against ``serve --local-worker 1``: ``submit --wait``
  exits 1 on a leak, ``report`` prints the JSON, ``artifacts`` downloads
  every artifact (syscall traces included).

Every worker gets its own data dir and its own adb server port; every
resource is cleaned up by analysis id, never host-wide.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import psutil
import pytest
from farm_harness import REPO, free_port, honeyphone, serve, stop, wait_ready, worker

from sandbox.api.client import SandboxClient
from sandbox.bundle.pack import pack_bundle
from sandbox.containers.cleanup import cleanup
from sandbox.model import Scenario, Stage, Verdict
from sandbox.device.adb_server import AdbServer
from sandbox.network import containment
from sandbox.orchestrator.model import AnalysisState
from sandbox.settings import Settings

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples" / "firmware"
TERMINAL = {AnalysisState.SUCCEEDED, AnalysisState.FAILED, AnalysisState.CANCELLED}
SETTINGS = Settings()
CANARIES = 4  # contacts, SMS and calls each: planting stays fast


class RealFarm:
    def __init__(self, tmp: Path, engine: docker.DockerClient) -> None:
        self.tmp = tmp
        self.engine = engine
        self.address = f"127.0.0.1:{free_port()}"
        self.log = tmp / "farm.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.adb_ports: dict[str, int] = {}
        self.analyses: list[str] = []
        self._firmware: dict[str, str] = {}

    def serve(self, lease_seconds: int) -> subprocess.Popen[bytes]:
        p = serve(self.address, self.tmp / "orch", self.log, lease_seconds=lease_seconds)
        self.procs.append(p)
        return p

    def serve_with_local_worker(self, slots: int) -> subprocess.Popen[bytes]:
        port = self.adb_ports.setdefault("local", free_port())
        p = honeyphone("serve", "--listen", self.address, "--local-worker", str(slots), data=self.tmp / "local",
                       log=self.log, env_extra={"ANDROID_ADB_SERVER_PORT": str(port)})
        self.procs.append(p)
        return p

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A client command against this farm, as a user types it."""
        return subprocess.run([sys.executable, "-m", "sandbox.cli", *args, "--server", self.address],
                              cwd=REPO, capture_output=True, text=True, timeout=timeout)

    def worker(self, name: str, slots: int) -> subprocess.Popen[bytes]:
        """A real-runner worker; restarting ``name`` reuses its data dir and adb port."""
        port = self.adb_ports.setdefault(name, free_port())
        p = worker(self.address, self.tmp / name, self.log, name, slots, runner=None, adb_port=port)
        self.procs.append(p)
        return p

    def submit(self, client: SandboxClient, firmware: str, hours: float, seed: int) -> str:
        if firmware not in self._firmware:
            archive = self.tmp / f"{firmware}.tar.gz"
            with archive.open("wb") as out:
                pack_bundle(EXAMPLES / firmware, out)
            with archive.open("rb") as f:
                self._firmware[firmware] = client.upload_firmware(f, archive.name)[0]
        scenario = Scenario(hours=hours, seed=seed, contacts=CANARIES, sms=CANARIES, calls=CANARIES)
        aid = client.submit(self._firmware[firmware], scenario, labels={"test.firmware": firmware}).id
        self.analyses.append(aid)
        return aid

    def leftovers(self, aid: str) -> dict[str, list[str]]:
        label = {"label": [f"{SETTINGS.label_analysis}={aid}"]}
        bridge = f"hp{aid[:12]}"
        return {
            "containers": [str(c.name) for c in self.engine.containers.list(all=True, ignore_removed=True, filters=label)],
            "networks": [str(n.name) for n in self.engine.networks.list(filters=label)],
            "rules": [r.describe() for r in containment.list_rules(aid)],
            "tcpdump": [str(p.pid) for p in _our_processes(self.procs) if bridge in _cmdline(p)],
        }

    def close(self) -> None:
        for p in self.procs:
            stop(p, signal.SIGKILL, timeout=10)
        # What our workers started and left running (a SIGKILLed worker's
        # tcpdump), found by session: each worker is the leader of its own.
        for child in _our_processes(self.procs):
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        for port in self.adb_ports.values():
            AdbServer(SETTINGS.adb_path, port).kill()
        for aid in self.analyses:  # by id only: other people's analyses stay
            cleanup(self.engine, SETTINGS, aid, extra=(containment.remove_rules,))


def _cmdline(proc: psutil.Process) -> str:
    """A live process' command line; "" for one that is gone or a zombie (dead, not yet reaped)."""
    try:
        return "" if proc.status() == psutil.STATUS_ZOMBIE else " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _our_processes(procs: list[subprocess.Popen[bytes]]) -> list[psutil.Process]:
    sessions = {p.pid for p in procs}
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) in sessions and proc.pid not in sessions:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    return found


@pytest.fixture
def farm(tmp_path: Path, docker_engine: docker.DockerClient, built_images: None) -> Iterator[RealFarm]:
    f = RealFarm(tmp_path, docker_engine)
    try:
        yield f
    finally:
        f.close()
        if f.log.exists():
            print(f.log.read_text()[-8000:])


def wait_all(client: SandboxClient, ids: list[str], timeout: float) -> dict[str, AnalysisState]:
    deadline = time.monotonic() + timeout
    while True:
        states = {aid: client.get(aid)[0].state for aid in ids}
        if all(s in TERMINAL for s in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(1.0)


def wait_for(what: str, check: object, timeout: float) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def assert_one_report(client: SandboxClient, aid: str, verdict: Verdict) -> None:
    rec, artifacts = client.get(aid)
    assert rec.state == AnalysisState.SUCCEEDED and rec.verdict == verdict, (rec.state, rec.verdict, rec.error)
    got, doc = client.report(aid)
    report = json.loads(doc)
    assert got == verdict and report["verdict"] == verdict.value and report["analysis_id"] == aid
    assert (report["findings"] == []) == (verdict == Verdict.CLEAN)
    names = [a.name for a in artifacts]
    assert len(names) == len(set(names)), names
    assert {"report.json", "pcap", "canaries"} <= set(names), names
    assert any(n.startswith("syscalls.") and n.endswith(".strace") for n in names), names
    stages = [e.stage for e in client.watch(aid)]
    assert stages.count(Stage.FINISHED) == 1 and stages[-1] == Stage.FINISHED, stages


def test_twelve_real_analyses_on_two_workers(farm: RealFarm) -> None:
    farm.serve(lease_seconds=15)
    client = wait_ready(farm.address)
    farm.worker("alpha", slots=2)
    farm.worker("beta", slots=2)
    # The kitchen sink leaks at device hours 1-5; 24 hours as in the e2e test.
    plan = [("benign-updater", 2, Verdict.CLEAN), ("adups-5.4", 2, Verdict.CLEAN),
            ("leaky-kitchen-sink", 24, Verdict.LEAK)] * 4
    expected = {farm.submit(client, fw, hours, seed): verdict for seed, (fw, hours, verdict) in enumerate(plan)}
    states = wait_all(client, list(expected), timeout=1500)
    assert set(states.values()) == {AnalysisState.SUCCEEDED}, {a: client.get(a)[0].error for a in states}
    for aid, verdict in expected.items():
        assert_one_report(client, aid, verdict)
        assert farm.leftovers(aid) == {"containers": [], "networks": [], "rules": [], "tcpdump": []}
    assert len({client.get(aid)[0].worker_id for aid in expected}) == 2, "both workers took work"


def _kill_mid_analysis(farm: RealFarm, client: SandboxClient, victim: subprocess.Popen[bytes], aid: str) -> None:
    """SIGKILL ``victim`` while the analysis fast-forwards; its resources must still be there."""
    wait_for("the analysis to fast-forward", lambda: client.get(aid)[0].stage == Stage.FAST_FORWARDING, 300)
    before = farm.leftovers(aid)
    assert before["containers"] and before["networks"] and before["rules"], before
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)


def test_killed_worker_real_analysis_is_released_and_completed_once(farm: RealFarm) -> None:
    farm.serve(lease_seconds=5)
    client = wait_ready(farm.address)
    alpha = farm.worker("alpha", slots=1)
    # Adups 5.3 leaks at device hour 72; 80 hours are 10 s of fast-forward (time
    # to kill) and leave ~1 s of real time after the leak for the upload.
    aid = farm.submit(client, "adups-5.3", 80, seed=1)
    wait_for("alpha to take the analysis", lambda: client.get(aid)[0].worker_id is not None, 60)
    alpha_id = client.get(aid)[0].worker_id
    _kill_mid_analysis(farm, client, alpha, aid)
    farm.worker("beta", slots=1)  # another worker, another data dir and adb server
    states = wait_all(client, [aid], timeout=600)
    rec = client.get(aid)[0]
    assert states[aid] == AnalysisState.SUCCEEDED, (rec.state, rec.error)
    assert rec.attempts == 2 and rec.worker_id not in (None, alpha_id)
    assert [e.stage for e in client.watch(aid)].count(Stage.LEASED) == 2
    assert_one_report(client, aid, Verdict.LEAK)
    wait_for("the dead attempt's leftovers to go",
             lambda: farm.leftovers(aid) == {"containers": [], "networks": [], "rules": [], "tcpdump": []}, 30)


def test_restarted_worker_removes_leftovers_of_its_crash(farm: RealFarm) -> None:
    farm.serve(lease_seconds=30)
    client = wait_ready(farm.address)
    alpha = farm.worker("alpha", slots=1)
    aid = farm.submit(client, "adups-5.3", 80, seed=2)
    _kill_mid_analysis(farm, client, alpha, aid)
    client.cancel(aid)  # nobody re-runs it: only the restarted worker's crash cleanup can remove the leftovers
    assert client.get(aid)[0].state == AnalysisState.CANCELLED
    farm.worker("alpha", slots=1)  # same data dir: it adopts the dead process' in-flight journal
    wait_for("the restarted worker to remove the leftovers",
             lambda: farm.leftovers(aid) == {"containers": [], "networks": [], "rules": [], "tcpdump": []}, 60)


def test_cli_submit_wait_report_and_artifacts_against_a_local_worker(farm: RealFarm, tmp_path: Path) -> None:
    farm.serve_with_local_worker(1)
    wait_ready(farm.address)
    done = farm.cli("submit", str(EXAMPLES / "adups-5.3"), "--wait", "--hours", "80",
                    "--contacts", "4", "--sms", "4", "--calls", "4")
    aid = done.stdout.split()[0] if done.stdout.split() else ""
    if aid:
        farm.analyses.append(aid)
    assert done.returncode == 1, f"{done.stdout}\n{done.stderr}"  # 1: leak
    assert done.stdout.splitlines()[-1] == f"{aid} leak"

    report = farm.cli("report", aid)
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert doc["analysis_id"] == aid and doc["verdict"] == "leak" and doc["findings"]
    assert {f["destination"]["host"] for f in doc["findings"]} == {"bigdata.adups.com"}

    out = tmp_path / "artifacts"
    arts = farm.cli("artifacts", aid, "--out", str(out))
    assert arts.returncode == 0, arts.stderr
    files = {p.name: p for p in out.iterdir()}
    assert {"report.json", "pcap", "canaries", "flows", "syscalls.sysoper.strace"} <= set(files), sorted(files)
    assert json.loads(files["report.json"].read_text())["verdict"] == "leak"
    assert files["pcap"].read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")  # a pcap
    assert "execve(" in files["syscalls.sysoper.strace"].read_text()
    assert farm.leftovers(aid) == {"containers": [], "networks": [], "rules": [], "tcpdump": []}
