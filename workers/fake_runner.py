"""A runner that pretends: no Docker, no device, deterministic results.

For tests, benchmarks and demos of the farm (``--runner
workers.fake_runner:make_runner``).  It takes ``scenario.hours / 100`` seconds
(override with the label ``fake.seconds``), reports fast-forward progress every
eighth of the way, honours cancellation, writes two small artifacts and picks
the verdict from the seed (0 clean, 1 leak, 2 suspicious, repeating) or the
label ``fake.verdict``.  The label ``fake.error`` makes it fail with that text.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sandbox.model import (
    AnalysisOutcome,
    AnalysisRequest,
    CancelToken,
    ProgressEvent,
    ProgressFn,
    Runner,
    Stage,
    Verdict,
)
from sandbox.settings import Settings

_VERDICTS = (Verdict.CLEAN, Verdict.LEAK, Verdict.SUSPICIOUS)
STEPS = 8


def run_fake(request: AnalysisRequest, progress: ProgressFn, token: CancelToken, workdir: Path) -> AnalysisOutcome:
    s = request.scenario
    seconds = float(request.labels.get("fake.seconds", s.hours / 100))
    aid = request.analysis_id
    progress(ProgressEvent(Stage.BOOTING, "booting fake device"))
    progress(ProgressEvent(Stage.PLANTING, f"planting {s.contacts} contacts, {s.sms} sms, {s.calls} calls"))
    for step in range(1, STEPS + 1):
        deadline = time.monotonic() + seconds / STEPS
        while time.monotonic() < deadline:
            if token.cancelled:
                return AnalysisOutcome(aid, None, {}, {}, error="cancelled")
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        progress(ProgressEvent(Stage.FAST_FORWARDING, f"step {step}/{STEPS}", s.hours * step / STEPS))
    progress(ProgressEvent(Stage.ANALYZING, "analyzing captures"))
    if "fake.error" in request.labels:
        return AnalysisOutcome(aid, None, {}, {}, error=request.labels["fake.error"])
    verdict = Verdict(request.labels["fake.verdict"]) if "fake.verdict" in request.labels else _VERDICTS[s.seed % 3]
    out = workdir / aid
    out.mkdir(parents=True, exist_ok=True)
    firmware = request.bundle_path.read_bytes()
    (out / "flows.json").write_text(f'{{"analysis": "{aid}", "firmware_bytes": {len(firmware)}}}\n')
    (out / "report.html").write_text(f"<html><body>{aid}: {verdict.value}</body></html>\n")
    report: dict[str, object] = {
        "analysis_id": aid, "verdict": verdict.value, "hours": s.hours, "seed": s.seed,
        "firmware_bytes": len(firmware), "findings": [] if verdict == Verdict.CLEAN else [{"kind": "fake"}],
    }
    return AnalysisOutcome(aid, verdict, report, {"flows.json": out / "flows.json", "report.html": out / "report.html"})


def make_runner(settings: Settings) -> Runner:
    workdir = Path(tempfile.mkdtemp(prefix="fake-runner-", dir=_tmp_root(settings)))

    def runner(request: AnalysisRequest, progress: ProgressFn, token: CancelToken) -> AnalysisOutcome:
        return run_fake(request, progress, token, workdir)

    return runner


def _tmp_root(settings: Settings) -> Path:
    root = settings.data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root
