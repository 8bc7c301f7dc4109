"""The event-driven device clock on the real twin: sleeps, periodic tasks and
wall-clock pollers fire at the right device times, the 96 h horizon ends, and
`date` moves the wall clock of every process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest

from sandbox.bundle import load_bundle
from sandbox.clock.twin_clock import ClockConfig, TwinClock
from sandbox.device.firmware import install_twin_bundle, read_service_log, start_services
from sandbox.device.twin import TwinHandle, file_reader
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
FW = Path(__file__).parent / "fw_clock"
H = 3600.0


def _events(handle: TwinHandle, name: str) -> list[dict[str, float]]:
    return [json.loads(line) for line in read_service_log(handle.device, name).splitlines() if line.startswith("{")]


def test_clock_fires_on_device_schedule(hp_settings: Settings, docker_engine: docker.DockerClient,
                                        twin: TwinHandle, tmp_path: Path) -> None:
    bundle = load_bundle(FW, hp_settings.bundle_limits, tmp_path)
    start = float(int(time.time()))
    config = ClockConfig(start_epoch=start, horizon_hours=96.0, settings=hp_settings.clock)
    install_twin_bundle(twin.device, bundle, clock=config.manifest_entry())
    start_services(twin.device)
    clock = TwinClock(file_reader(docker_engine, twin), config)
    seen: list[float] = []
    reached = clock.run_until(96.0, progress=seen.append)
    assert reached == pytest.approx(96.0, abs=0.01)
    assert seen and seen[-1] == pytest.approx(96.0, abs=0.01)
    state = clock.state()
    assert state.reached and state.jumps > 0 and state.fallback is None and not state.uncovered
    # past the horizon the clock runs at the real rate: the device's own date
    # agrees with the host's mapping to within the adb round trip
    before = clock.mapping(refresh=True).to_device(time.time())
    device_date = float(twin.device.shell("/bin/date +%s.%N").text)
    after = clock.mapping(refresh=True).to_device(time.time())
    assert before - 1 < device_date < after + 1
    assert device_date - start == pytest.approx(96 * H, abs=120)

    sleep = [e for e in _events(twin, "sleeper") if e["event"] == "sleep72"]
    assert len(sleep) == 1
    assert sleep[0]["t"] - sleep[0]["t0"] == pytest.approx(72 * H, rel=0.01)
    periodic = [e for e in _events(twin, "periodic") if e["event"] == "periodic"]
    # the 4th firing falls 96 h after the service started, right at the horizon:
    # whether it lands before the end depends on start-up latency, so it is optional
    assert [e["n"] for e in periodic][:3] == [1, 2, 3] and len(periodic) <= 4
    for e in periodic:
        assert e["t"] - e["t0"] == pytest.approx(e["n"] * 24 * H, rel=0.01)
    poll = [e for e in _events(twin, "poller") if e["event"] == "poll48"]
    assert len(poll) == 1 and poll[0]["t"] - poll[0]["t0"] == pytest.approx(48 * H, rel=0.01)
    # all services share one clock: their starts agree to within a device hour
    starts = [e.get("t0", e["t"]) for name in ("sleeper", "periodic", "poller") for e in _events(twin, name)[:1]]
    assert max(starts) - min(starts) < H
    assert abs(min(starts) - start) < 2 * H


def test_date_sets_device_wall_clock(hp_settings: Settings, docker_engine: docker.DockerClient,
                                     twin: TwinHandle, tmp_path: Path) -> None:
    """As root, `date` moves the wall clock of every device process at once, like toybox date on Android."""
    bundle = load_bundle(FW, hp_settings.bundle_limits, tmp_path)
    # A zero horizon: the clock runs at the real rate and never jumps, so
    # every reading below is the wall clock `date` set plus real seconds.
    config = ClockConfig(start_epoch=float(int(time.time())), horizon_hours=0.0, settings=hp_settings.clock)
    install_twin_bundle(twin.device, bundle, clock=config.manifest_entry())
    start_services(twin.device)
    clock = TwinClock(file_reader(docker_engine, twin), config)
    before = float(twin.device.shell("date +%s").text)
    target = 2_000_000_000  # 2033-05-18
    res = twin.device.shell(f"date @{target}")
    assert res.exit_code == 0, res.error_text
    after = float(twin.device.shell("date +%s").text)
    assert target <= after < target + 30  # real seconds: no jump, no fallback
    # a running service sees the jump too: the poller's next wake-up happens in 2033
    assert twin.device.shell(["python3", "-c", "import time; print(int(time.time()))"]).text.strip() >= str(target)
    mapping = clock.mapping(refresh=True)
    assert len(mapping.segments) == 3  # real clock before the start, the start, the wall-clock jump
    assert abs(mapping.to_device(time.time()) - float(twin.device.shell("date +%s").text)) < 5
    assert before < target
    # the toybox form and an unprivileged caller
    res = twin.device.shell(["su", "-s", "/bin/sh", "shell", "-c", "PATH=/system/bin:$PATH date @1"])
    assert res.exit_code != 0 and "Operation not permitted" in res.error_text
