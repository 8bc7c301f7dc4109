"""The embedded farm ``honeyphone campaign`` starts when no farm runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from campaign_fakes import make_bundle

from sandbox.api.channel import open_channel
from sandbox.api.client import SandboxClient
from sandbox.campaign.runner import CampaignRequest, run_campaign
from sandbox.cli.farm import embedded_farm, listening
from sandbox.model import Scenario, Verdict
from sandbox.settings import Settings


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
