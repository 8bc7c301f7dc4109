"""The pytest plugin for real: an inner ``pytest -n 2`` over adups-5.3 (80 device hours, so the 72 h
upload fires even on a loaded host; see test_campaign_adups.HOURS) and adups-5.4, analyzed on this
machine by the real pipeline; one analysis per version."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from sandbox.settings import Settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "firmware"
TESTS = '''
import os


def _note(r):
    with open(os.environ["HP_IDS"], "a") as f:
        f.write(f"{os.path.basename(r.bundle)} {r.analysis_id}\\n")


def test_no_sms_leak(honeyphone_analysis):
    _note(honeyphone_analysis)
    assert not honeyphone_analysis.leaked("sms")


def test_no_contacts_to_adups(honeyphone_analysis):
    _note(honeyphone_analysis)
    assert not honeyphone_analysis.leaked("contact", host="adups.com")


def test_checks_for_updates(honeyphone_analysis):
    _note(honeyphone_analysis)
    assert "fota5p.adups.com:443" in honeyphone_analysis.destinations
    assert honeyphone_analysis.verdict in ("leak", "clean")
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_inner_pytest_over_53_and_54(tmp_path: Path, built_images: None) -> None:
    (tmp_path / "test_firmware.py").write_text(TESTS)
    adb_port = _free_port()
    ids, junit = tmp_path / "ids.txt", tmp_path / "inner.xml"
    env = dict(os.environ, ANDROID_ADB_SERVER_PORT=str(adb_port), HONEYPHONE_DATA_DIR=str(tmp_path / "data"),
               HP_IDS=str(ids), PYTHONPATH=str(REPO))
    installed = any(ep.value == "sandbox.pytest_plugin" for ep in entry_points(group="pytest11"))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *([] if installed else ["-p", "sandbox.pytest_plugin"]),
             "-n", "2", "--basetemp", str(tmp_path / "bt"), "--junitxml", str(junit),
             "--honeyphone-firmware", str(EXAMPLES / "adups-5.3"), "--honeyphone-firmware", str(EXAMPLES / "adups-5.4"),
             "--honeyphone-hours", "80", "--honeyphone-seed", "2", "--honeyphone-contacts", "5",
             "--honeyphone-sms", "5", "--honeyphone-calls", "5", "test_firmware.py"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
        )
    finally:
        subprocess.run([Settings().adb_path, "-P", str(adb_port), "kill-server"], capture_output=True, timeout=30)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    outcomes = {c.get("name"): next((x.tag for x in c if x.tag in ("failure", "error", "skipped")), "passed")
                for c in ET.parse(junit).getroot().iter("testcase")}
    assert outcomes == {
        "test_no_sms_leak[adups-5.3]": "failure", "test_no_contacts_to_adups[adups-5.3]": "failure",
        "test_checks_for_updates[adups-5.3]": "passed",
        "test_no_sms_leak[adups-5.4]": "passed", "test_no_contacts_to_adups[adups-5.4]": "passed",
        "test_checks_for_updates[adups-5.4]": "passed",
    }, proc.stdout
    seen: dict[str, set[str]] = {}
    for line in ids.read_text().splitlines():
        name, aid = line.split()
        seen.setdefault(name, set()).add(aid)
    assert {k: len(v) for k, v in seen.items()} == {"adups-5.3": 1, "adups-5.4": 1}
