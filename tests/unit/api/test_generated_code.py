"""The committed generated code matches the .proto files (what scripts/check_proto.sh enforces)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_generated_code_is_fresh() -> None:
    bindir = Path(sys.executable).parent
    if shutil.which("protoc-gen-mypy", path=str(bindir)) is None:
        pytest.skip("mypy-protobuf is not installed (pip install -e '.[test]')")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check_proto.sh")], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": f"{bindir}:/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_imports_resolve_inside_the_package() -> None:
    from sandbox.api.gen.honeyphone.v1 import fleet_pb2, fleet_pb2_grpc, sandbox_pb2_grpc

    assert fleet_pb2.DESCRIPTOR.package == "honeyphone.v1"
    assert hasattr(fleet_pb2_grpc, "FleetStub") and hasattr(sandbox_pb2_grpc, "SandboxStub")
