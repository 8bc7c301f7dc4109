"""Helpers for the fault-injection and hostile-firmware tests.

``AnalysisRun`` runs ``run_analysis`` in a thread and exposes its progress,
so a test can act at a stage (the first fast-forward event) and then wait
for the outcome.  ``leftovers`` checks that nothing of an analysis remains
on the host: containers, networks, firewall rules, the bridge, a tcpdump,
temp files.  A uniquely named module rather than conftest.py, so
``from faultlab import ...`` is never ambiguous.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import dpkt

from sandbox.model import AnalysisOutcome, AnalysisRequest, CancelToken, ProgressEvent, Scenario, Stage
from sandbox.core.pipeline import run_analysis
from sandbox.device.twin import new_analysis_id
from sandbox.network.containment import list_rules
from sandbox.settings import Settings

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[2] / "examples" / "firmware"


def bridge_of(aid: str) -> str:
    return f"hp{aid[:12]}"


@dataclass
class AnalysisRun:
    settings: Settings
    client: docker.DockerClient
    bundle: Path
    out: Path
    hours: float = 4.0
    aid: str = field(default_factory=new_analysis_id)
    events: list[ProgressEvent] = field(default_factory=list)
    event_times: list[float] = field(default_factory=list)  # time.monotonic() of each event
    outcome: AnalysisOutcome | None = None
    crash: BaseException | None = None
    fast_forwarding: threading.Event = field(default_factory=threading.Event)
    booted: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    on_event: Callable[[ProgressEvent], None] | None = None
    thread: threading.Thread | None = None

    def _progress(self, ev: ProgressEvent) -> None:
        self.events.append(ev)
        self.event_times.append(time.monotonic())
        if ev.stage == Stage.FAST_FORWARDING:
            self.fast_forwarding.set()
        if ev.stage == Stage.PLANTING:
            self.booted.set()
        if self.on_event is not None:
            self.on_event(ev)

    def _run(self) -> None:
        try:
            request = AnalysisRequest(self.aid, self.bundle,
                                      Scenario(hours=self.hours, seed=7, contacts=3, sms=3, calls=3))
            self.outcome = run_analysis(self.settings, request, self._progress, CancelToken(), self.out,
                                        client=self.client)
        except BaseException as exc:  # the test reports it
            self.crash = exc
        finally:
            self.fast_forwarding.set()
            self.booted.set()
            self.done.set()

    def start(self) -> "AnalysisRun":
        self.thread = threading.Thread(target=self._run, name=f"analysis-{self.aid}", daemon=True)
        self.thread.start()
        return self

    def wait(self, timeout: float = 240.0) -> AnalysisOutcome:
        assert self.done.wait(timeout), f"analysis {self.aid} did not end in {timeout:.0f}s"
        if self.crash is not None:
            raise AssertionError(f"run_analysis raised instead of returning an outcome: {self.crash!r}") from self.crash
        assert self.outcome is not None
        return self.outcome

    def wait_fast_forward(self, timeout: float = 180.0) -> None:
        assert self.fast_forwarding.wait(timeout), "fast-forward never started"
        assert not self.done.is_set(), f"the analysis ended before fast-forward: {self.crash or self.outcome}"

    def ended_at(self, stage: Stage) -> float:
        """When the first ``stage`` event came (time.monotonic())."""
        for ev, t in zip(self.events, self.event_times):
            if ev.stage == stage:
                return t
        raise AssertionError(f"no {stage.value} event: {[e.stage.value for e in self.events]}")

    def container(self, role: str) -> Any:
        name = {"device": f"hp-twin-{self.aid}", "fakenet": f"hp-fakenet-{self.aid}"}[role]
        return self.client.containers.get(name)


def run(settings: Settings, client: docker.DockerClient, bundle: Path, out: Path, hours: float) -> AnalysisRun:
    return AnalysisRun(settings, client, bundle, out, hours).start()


def tcpdump_pids(iface: str) -> list[int]:
    """tcpdump processes capturing on ``iface`` (read from /proc; nothing is killed here)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"tcpdump") and iface.encode() in argv:
            pids.append(int(entry.name))
    return pids


def leftovers(client: docker.DockerClient, settings: Settings, aid: str) -> dict[str, Any]:
    """Everything of analysis ``aid`` still on the host; all empty when clean."""
    label = {"label": [f"{settings.label_analysis}={aid}"]}
    tmp = settings.data_dir / "tmp"
    temp_files = sorted(str(p) for p in tmp.rglob("*") if p.is_file()) if tmp.exists() else []
    return {
        "containers": [c.name for c in client.containers.list(all=True, ignore_removed=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
        "rules": [r.describe() for r in list_rules(aid)],
        "bridge": Path("/sys/class/net", bridge_of(aid)).exists(),
        "tcpdump": tcpdump_pids(bridge_of(aid)),
        "temp_files": temp_files,
    }


NOTHING_LEFT = {"containers": [], "networks": [], "rules": [], "bridge": False, "tcpdump": [], "temp_files": []}


def assert_nothing_left(client: docker.DockerClient, settings: Settings, aid: str) -> None:
    left = leftovers(client, settings, aid)
    assert left == NOTHING_LEFT, f"analysis {aid} left things behind: {left}"


def pcap_packets(path: Path) -> int:
    """Read every record with dpkt (as an analyst's tool would); raises when invalid."""
    n = 0
    with open(path, "rb") as f:
        for _ts, _buf in dpkt.pcap.Reader(f):
            n += 1
    return n


def assert_valid_pcap_if_any(path: Path) -> int:
    if not path.exists():
        return 0
    if path.stat().st_size == 0:
        return 0
    return pcap_packets(path)


def report_incidents(outcome: AnalysisOutcome) -> dict[str, list[dict[str, Any]]]:
    health: Any = outcome.report.get("health") or {}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for inc in health.get("incidents", []):
        by_kind.setdefault(inc["kind"], []).append(inc)
    return by_kind


def service_log(outcome: AnalysisOutcome, out: Path, name: str) -> str:
    path = out / "service-logs" / f"{name}.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


@dataclass
class Tmpfs:
    """A small tmpfs mounted on a fresh directory (unmounted by ``close``)."""

    path: Path
    size: str

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.path)],
                       check=True)

    def fill(self) -> int:
        """Write one file until the disk is full; returns the bytes written."""
        written = 0
        chunk = b"\0" * 65536
        try:
            with open(self.path / "filler.bin", "wb", buffering=0) as f:
                while True:
                    written += f.write(chunk)
        except OSError:
            pass
        return written

    def close(self) -> None:
        for _ in range(20):
            if subprocess.run(["umount", str(self.path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        shutil.rmtree(self.path, ignore_errors=True)


RESTART_DOCKERD = HERE.parents[2] / "scripts" / "restart-dockerd.sh"


def engine_restart_command() -> tuple[list[str] | None, str]:
    """How to restart this host's dockerd: ``(command, how)``, or ``(None, why not)``.

    scripts/restart-dockerd.sh decides, for tests and people alike: the dockerd
    that scripts/setup-host.sh started (its pidfile names a live dockerd) is
    stopped and started again the same way; else a systemd docker.service is
    restarted.  ``service docker restart`` is never used: the SysV script only
    stops a dockerd it started itself, so on a host whose engine was started
    otherwise it restarts nothing (see the script).
    """
    p = subprocess.run([str(RESTART_DOCKERD), "--how"], capture_output=True, text=True, timeout=60)
    if p.returncode == 0:
        return [str(RESTART_DOCKERD)], p.stdout.strip()
    return None, p.stderr.strip()
