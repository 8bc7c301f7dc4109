"""A Node.js client (@grpc/grpc-js + proto-loader, from the .proto files alone) drives the real server.

Proves the public API is usable without our Python code: upload, submit,
watch to the terminal event.  Needs ``node``; ``npm ci`` runs once when
node_modules is missing.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from farm_harness import REPO, free_port, serve, stop, wait_ready, worker

HERE = Path(__file__).parent / "node_client"


def _node_modules() -> None:
    if (HERE / "node_modules" / "@grpc" / "grpc-js").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed; cannot install @grpc/grpc-js")
    lock = HERE / "node_modules.lock"
    import fcntl

    with lock.open("w") as fh:  # xdist: one install at a time
        fcntl.flock(fh, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "@grpc" / "grpc-js").is_dir():
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                pytest.fail(f"npm ci failed:\n{done.stdout}\n{done.stderr}")
    lock.unlink(missing_ok=True)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (needed for the Node.js client test)")
def test_node_client_uploads_submits_and_watches(tmp_path: Path) -> None:
    _node_modules()
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path / "farm.log"
    procs = [serve(address, tmp_path / "orch", log)]
    try:
        wait_ready(address)
        procs.append(worker(address, tmp_path / "w", log, "node-test", slots=1))
        bundle = tmp_path / "bundle.tar.gz"
        bundle.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 600)  # > one 64 KiB chunk
        node = shutil.which("node")
        assert node is not None
        done = subprocess.run(
            [node, "client.js", address, str(REPO / "proto"), str(bundle)],
            cwd=HERE, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{log.read_text()[-3000:]}"
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["size"] == bundle.stat().st_size and len(out["sha256"]) == 64
        assert out["state"] == "ANALYSIS_STATE_SUCCEEDED" and out["verdict"] == "VERDICT_LEAK"
        assert out["stages"][0] == "STAGE_QUEUED" and out["stages"][-1] == "STAGE_FINISHED"
        assert out["sequences"] == list(range(1, len(out["stages"]) + 1))
        assert out["hours"][-1] == 24
    finally:
        for p in procs:
            stop(p, signal.SIGKILL, timeout=10)
