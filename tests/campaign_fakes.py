"""Reports shaped like the real ones, bundles to carry them, and a farm runner that returns them.

The runner (``campaign_fakes:make_runner``) reads the uploaded bundle's
``firmware.toml`` and answers like the Adups replays do: a version starting
with ``5.3`` leaks SMS, call log and contacts to bigdata.adups.com; one
containing ``broken`` fails; one containing ``sus`` is suspicious; any other
is clean and only talks to fota5p.adups.com.  No Docker, no device.
"""

from __future__ import annotations

import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.api.channel import open_channel
from sandbox.api.fleet_client import FleetClient
from sandbox.api.server import Security, start_server
from sandbox.bundle.manifest import validate_manifest
from sandbox.campaign.model import VersionResult, version_from_report
from sandbox.model import (
    AnalysisOutcome,
    AnalysisRequest,
    CancelToken,
    ProgressEvent,
    ProgressFn,
    Runner,
    Stage,
    Verdict,
)
from sandbox.orchestrator.memory_store import MemoryStore
from sandbox.orchestrator.runtime import Orchestrator
from sandbox.settings import FleetSettings, Settings
from workers.agent import WorkerAgent, WorkerConfig

UPDATE = "fota5p.adups.com:443"
BIGDATA = "bigdata.adups.com"


def finding(kind: str, host: str, port: int = 443, device_time: str = "2026-11-28T21:51:33+00:00",
            channel: str = "https", encoding: tuple[str, ...] = (), ip: str = "10.213.0.2") -> dict[str, Any]:
    return {
        "canary": {"kind": kind, "item_id": f"{kind[0]}0001", "field": "number", "form": "e164", "value": "+1555"},
        "destination": {"host": host, "ip": ip, "port": port, "host_source": "http-host"},
        "channel": channel, "encoding": list(encoding), "device_time": device_time,
        "process": {"name": "python3", "pid": 42, "description": "python3 (pid 42)", "argv": ["python3"]},
    }


def report(name: str, version: str, verdict: str, findings: list[dict[str, Any]],
           destinations: list[str], hours: float = 74.0, seed: int = 0) -> dict[str, Any]:
    return {
        "schema_version": 1, "analysis_id": "x", "verdict": verdict,
        "verdict_reasons": [f"{len(findings)} canary leak finding(s)"] if findings else ["no canary left the device"],
        "firmware": {"name": name, "version": version, "sha256": "0" * 64, "profile": "twin"},
        "scenario": {"hours": hours, "seed": seed}, "findings": findings,
        "network": {"destinations": destinations},
    }


def adups_report(version: str) -> dict[str, Any]:
    if version.startswith("5.3"):
        leaks = [finding(k, BIGDATA) for k in ("sms", "sms", "call_log", "contact")]
        return report("adups-fota", version, "leak", leaks, [f"{BIGDATA}:443", UPDATE])
    if "sus" in version:
        return report("adups-fota", version, "suspicious", [], [UPDATE])
    return report("adups-fota", version, "clean", [], [UPDATE])


def result(version: str, bundle: str = "b", verdict: Verdict | None = None, error: str | None = None) -> VersionResult:
    rep = adups_report(version)
    v = verdict if verdict is not None or error else Verdict(rep["verdict"])
    return version_from_report(bundle, rep if not error else {}, v, name="adups-fota", version=version, error=error,
                               analysis_id="a" * 16, seconds=1.5)


def make_bundle(root: Path, version: str, name: str = "adups-fota") -> Path:
    d = root / f"{name}-{version}"
    (d / "files" / "system").mkdir(parents=True, exist_ok=True)
    (d / "firmware.toml").write_text(
        f'[firmware]\nname = "{name}"\nversion = "{version}"\n\n[[services]]\nname = "svc"\nexec = ["/bin/true"]\n'
    )
    (d / "files" / "system" / "marker").write_text(version)
    return d


def _manifest_version(bundle: Path) -> tuple[str, str]:
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("firmware.toml")
        assert member is not None
        fw = validate_manifest(member.read()).firmware
    return fw.name, fw.version


def make_runner(settings: Settings) -> Runner:
    del settings

    def runner(request: AnalysisRequest, progress: ProgressFn, token: CancelToken) -> AnalysisOutcome:
        aid = request.analysis_id
        name, version = _manifest_version(request.bundle_path)
        progress(ProgressEvent(Stage.BOOTING, "booting fake device"))
        for step in range(1, 5):
            if token.cancelled:
                return AnalysisOutcome(aid, None, {}, {}, error="cancelled")
            time.sleep(0.02)
            progress(ProgressEvent(Stage.FAST_FORWARDING, f"step {step}", request.scenario.hours * step / 4))
        if "broken" in version:
            return AnalysisOutcome(aid, None, {}, {}, error="the twin did not boot")
        rep = adups_report(version)
        rep["firmware"]["name"] = name
        rep["analysis_id"] = aid
        rep["scenario"] = {"hours": request.scenario.hours, "seed": request.scenario.seed}
        return AnalysisOutcome(aid, Verdict(rep["verdict"]), rep, {})

    return runner


@contextmanager
def fake_farm(tmp: Path, slots: int = 3) -> Iterator[tuple[str, Orchestrator]]:
    """An in-process orchestrator and worker running ``make_runner``; yields its loopback address."""
    fleet = FleetSettings(lease_seconds=5, server_threads=32)
    orch = Orchestrator(MemoryStore(), fleet)
    orch.start()
    srv = start_server(orch, fleet, "127.0.0.1:0", Security())
    address = f"127.0.0.1:{srv.port}"
    settings = Settings(data_dir=tmp / "worker")
    agent = WorkerAgent(settings, WorkerConfig(slots=slots, name="fake", profiles=("twin",), poll_s=0.05),
                        FleetClient(open_channel(address)), make_runner(settings))
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    try:
        yield address, orch
    finally:
        agent.drain()
        t.join(10)
        srv.stop(0)
        orch.close()
