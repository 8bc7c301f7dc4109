"""End-to-end analyses on the real twin, fakenet, adb and Docker engine:
the example firmware leaks (or not) and the report says what, where, how."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox.model import AnalysisRequest, CancelToken, ProgressEvent, Scenario, Stage, Verdict
from sandbox.core.pipeline import run_analysis
from sandbox.device.twin import new_analysis_id
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "firmware"


def analyze(settings: Settings, client: docker.DockerClient, name: str, hours: float, tmp: Path) -> tuple[Any, list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    aid = new_analysis_id()
    request = AnalysisRequest(aid, EXAMPLES / name, Scenario(hours=hours, seed=3, contacts=6, sms=8, calls=6))
    outcome = run_analysis(settings, request, events.append, CancelToken(), tmp / aid, client=client)
    assert outcome.error is None, outcome.error
    # nothing of the analysis is left behind
    label = f"{settings.label_analysis}={aid}"
    assert client.containers.list(all=True, ignore_removed=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
    return outcome, events


def _chains(report: dict[str, Any]) -> set[tuple[str, ...]]:
    return {tuple(f["encoding"]) for f in report["findings"]}


def test_adups_53_leaks_sms_and_calls_at_72h(hp_settings: Settings, docker_engine: docker.DockerClient,
                                             built_images: None, tmp_path: Path) -> None:
    # 80 h, as the README's campaign: the 72 h upload with margin.
    outcome, events = analyze(hp_settings, docker_engine, "adups-5.3", 80, tmp_path)
    report = outcome.report
    assert outcome.verdict == Verdict.LEAK and report["verdict"] == "leak"
    kinds = {f["canary"]["kind"] for f in report["findings"]}
    assert {"sms", "call_log", "contact"} <= kinds
    dest = {(f["destination"]["host"], f["destination"]["port"], f["channel"]) for f in report["findings"]}
    assert dest == {("bigdata.adups.com", 443, "https")}
    assert any(c and c[-1] == "md5-hex-upper" for c in _chains(report))  # the body's MD5
    start = min(e["device_time"] for e in report["timeline"] if e["event"] == "boot")
    del start
    hours = {float(f["device_hours"]) for f in report["findings"] if "device_hours" in f}
    assert not hours or min(hours) >= 71.5
    assert all(f["process"] and "sysoper" in " ".join(f["process"]["argv"]) for f in report["findings"])
    assert report["firmware"]["name"] == "adups-fota" and len(report["firmware"]["sha256"]) == 64
    assert report["scenario"]["hours"] == 80 and report["scenario"]["seed"] == 3
    assert any(e.stage == Stage.FAST_FORWARDING and (e.device_hours or 0) > 70 for e in events)
    assert (tmp_path / report["analysis_id"] / "capture.pcap").stat().st_size > 0


def test_kitchen_sink_every_style_found(hp_settings: Settings, docker_engine: docker.DockerClient,
                                        built_images: None, tmp_path: Path) -> None:
    # styles fire at device hours 1-6; 24 h leaves ~2 s of real time for in-flight requests
    outcome, _ = analyze(hp_settings, docker_engine, "leaky-kitchen-sink", 24, tmp_path)
    report = outcome.report
    assert report["verdict"] == "leak"
    by_channel: dict[str, set[tuple[str, ...]]] = {}
    for f in report["findings"]:
        by_channel.setdefault(f["channel"], set()).add(tuple(f["encoding"]))
    assert "http" in by_channel                                    # plain query parameters
    assert "https" in by_channel                                   # gzip'd JSON POST and md5/base64
    assert any("gzip" in c for c in by_channel["https"])
    assert any(c and c[-1].startswith("md5") for c in by_channel["https"])
    assert "dns" in by_channel                                     # labels
    assert "tcp" in by_channel and any(any(x.startswith("xor") for x in c) for c in by_channel["tcp"])
    hosts = {f["destination"]["host"] for f in report["findings"]}
    assert "tracker.example.net" in hosts and "api.example.org" in hosts


@pytest.mark.parametrize("name", ["benign-updater", "adups-5.4"])
def test_benign_update_checks_are_clean(name: str, hp_settings: Settings, docker_engine: docker.DockerClient,
                                        built_images: None, tmp_path: Path) -> None:
    outcome, _ = analyze(hp_settings, docker_engine, name, 26, tmp_path)
    assert outcome.report["findings"] == []
    assert outcome.verdict == Verdict.CLEAN, outcome.report["verdict_reasons"]
    assert outcome.report["network"]["destinations"]  # it did talk: update checks
