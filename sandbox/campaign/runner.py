"""Run every version of a campaign on a farm at once, under one scenario, and collect results.

All bundles are uploaded and queued first with the SAME ``Scenario`` (so the
same seed, hours and item counts: differences between the reports are the
firmware's, not the scenario's), then one thread per analysis follows its
event stream with the ordinary ``SandboxClient``.  If the caller is
interrupted, every analysis this campaign queued (and only those) is
cancelled on the way out.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from sandbox.model import Scenario, Verdict
from sandbox.errors import HoneyphoneError
from sandbox.orchestrator.model import AnalysisState, EventRecord

from .model import Campaign, VersionResult, version_from_report

EventFn = Callable[[str, EventRecord], None]  # (bundle label, event)
REPORT_ARTIFACTS = {"report.json": "json", "report.html": "html"}


@dataclass(frozen=True)
class CampaignRequest:
    bundles: tuple[Path, ...]  # versions to compare; the baseline may be repeated here, it runs once
    scenario: Scenario
    baseline: Path | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    reports_dir: Path | None = None  # save each version's JSON (and HTML, when the farm made one) here


@dataclass(frozen=True)
class Submitted:
    bundle: Path
    name: str
    version: str
    analysis_id: str


def bundle_identity(bundle: Path) -> tuple[str, str]:
    """(name, version) from a bundle directory's manifest; the file name when that is not possible.

    Only a fallback for analyses that fail before their report names the
    firmware; archives are not opened here (the worker validates them).
    """
    from sandbox.bundle.manifest import validate_manifest

    manifest = bundle / "firmware.toml"
    if bundle.is_dir() and manifest.is_file():
        try:
            fw = validate_manifest(manifest.read_bytes()).firmware
            return fw.name, fw.version
        except (HoneyphoneError, OSError):
            pass
    return bundle.name, "?"


def upload(client: Any, bundle: Path) -> str:
    """Upload a bundle directory (packed deterministically, as ``submit`` does) or archive; its sha256."""
    from sandbox.bundle.pack import pack_bundle

    if bundle.is_dir():
        with tempfile.TemporaryFile() as tmp:
            pack_bundle(bundle, cast(BinaryIO, tmp))
            tmp.seek(0)
            sha, _ = client.upload_firmware(tmp, bundle.resolve().name + ".tar.gz")
    elif bundle.is_file():
        with bundle.open("rb") as f:
            sha, _ = client.upload_firmware(f, bundle.name)
    else:
        raise HoneyphoneError(f"{bundle}: no such bundle", fix="pass a bundle directory, .tar, .tar.gz or .zip")
    return str(sha)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "firmware"


def _save_reports(client: Any, s: Submitted, doc: str, dest: Path) -> dict[str, str]:
    dest.mkdir(parents=True, exist_ok=True)
    stem = _slug(f"{s.name}-{s.version}-{s.analysis_id[:8]}")
    files: dict[str, str] = {}
    json_path = dest / f"{stem}.json"
    json_path.write_text(doc + "\n", encoding="utf-8")
    files["json"] = str(json_path)
    _, artifacts = client.get(s.analysis_id)
    for a in artifacts:
        kind = REPORT_ARTIFACTS.get(a.name)
        if kind == "html":
            path = dest / f"{stem}.html"
            client.download_artifact(s.analysis_id, a.name, path)
            files[kind] = str(path)
    return files


@dataclass(frozen=True)
class FarmOutcome:
    """How one analysis on the farm ended: a verdict and its report, or why not."""

    analysis_id: str
    verdict: Verdict | None
    report: Mapping[str, object]
    report_json: str
    error: str | None
    seconds: float


def await_outcome(client: Any, analysis_id: str, on_event: Callable[[EventRecord], None] | None = None) -> FarmOutcome:
    """Follow one analysis to its end; failures of the analysis or of the connection come back as ``error``."""
    import grpc

    started = time.monotonic()

    def failed(error: str) -> FarmOutcome:
        return FarmOutcome(analysis_id, None, {}, "", error, time.monotonic() - started)

    try:
        for ev in client.watch(analysis_id):
            if on_event is not None:
                on_event(ev)
        rec, _ = client.get(analysis_id)
        seconds = (rec.finished_at - rec.created_at) if rec.finished_at else time.monotonic() - started
        if rec.state != AnalysisState.SUCCEEDED or rec.verdict is None:
            return failed(rec.error or f"analysis {rec.state.value}")
        _, doc = client.report(analysis_id)
        report = json.loads(doc) if doc else {}
        return FarmOutcome(analysis_id, rec.verdict, report if isinstance(report, dict) else {}, doc, None, seconds)
    except grpc.RpcError as exc:
        return failed(f"lost the analysis: {exc.code().name.lower()}: {exc.details()}")
    except (HoneyphoneError, ValueError) as exc:
        return failed(f"could not read the result: {exc}")


def follow(client: Any, s: Submitted, on_event: EventFn | None = None, reports_dir: Path | None = None) -> VersionResult:
    """Wait for one analysis to end and turn it into a ``VersionResult`` (never raises for the analysis itself)."""
    import grpc

    label = f"{s.name} {s.version}"
    out = await_outcome(client, s.analysis_id, (lambda ev: on_event(label, ev)) if on_event is not None else None)
    files: dict[str, str] = {}
    error = out.error
    if error is None and reports_dir is not None:
        try:
            files = _save_reports(client, s, out.report_json, reports_dir)
        except (grpc.RpcError, OSError) as exc:
            error = f"could not save the reports: {exc}"
    return version_from_report(
        str(s.bundle), out.report, out.verdict if error is None else None, name=s.name, version=s.version,
        analysis_id=s.analysis_id, error=error, seconds=out.seconds, files=files,
    )


def _cancel_all(client: Any, submitted: list[Submitted]) -> None:
    import grpc

    for s in submitted:
        try:
            client.cancel(s.analysis_id)
        except grpc.RpcError:
            pass  # already finished, or the server is gone


def run_campaign(client: Any, request: CampaignRequest, on_event: EventFn | None = None) -> Campaign:
    """Queue every version (baseline first) under one scenario and wait for all of them."""
    order: list[Path] = [request.baseline] if request.baseline is not None else []
    seen = {p.resolve() for p in order}
    for b in request.bundles:
        if b.resolve() not in seen:
            seen.add(b.resolve())
            order.append(b)
    if not order:
        raise HoneyphoneError("a campaign needs at least one bundle")
    campaign_id = secrets.token_hex(4)
    submitted: list[Submitted] = []
    results: list[VersionResult | None] = [None] * len(order)
    try:
        for path in order:
            name, version = bundle_identity(path)
            sha = upload(client, path)
            labels = {**request.labels, "honeyphone.campaign": campaign_id, "honeyphone.bundle": path.name[:256]}
            rec = client.submit(sha, request.scenario, 0, labels)
            submitted.append(Submitted(path, name, version, rec.id))

        def work(i: int, s: Submitted) -> None:
            results[i] = follow(client, s, on_event, request.reports_dir)

        threads = [threading.Thread(target=work, args=(i, s), name=f"campaign-{s.analysis_id[:8]}", daemon=True)
                   for i, s in enumerate(submitted)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)  # short joins so Ctrl-C reaches this thread
    except BaseException:
        _cancel_all(client, submitted)
        raise
    done = tuple(r for r in results if r is not None)
    has_base = request.baseline is not None
    return Campaign(request.scenario, done[0] if has_base else None, done[1:] if has_base else done, campaign_id)
