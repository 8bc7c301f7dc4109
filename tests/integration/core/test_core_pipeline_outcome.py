"""Why a pipeline run could not complete, and whether a farm should try again.

A worker reports a failed outcome as retryable (the orchestrator re-leases it,
maybe to another worker, up to ``max_attempts``) unless another attempt cannot
help: a rejected bundle is rejected everywhere, but a worker that cannot run
the bundle's profile, a boot timeout on a loaded host or an engine hiccup are
worth another attempt.  Both runs stop before creating anything, and leave
nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from sandbox.model import AnalysisOutcome, AnalysisRequest, CancelToken, ProgressEvent, Scenario, Stage
from sandbox.containers.emulator_container import kvm_available
from sandbox.core.pipeline import run_analysis
from sandbox.device.twin import new_analysis_id
from sandbox.settings import Settings

pytestmark = pytest.mark.integration


def _run(
    settings: Settings, client: docker.DockerClient, bundle: Path, tmp: Path
) -> tuple[AnalysisOutcome, list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    aid = new_analysis_id()
    outcome = run_analysis(settings, AnalysisRequest(aid, bundle, Scenario(hours=1)), events.append, CancelToken(),
                           tmp / aid, client=client)
    label = {"label": [f"{settings.label_analysis}={aid}"]}
    assert client.containers.list(all=True, ignore_removed=True, filters=label) == [] and client.networks.list(filters=label) == []
    return outcome, events


def test_rejected_bundle_is_not_retryable(hp_settings: Settings, docker_engine: docker.DockerClient,
                                          tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "files").mkdir(parents=True)  # no firmware.toml
    outcome, events = _run(hp_settings, docker_engine, bundle, tmp_path)
    assert outcome.error and "firmware.toml" in outcome.error and outcome.verdict is None
    assert outcome.retryable is False
    assert events[-1].stage == Stage.FAILED


def test_profile_this_worker_cannot_run_is_retryable(hp_settings: Settings, docker_engine: docker.DockerClient,
                                                     tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "files").mkdir(parents=True)
    (bundle / "apps").mkdir()
    (bundle / "apps" / "Fota.apk").write_bytes(b"PK\x03\x04")
    (bundle / "firmware.toml").write_text(
        '[firmware]\nname = "fota"\nversion = "1"\nprofile = "android"\n\n[[apps]]\npath = "apps/Fota.apk"\n'
    )
    outcome, events = _run(hp_settings, docker_engine, bundle, tmp_path)
    assert outcome.error and "android" in outcome.error
    assert outcome.retryable is True
    # the preflight stops it before any network or container: it names what is missing and the fix
    assert not any(e.stage == Stage.BOOTING for e in events)
    if kvm_available():
        assert "no Android emulator image here" in outcome.error and "images build android" in outcome.error
    else:
        assert "/dev/kvm" in outcome.error
