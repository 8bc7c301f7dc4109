"""The client commands end to end against an in-process server and worker."""

from __future__ import annotations

import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.api.channel import open_channel
from sandbox.api.fleet_client import FleetClient
from sandbox.api.server import Security, start_server
from sandbox.bundle.pack import pack_bundle
from sandbox.cli import main
from sandbox.orchestrator.memory_store import MemoryStore
from sandbox.orchestrator.runtime import Orchestrator
from sandbox.settings import FleetSettings, Settings
from workers.agent import WorkerAgent, WorkerConfig
from workers.fake_runner import make_runner

FLEET = FleetSettings(lease_seconds=5, server_threads=16)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    orch = Orchestrator(MemoryStore(), FLEET)
    orch.start()
    srv = start_server(orch, FLEET, "127.0.0.1:0", Security())
    address = f"127.0.0.1:{srv.port}"
    settings = Settings(data_dir=tmp_path / "w")
    agent = WorkerAgent(
        settings, WorkerConfig(slots=2, name="cli", profiles=("twin",), poll_s=0.05),
        FleetClient(open_channel(address)), make_runner(settings),
    )
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    yield address
    agent.drain()
    t.join(10)
    srv.stop(0)
    orch.close()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    d = tmp_path / "bundle"
    (d / "bin").mkdir(parents=True)
    (d / "manifest.json").write_text('{"firmware": {"name": "x"}}')
    (d / "bin" / "svc").write_text("#!/bin/sh\n")
    return d


@pytest.mark.parametrize(("seed", "code", "word"), [(0, 0, "clean"), (1, 1, "leak"), (2, 3, "suspicious")])
def test_submit_wait_exit_codes(
    server: str, bundle: Path, capsys: pytest.CaptureFixture[str], seed: int, code: int, word: str
) -> None:
    rc = main(["submit", str(bundle), "--server", server, "--wait", "--hours", "2", "--seed", str(seed), "--label", "k=v"])
    out = capsys.readouterr().out.split()
    assert rc == code and out[-1] == word and len(out[0]) == 16


def test_failed_analysis_exits_2(server: str, bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["submit", str(bundle), "--server", server, "--wait", "--hours", "1", "--label", "fake.error=bad firmware"])
    assert rc == 2 and "failed: bad firmware" in capsys.readouterr().out


def test_status_list_report_artifacts_cancel(
    server: str, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", str(bundle), "--server", server, "--wait", "--hours", "1", "--label", "team=red"]) == 0
    aid = capsys.readouterr().out.split()[0]
    assert main(["status", aid, "--server", server]) == 0
    status = capsys.readouterr().out
    assert "state:        succeeded" in status and "team=red" in status
    assert main(["list", "--server", server, "--label", "team=red", "--state", "succeeded"]) == 0
    assert capsys.readouterr().out.startswith(aid)
    assert main(["report", aid, "--server", server, "-o", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["analysis_id"] == aid
    assert main(["artifacts", aid, "--server", server, "--out", str(tmp_path / "arts")]) == 0
    assert sorted(p.name for p in (tmp_path / "arts").iterdir()) == ["flows.json", "report.html"]
    capsys.readouterr()
    assert main(["submit", str(bundle), "--server", server, "--hours", "500", "--label", "fake.seconds=30"]) == 0
    slow = capsys.readouterr().out.split()[0]
    assert main(["cancel", slow, "--server", server]) == 0
    assert capsys.readouterr().out.strip() == f"{slow} cancelled"


def test_errors_are_explained(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "0" * 16, "--server", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "unavailable" in err and "honeyphone serve" in err
    assert main(["submit", str(bundle / "missing"), "--server", "127.0.0.1:1"]) == 2
    assert main(["serve", "--listen", "0.0.0.0:0"]) == 2
    assert "refusing to listen on non-loopback address" in capsys.readouterr().err


def test_submit_validation_is_reported(server: str, bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", str(bundle), "--server", server, "--hours", "9999"]) == 2
    assert "scenario.hours: 9999.0 is out of range 1..720" in capsys.readouterr().err


def test_pack_bundle_is_deterministic(bundle: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.tgz", tmp_path / "b.tgz"
    with a.open("wb") as f:
        pack_bundle(bundle, f)
    (bundle / "manifest.json").touch()
    with b.open("wb") as f:
        pack_bundle(bundle, f)
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        assert tar.getnames() == ["bin", "manifest.json", "bin/svc"]


def test_unavailable_server_is_named_even_when_defaulted(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    # the default address, pointed at a port nothing listens on (port 1 needs root to bind)
    defaults = replace(Settings(), fleet=FleetSettings(listen="127.0.0.1:1"))
    monkeypatch.setattr(Settings, "from_env", classmethod(lambda cls, **kw: replace(defaults, **kw)))
    assert main(["status", "0" * 16]) == 2
    err = capsys.readouterr().err
    assert "running at 127.0.0.1:1?" in err and "None" not in err
