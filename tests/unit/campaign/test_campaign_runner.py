"""The runner against an in-process farm with a runner faking reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_fakes import fake_farm, make_bundle

from sandbox.api.channel import open_channel
from sandbox.api.client import SandboxClient
from sandbox.campaign.runner import CampaignRequest, run_campaign
from sandbox.model import Scenario, Verdict


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
