"""deploy/images/farm/healthcheck.py, the orchestrator probe of Compose and Kubernetes, against a
real gRPC health service: readiness wants SERVING, --live (liveness) any answer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "images" / "farm" / "healthcheck.py"


@pytest.fixture
def health_server() -> Iterator[tuple[str, Any]]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=0).wait()


def _probe(*args: str) -> int:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, timeout=60).returncode


def test_serving_passes_both(health_server: tuple[str, Any]) -> None:
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert _probe(address, "-") == 0
    assert _probe("--live", address, "-") == 0


def test_not_serving_fails_readiness_only(health_server: tuple[str, Any]) -> None:
    """The database is away: out of the Service, but not restarted."""
    address, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert _probe(address, "-") == 1
    assert _probe("--live", address, "-") == 0


def test_nothing_listening_fails_both() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    assert _probe(address, "-") == 1
    assert _probe("--live", address, "-") == 1
