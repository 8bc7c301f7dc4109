"""One contract for every device profile: boot, plant and read back, the
clock (a deadline 72 device hours out fires), capture, detect.

Always runs against the twin.  Runs against the Android emulator when an
image is there (``honeyphone/android:<api>`` or ``HONEYPHONE_ANDROID_IMAGE``)
and /dev/kvm works; otherwise those cases are skipped with the reason and
how to enable them.  The firmware differs per profile (a twin service that
waits for an absolute wall-clock time; an APK with an RTC_WAKEUP alarm), the
checks do not.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from contract_profiles import AndroidProfile, Profile, TwinProfile

from sandbox.canary import CanarySpec, generate
from sandbox.containers.cleanup import cleanup
from sandbox.network.bridge import create_device_network
from sandbox.model import AnalysisRequest, CancelToken, ProgressEvent, Scenario, Verdict
from sandbox.core.pipeline import run_analysis
from sandbox.core.planting import SMS, plant
from sandbox.network import containment
from sandbox.network.capture import Capture
from sandbox.network.fakenet import collect_logs, start_fakenet, stop_fakenet, wait_ready
from sandbox.network.routing import route_via
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
H = 3600.0


@pytest.fixture(params=["twin", "android"])
def profile(request: pytest.FixtureRequest, hp_settings: Settings, docker_engine: docker.DockerClient,
            built_images: None) -> Profile:
    if request.param == "twin":
        return TwinProfile(hp_settings, docker_engine)
    return AndroidProfile(hp_settings, docker_engine)  # skips, saying how to enable it, without an image


_CREATED: set[str] = set()  # analysis ids this process made, for the leftover guard below


def _aid() -> str:
    aid = "c" + secrets.token_hex(5)
    _CREATED.add(aid)
    return aid


def _nothing_left(client: docker.DockerClient, settings: Settings, aid: str) -> None:
    label = f"{settings.label_analysis}={aid}"
    assert client.containers.list(all=True, ignore_removed=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []


def test_boot(profile: Profile, hp_settings: Settings, docker_engine: docker.DockerClient) -> None:
    aid = _aid()
    with profile.booted(aid) as booted:
        dev = booted.device
        assert dev.getprop("sys.boot_completed") == "1"
        assert dev.shell(["id", "-u"]).text.strip() == "0"  # adb root (emulator) / root shell (twin)
        assert dev.shell("exit 7").exit_code == 7
        if profile.android:
            assert booted.api in (30, 33, 34, 35)
    _nothing_left(docker_engine, hp_settings, aid)


def test_plant_and_read_back(profile: Profile) -> None:
    canaries = generate(CanarySpec(seed=11, analysis_id="contract", contacts=3, sms=4, calls=3))
    with profile.booted(_aid()) as booted:
        profile.prepare_for_planting(booted)
        report = plant(booted.device, canaries, android=profile.android)  # verifies every item itself
        assert (report.contacts, report.sms, report.calls) == (3, 4, 3)
        rows = booted.device.content_query(SMS, ["address", "body"])
        assert {s.body for s in canaries.sms} <= {r["body"] for r in rows}


def test_clock_deadline_at_72h_fires(profile: Profile, tmp_path: Path) -> None:
    with profile.booted(_aid()) as booted:
        profile.install_alarm_firmware(booted, tmp_path)
        clock = profile.clock(booted)
        clock.configure()
        start = clock.device_now()
        assert profile.alarm_record(booted) is None
        reached = clock.run_until(74.0, since=start)
        assert reached == pytest.approx(74.0, abs=0.05)
        deadline = time.monotonic() + 60
        record = profile.alarm_record(booted)
        while record is None and time.monotonic() < deadline:  # delivery may trail the last step a little
            time.sleep(1)
            record = profile.alarm_record(booted)
        assert record is not None, "the 72 h deadline did not fire within 74 device hours"
        t0, fired = record
        assert 72 * H <= fired - t0 <= 73 * H


def test_capture(profile: Profile, hp_settings: Settings, docker_engine: docker.DockerClient,
                 tmp_path: Path) -> None:
    aid, token = _aid(), secrets.token_hex(8)
    network = create_device_network(docker_engine, hp_settings, aid)
    capture: Capture | None = None
    try:
        containment.install_rules(aid, network.bridge)
        fakenet = start_fakenet(docker_engine, hp_settings, aid, network)
        capture = Capture(network.bridge, tmp_path / "capture.pcap",
                          bpf=f"not (host {network.gateway} and tcp port 5555)").start()
        wait_ready(docker_engine, fakenet)
        with profile.booted(aid, network=network, environment={"HONEYPHONE_DNS": fakenet.ip}) as booted:
            route_via(docker_engine, booted.container_id, fakenet.ip)
            booted.device.shell(profile.http_get_command("capture.contract.example", f"/c/{token}"), timeout=60)
            time.sleep(1)
        capture.stop()
        capture = None
        stop_fakenet(docker_engine, fakenet)
        logs = collect_logs(docker_engine, fakenet, tmp_path / "fakenet")
        pcap = (tmp_path / "capture.pcap").read_bytes()
        assert f"/c/{token}".encode() in pcap and b"capture.contract.example" in pcap
        flows = "".join(p.read_text() for p in logs.dir.rglob("*.jsonl"))
        assert token in flows
    finally:
        if capture is not None:
            capture.stop()
        cleanup(docker_engine, hp_settings, aid, extra=(containment.remove_rules,))


def test_detect(profile: Profile, hp_settings: Settings, docker_engine: docker.DockerClient,
                tmp_path: Path) -> None:
    aid = _aid()
    request = AnalysisRequest(aid, profile.leak_bundle(tmp_path),
                              Scenario(hours=74.0 if profile.android else 2.0, seed=5, contacts=3, sms=4, calls=3,
                                       profile=profile.name))
    events: list[ProgressEvent] = []
    outcome = run_analysis(hp_settings, request, events.append, CancelToken(), tmp_path / aid, client=docker_engine)
    assert outcome.error is None, outcome.error
    assert outcome.verdict == Verdict.LEAK
    kinds = {f["canary"]["kind"] for f in outcome.report["findings"]}
    assert "sms" in kinds
    assert {f["destination"]["host"] for f in outcome.report["findings"]} == {"collector.contract.example"}
    _nothing_left(docker_engine, hp_settings, aid)


@pytest.fixture(autouse=True)
def _no_leftovers(hp_settings: Settings, docker_engine: docker.DockerClient) -> Iterator[None]:
    yield
    # Every case cleans up after itself; this only guards against a test bug
    # leaving a device behind.  It touches only this process' own analyses:
    # other xdist workers run the other cases (and their devices) meanwhile.
    while _CREATED:
        cleanup(docker_engine, hp_settings, _CREATED.pop(), extra=(containment.remove_rules,))
