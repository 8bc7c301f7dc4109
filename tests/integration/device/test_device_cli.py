"""`honeyphone device up/down` as a person runs them: real CLI, engine, adb."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from sandbox.device import AdbServer
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def test_device_up_explore_down(hp_settings: Settings, docker_engine: docker.DockerClient,
                                built_images: None, analysis_id: str) -> None:
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(hp_settings.adb_server_port),
           "HONEYPHONE_DATA_DIR": str(hp_settings.data_dir)}
    hp = [sys.executable, "-m", "sandbox.cli"]
    up = subprocess.run([*hp, "device", "up", str(ROOT / "examples/firmware/hello"), "--id", analysis_id],
                        capture_output=True, text=True, env=env, timeout=300)
    try:
        assert up.returncode == 0, up.stderr
        serial = re.search(r"adb serial:\s+(\S+)", up.stdout)
        assert serial, up.stdout
        adb = AdbServer.from_settings(hp_settings).adb_argv("-s", serial.group(1), "shell", "hpctl", "status")
        status = subprocess.run(adb, capture_output=True, text=True, timeout=60)
        assert '"name": "hello"' in status.stdout and '"running": true' in status.stdout
    finally:
        down = subprocess.run([*hp, "device", "down", analysis_id], capture_output=True, text=True, env=env,
                              timeout=120)
    assert down.returncode == 0, down.stderr
    assert f"hp-twin-{analysis_id}" in down.stdout and "honeyphone:" + analysis_id in down.stdout
    label = f"dev.honeyphone.analysis={analysis_id}"
    assert docker_engine.containers.list(all=True, ignore_removed=True, filters={"label": label}) == []
    again = subprocess.run([*hp, "device", "down", analysis_id], capture_output=True, text=True, env=env, timeout=60)
    assert "nothing to remove" in again.stdout


def test_bad_bundle_is_a_clear_error(tmp_path: Path) -> None:
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "firmware.toml").write_text('[firmware]\nname = "x"\nversion = "1"\nbogus = 1\n')
    res = subprocess.run([sys.executable, "-m", "sandbox.cli", "analyze", str(fw)], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "HONEYPHONE_DATA_DIR": str(tmp_path / "d")})
    assert res.returncode == 2
    assert "bogus" in res.stderr
