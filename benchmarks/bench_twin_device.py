"""Twin cold boot and adb push throughput, measured in one run.

Reports (JSON on stdout):
- twin cold boot to ``sys.boot_completed=1``: median of N boots (target <= 2 s);
- ``adb push`` of a 100 MiB file through adbutils -> adb server -> twin adbd,
  against ``docker cp`` of the same file into the same container, as a ratio
  (target >= 0.5).  Both run here, in this process, on the same machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import docker

from sandbox.containers.cleanup import cleanup
from sandbox.device import AdbServer
from sandbox.device.twin import boot_twin
from sandbox.images import ImageBuilder
from sandbox.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boots", type=int, default=10)
    ap.add_argument("--mib", type=int, default=100)
    args = ap.parse_args()
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(adb_server_port=free_port(), data_dir=Path(tmp))
        ImageBuilder(settings, client).build("twin")
        server = AdbServer.from_settings(settings)
        boots: list[float] = []
        try:
            for _ in range(args.boots):
                aid = "b" + secrets.token_hex(5)
                t0 = time.monotonic()
                handle = boot_twin(settings, client, server, aid)
                boots.append(time.monotonic() - t0)
                handle.device.disconnect()
                cleanup(client, settings, aid)
            aid = "b" + secrets.token_hex(5)
            handle = boot_twin(settings, client, server, aid)
            blob = Path(tmp) / "blob"
            blob.write_bytes(os.urandom(args.mib * 1024 * 1024))
            t0 = time.monotonic()
            handle.device.push(blob, "/data/local/tmp/blob")
            push_s = time.monotonic() - t0
            t0 = time.monotonic()
            subprocess.run(["docker", "cp", str(blob), f"{handle.container.name}:/data/local/tmp/blob2"], check=True)
            cp_s = time.monotonic() - t0
            handle.device.disconnect()
            cleanup(client, settings, aid)
        finally:
            server.kill()
    mb = args.mib * 1.048576
    print(json.dumps({
        "boot_median_s": round(statistics.median(boots), 3),
        "boot_all_s": [round(b, 3) for b in boots],
        "push_MBps": round(mb / push_s, 1),
        "docker_cp_MBps": round(mb / cp_s, 1),
        "push_vs_docker_cp": round(cp_s / push_s, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
