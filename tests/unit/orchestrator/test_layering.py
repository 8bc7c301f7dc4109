"""The orchestrator core never reaches outward: no gRPC, no protobuf, no sandbox.api, no workers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("grpc", "google.protobuf", "sandbox.api", "workers", "sandbox.cli")


@pytest.mark.parametrize("path", sorted((ROOT / "sandbox" / "orchestrator").glob("*.py")), ids=lambda p: p.name)
def test_orchestrator_imports_stay_inward(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
            names = [f"sandbox.{node.module}"]
        for name in names:
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
