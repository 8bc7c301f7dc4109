"""The pytest plugin in an inner pytest run against an in-process farm faking reports (no Docker):
parametrization over firmware, one analysis per version shared by its tests across xdist workers,
declared firmware and scenario, and errors instead of passes when there is nothing to check."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from campaign_fakes import fake_farm, make_bundle

from sandbox.api.channel import open_channel
from sandbox.api.client import SandboxClient

REPO = Path(__file__).resolve().parents[3]
TESTS = '''
import os


def _note(r):
    with open(os.environ["HP_IDS"], "a") as f:
        f.write(f"{os.path.basename(r.bundle)} {r.analysis_id} {os.environ.get('PYTEST_XDIST_WORKER', '-')}\\n")


def test_no_sms_leak(honeyphone_analysis):
    _note(honeyphone_analysis)
    assert not honeyphone_analysis.leaked("sms")


def test_nothing_to_adups(honeyphone_analysis):
    _note(honeyphone_analysis)
    assert not honeyphone_analysis.leaked(host="adups.com")


def test_update_check_and_scenario(honeyphone_analysis):
    _note(honeyphone_analysis)
    assert "fota5p.adups.com:443" in honeyphone_analysis.destinations
    assert honeyphone_analysis.report["scenario"]["hours"] == HOURS
'''


def plugin_args() -> list[str]:
    """The plugin comes through its entry point once installed; before that, load it by name."""
    installed = any(ep.value == "sandbox.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "sandbox.pytest_plugin"]


def run_inner(where: Path, *args: str, ids: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run pytest in ``where``; return the process and {testcase name: outcome} from its JUnit file."""
    junit = where / "inner.xml"
    env = dict(os.environ, HP_IDS=str(ids), PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugin_args(), "--basetemp", str(where / "bt"),
         "--junitxml", str(junit), "-o", "junit_family=xunit1", *args],
        cwd=where, env=env, capture_output=True, text=True, timeout=300,
    )
    outcomes: dict[str, str] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            kind = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
            outcomes[case.get("name", "")] = kind
    return proc, outcomes


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[str]:
    with fake_farm(tmp_path / "farm") as (address, _):
        yield address


def test_two_versions_over_xdist_one_analysis_each(farm: str, tmp_path: Path) -> None:
    b53, b54 = make_bundle(tmp_path, "5.3.0"), make_bundle(tmp_path, "5.4.0")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_fw.py").write_text("HOURS = 30\n" + TESTS)
    ids = tmp_path / "ids.txt"
    proc, outcomes = run_inner(
        inner, "-n", "2", "--honeyphone-server", farm, "--honeyphone-firmware", str(b53),
        "--honeyphone-firmware", str(b54), "--honeyphone-hours", "30", "--honeyphone-seed", "4", "test_fw.py", ids=ids,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    a, b = "adups-fota-5.3.0", "adups-fota-5.4.0"
    assert outcomes == {
        f"test_no_sms_leak[{a}]": "failure", f"test_nothing_to_adups[{a}]": "failure",
        f"test_update_check_and_scenario[{a}]": "passed",
        f"test_no_sms_leak[{b}]": "passed", f"test_nothing_to_adups[{b}]": "passed",
        f"test_update_check_and_scenario[{b}]": "passed",
    }
    lines = [line.split() for line in ids.read_text().splitlines()]
    assert len(lines) == 6 and {w for _, _, w in lines} == {"gw0", "gw1"}
    per_bundle = {name: {aid for n, aid, _ in lines if n == name} for name in (a, b)}
    assert all(len(v) == 1 for v in per_bundle.values()), per_bundle  # one analysis per version
    recs, _ = SandboxClient(open_channel(farm)).list()
    assert len(recs) == 2 and {(r.scenario.hours, r.scenario.seed) for r in recs} == {(30.0, 4)}


def test_firmware_and_scenario_declared_in_module_and_conftest(farm: str, tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    make_bundle(inner / "fw", "5.4.0")
    (inner / "sub").mkdir(parents=True)
    (inner / "conftest.py").write_text('honeyphone_firmware = ["fw/adups-fota-5.4.0"]\n'
                                      'honeyphone_scenario = {"hours": 6}\n')
    (inner / "sub" / "test_from_conftest.py").write_text("HOURS = 6\n" + TESTS)
    make_bundle(inner / "sub", "5.3.0")
    (inner / "sub" / "test_from_module.py").write_text(
        'honeyphone_firmware = ["adups-fota-5.3.0"]\nhoneyphone_scenario = {"hours": 9}\n'
        "def test_leaks(honeyphone_analysis):\n"
        "    assert honeyphone_analysis.leaked('calls', 'bigdata.adups.com')\n"
        "    assert honeyphone_analysis.leaked_kinds == {'sms', 'call_log', 'contact'}\n"
        "    assert honeyphone_analysis.report['scenario']['hours'] == 9\n"
    )
    proc, outcomes = run_inner(inner, "--honeyphone-server", farm, ids=tmp_path / "ids.txt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outcomes == {"test_leaks[adups-fota-5.3.0]": "passed",
                        **{f"{t}[adups-fota-5.4.0]": "passed" for t in
                           ("test_no_sms_leak", "test_nothing_to_adups", "test_update_check_and_scenario")}}


def test_no_firmware_or_failed_analysis_errors_instead_of_passing(farm: str, tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    broken = make_bundle(tmp_path, "5.4-broken")
    (inner / "test_x.py").write_text("def test_clean(honeyphone_analysis):\n    assert not honeyphone_analysis.leaked()\n")
    proc, outcomes = run_inner(inner, "--honeyphone-server", farm, ids=tmp_path / "ids.txt")
    assert outcomes == {"test_clean": "error"} and "no firmware for honeyphone_analysis" in proc.stdout
    proc, outcomes = run_inner(inner, "--honeyphone-server", farm, "--honeyphone-firmware", str(broken),
                               ids=tmp_path / "ids.txt")
    assert outcomes == {"test_clean[adups-fota-5.4-broken]": "error"}
    assert "could not complete: the twin did not boot" in proc.stdout


def test_projects_without_the_fixture_are_untouched(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_ok():\n    pass\n")
    proc, outcomes = run_inner(tmp_path, ids=tmp_path / "ids.txt")
    assert proc.returncode == 0 and outcomes == {"test_ok": "passed"}
    assert "honeyphone:" not in proc.stdout
