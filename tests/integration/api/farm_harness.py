"""Start ``honeyphone serve`` and ``honeyphone worker`` as real subprocesses on loopback.

Only the PIDs started here are ever signalled.  Ports come from the kernel
(bind to port 0, read it, close) so parallel test runs do not collide.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc

from sandbox.api.channel import open_channel
from sandbox.api.client import SandboxClient

REPO = Path(__file__).resolve().parents[3]
RUNNER = "workers.fake_runner:make_runner"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def honeyphone(*args: str, data: Path, log: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox.cli", "--data-dir", str(data), *args],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )


def serve(address: str, data: Path, log: Path, lease_seconds: int = 2) -> subprocess.Popen[bytes]:
    return honeyphone("serve", "--listen", address, "--lease-seconds", str(lease_seconds), data=data, log=log)


def worker(
    address: str, data: Path, log: Path, name: str, slots: int = 2, *,
    runner: str | None = RUNNER, adb_port: int | None = None,
) -> subprocess.Popen[bytes]:
    """A worker with the fake runner; ``runner=None`` runs the real pipeline.

    The real pipeline needs its own adb server (``adb_port``, passed the way an
    operator would: ``ANDROID_ADB_SERVER_PORT``) and keeps crash cleanup on:
    it only ever touches analyses of dead workers sharing ``data``.
    """
    extra = ["--runner", runner, "--no-cleanup"] if runner is not None else []
    env = {"ANDROID_ADB_SERVER_PORT": str(adb_port)} if adb_port is not None else None
    return honeyphone(
        "worker", "--orchestrator", address, "--slots", str(slots), "--name", name, "--profiles", "twin",
        *extra, data=data, log=log, env_extra=env,
    )


def wait_ready(address: str, timeout: float = 30.0) -> SandboxClient:
    client = SandboxClient(open_channel(address), timeout=5)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list(page_size=1)
            return client
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)
