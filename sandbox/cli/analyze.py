"""``honeyphone analyze``: one analysis on the local Docker engine, no orchestrator needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..settings import Settings
from .common import EXIT_ERROR, add_scenario_options, console, ensure_image

EXIT_BY_VERDICT = {"clean": 0, "leak": 1, "suspicious": 3}


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    """One-shot analysis on the local Docker engine, no orchestrator needed."""
    import json
    import shutil
    import tempfile

    from ..model import AnalysisRequest, CancelToken, ProgressEvent, Scenario, Stage
    from ..core.pipeline import run_analysis
    from ..device.twin import new_analysis_id
    from .progress import bar

    for image in ("twin", "fakenet"):
        ensure_image(settings, image, console())
    if args.clock_rate:
        from dataclasses import replace

        settings = replace(settings, clock=replace(settings.clock, fallback_rate=args.clock_rate))
    scenario = Scenario(hours=args.hours, seed=args.seed, contacts=args.contacts, sms=args.sms, calls=args.calls,
                        locale=args.locale)
    aid = new_analysis_id()
    request = AnalysisRequest(aid, Path(args.bundle), scenario)
    keep = args.artifacts is not None
    out = Path(args.artifacts) if keep else Path(tempfile.mkdtemp(prefix=f"honeyphone-{aid}-"))
    con = console()
    con.print(f"analysis [bold]{aid}[/]: {args.bundle}, {args.hours:g} device hours, seed {args.seed}")
    with bar(con, "analysis", args.hours, "device h") as update:
        def progress(ev: ProgressEvent) -> None:
            if ev.stage == Stage.FAST_FORWARDING and ev.device_hours is not None:
                update(ev.device_hours, "fast-forwarding")
            elif ev.stage in (Stage.FINISHED,):
                update(args.hours, ev.message)
            else:
                update(0.0 if ev.stage in (Stage.BOOTING, Stage.PLANTING) else args.hours, ev.message or ev.stage.value)

        outcome = run_analysis(settings, request, progress, CancelToken(), out)
    try:
        if outcome.error is not None:
            print(f"analysis {aid} could not be completed: {outcome.error}", file=sys.stderr)
            return EXIT_ERROR
        if args.report_json:
            Path(args.report_json).write_text(json.dumps(outcome.report, indent=2), encoding="utf-8")
        from ..core.summary_text import render_summary

        print(render_summary(outcome.report))
        if keep:
            print(f"artifacts: {out}")
        verdict = outcome.verdict.value if outcome.verdict else "clean"
        return EXIT_BY_VERDICT[verdict]
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


def add_analyze_command(sub: Any) -> None:
    from ..model import Scenario

    an = sub.add_parser("analyze", help="analyze a firmware bundle on this machine and print the verdict")
    an.add_argument("bundle", help="bundle directory, .tar.gz or .zip")
    add_scenario_options(an, hours_help="device hours to fast-forward (default 96)",
                         seed_help="canary seed (default 0)", defaults=Scenario())
    an.add_argument("--clock-rate", type=float, help="the device clock's fallback rate for a device that is never idle: device seconds per real second, never while an exchange is in flight (default 14400)")
    an.add_argument("--report-json", help="write the JSON report here")
    an.add_argument("--artifacts", help="keep artifacts (pcap, flows, syscalls, report) in this directory")
    an.set_defaults(func=cmd_analyze)
