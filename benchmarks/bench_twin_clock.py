"""Device hours per real second on the twin, for the clock test firmware
(a 72 h sleep, a 24 h periodic task and a 10-minute wall-clock poller).

Reports the real seconds for a 96 h horizon (target <= 15 s) and the ratio of
device time to real time, measured end to end from ``hpctl start`` to the
horizon, against the configured rate as the baseline.
"""

from __future__ import annotations

import json
import secrets
import socket
import tempfile
import time
from pathlib import Path

import docker

from sandbox.bundle import load_bundle
from sandbox.clock.twin_clock import ClockConfig, TwinClock
from sandbox.containers.cleanup import cleanup
from sandbox.device import AdbServer
from sandbox.device.firmware import install_twin_bundle, start_services
from sandbox.device.twin import boot_twin
from sandbox.settings import Settings

FW = Path(__file__).resolve().parents[1] / "tests" / "integration" / "core" / "fw_clock"


def main() -> None:
    client = docker.from_env()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(adb_server_port=port, data_dir=Path(tmp))
        server = AdbServer.from_settings(settings)
        aid = "c" + secrets.token_hex(5)
        try:
            handle = boot_twin(settings, client, server, aid)
            bundle = load_bundle(FW, settings.bundle_limits, Path(tmp))
            config = ClockConfig(float(int(time.time())), settings.clock_rate)
            install_twin_bundle(handle.device, bundle, clock=config.manifest_entry())
            t0 = time.monotonic()
            start_services(handle.device)
            clock = TwinClock(handle.device, config)
            clock.run_until(96.0, since=clock.device_now())
            real = time.monotonic() - t0
        finally:
            cleanup(client, settings, aid)
            server.kill()
    print(json.dumps({
        "horizon_device_hours": 96, "real_seconds": round(real, 2),
        "device_hours_per_real_second": round(96 / real, 2),
        "configured_rate_hours_per_second": settings.clock_rate / 3600,
        "ratio_to_configured": round((96 / real) / (settings.clock_rate / 3600), 3),
    }, indent=1))


if __name__ == "__main__":
    main()
