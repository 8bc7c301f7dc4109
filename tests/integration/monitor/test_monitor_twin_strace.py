"""strace on every twin service: a canary-store read and a later connect are
attributed to the right process, the bystander only to its own connect."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from sandbox.bundle import load_bundle
from sandbox.clock.twin_clock import ClockConfig, TwinClock
from sandbox.core.twin_session import TRACE_DIR, pull_traces, wrap_for_strace
from sandbox.device.firmware import install_twin_bundle, start_services, stop_services
from sandbox.device.twin import TwinHandle, file_reader
from sandbox.monitor.summary import summarize_file
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
FW = Path(__file__).parent / "fw_syscalls"


def test_trace_attributes_store_read_and_connect(hp_settings: Settings, docker_engine: docker.DockerClient,
                                                 twin: TwinHandle, tmp_path: Path) -> None:
    bundle = load_bundle(FW, hp_settings.bundle_limits, tmp_path / "stage")
    config = ClockConfig(start_epoch=float(int(time.time())), horizon_hours=2.0, settings=hp_settings.clock)
    install_twin_bundle(twin.device, bundle, wrap_for_strace, clock=config.manifest_entry())
    twin.device.shell(["mkdir", "-p", TRACE_DIR]).check()
    start_services(twin.device)
    TwinClock(file_reader(docker_engine, twin), config).run_until(2.0)
    stop_services(twin.device)
    pull_traces(twin.device, tmp_path / "traces")

    reader = summarize_file(str(tmp_path / "traces" / "reader.strace"))
    readers = reader.store_readers()
    assert [r.store for r in readers] == ["contacts"]
    assert "reader.py" in " ".join(readers[0].process.argv)
    conns = [c for c in reader.connections() if c.port == 8123]
    assert len(conns) == 1 and conns[0].bytes_sent == 4321
    assert conns[0].first_ts > readers[0].first_ts  # the read came first
    assert conns[0].process.pid == readers[0].process.pid

    bystander = summarize_file(str(tmp_path / "traces" / "bystander.strace"))
    assert bystander.store_readers() == []
    assert [c.bytes_sent for c in bystander.connections() if c.port == 8123] == [1234]
