"""The runner and the ``campaign`` command against an in-process farm with a runner faking reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_fakes import fake_farm, make_bundle

from sandbox.api.channel import open_channel
from sandbox.api.client import SandboxClient
from sandbox.campaign.farm import embedded_farm, listening
from sandbox.campaign.runner import CampaignRequest, run_campaign
from sandbox.cli import main
from sandbox.core.analysis import Scenario, Verdict
from sandbox.settings import Settings


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[str]:
    with fake_farm(tmp_path) as (address, _):
        yield address


def test_every_version_runs_with_the_same_scenario(farm: str, tmp_path: Path) -> None:
    b53, b54 = make_bundle(tmp_path, "5.3.0"), make_bundle(tmp_path, "5.4.0")
    client = SandboxClient(open_channel(farm))
    events: list[str] = []
    scenario = Scenario(hours=74, seed=11, contacts=5, sms=5, calls=5)
    req = CampaignRequest((b54, b53), scenario, baseline=b53, reports_dir=tmp_path / "r")
    c = run_campaign(client, req, lambda label, ev: events.append(label))
    assert c.baseline is not None and c.baseline.label == "adups-fota 5.3.0"
    assert [r.label for r in c.candidates] == ["adups-fota 5.4.0"]  # the repeated baseline runs once
    assert c.baseline.verdict == Verdict.LEAK and c.candidates[0].verdict == Verdict.CLEAN
    assert c.exit_code == 1
    assert set(events) == {"adups-fota 5.3.0", "adups-fota 5.4.0"}
    recs, _ = client.list(labels={"honeyphone.campaign": c.campaign_id})
    assert len(recs) == 2 and {r.scenario for r in recs} == {scenario}
    for r in c.results:
        assert Path(r.files["json"]).is_file() and r.analysis_id in Path(r.files["json"]).read_text()


def test_cli_campaign_writes_junit_html_and_exits_1(farm: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    b53, b54 = make_bundle(tmp_path, "5.3.0"), make_bundle(tmp_path, "5.4.0")
    junit, html = tmp_path / "out" / "j.xml", tmp_path / "out" / "c.html"
    rc = main(["campaign", str(b54), "--baseline", str(b53), "--server", farm, "--hours", "74",
               "--junit", str(junit), "--html", str(html), "--contacts", "5", "--sms", "5", "--calls", "5"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "fixed:       call_log, contact, sms to bigdata.adups.com" in out
    assert f"junit: {junit}" in out and f"html:  {html}" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    assert "adups-fota 5.4.0 vs baseline adups-fota 5.3.0" in html.read_text()
    assert len(list((tmp_path / "out" / "c.reports").glob("*.json"))) == 2


@pytest.mark.parametrize(("versions", "code"), [(["5.4.0", "5.5.0"], 0), (["5.4.0", "5.4-sus"], 3),
                                                (["5.4.0", "5.4-broken"], 2), (["5.3.0", "5.4-broken"], 1)])
def test_cli_exit_codes(farm: str, tmp_path: Path, versions: list[str], code: int,
                        capsys: pytest.CaptureFixture[str]) -> None:
    bundles = [str(make_bundle(tmp_path, v)) for v in versions]
    assert main(["campaign", *bundles, "--server", farm, "--hours", "2"]) == code
    out = capsys.readouterr().out
    if "5.4-broken" in versions:
        assert "adups-fota 5.4-broken: the twin did not boot" in out


def test_missing_bundle_and_dead_server_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", str(tmp_path / "nope")]) == 2
    assert "no such bundle" in capsys.readouterr().err
    b = make_bundle(tmp_path, "5.4.0")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    assert main(["campaign", str(b), "--server", dead]) == 2
    assert "unavailable" in capsys.readouterr().err


def test_embedded_farm_runs_and_removes_its_store(tmp_path: Path) -> None:
    from workers.capacity import docker_answers

    settings = Settings(data_dir=tmp_path / "data")
    if not docker_answers(settings):
        pytest.skip("the embedded worker needs Docker to answer")
    b = make_bundle(tmp_path, "5.4.0")
    with embedded_farm(settings, 1, runner="campaign_fakes:make_runner") as address:
        assert listening(address)
        c = run_campaign(SandboxClient(open_channel(address)), CampaignRequest((b,), Scenario(hours=2)))
    assert c.exit_code == 0 and c.candidates[0].verdict == Verdict.CLEAN
    assert not listening(address)
    assert list((tmp_path / "data" / "campaign" / "farms").iterdir()) == []
