"""``honeyphone campaign``: several firmware versions, one scenario, one verdict table.

It talks to a farm over gRPC like ``submit``; with no ``--server`` and
nothing listening at the default address it starts an embedded orchestrator
and local worker (what ``serve --local-worker`` runs) for the campaign's
duration, so it also works on a fresh machine.  Exit codes as ``analyze``,
over every version including the baseline: 1 if any leaks, else 3 if any is
suspicious, else 2 if any could not complete, else 0 (2 also on errors).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from ..model import Scenario
from ..errors import HoneyphoneError
from ..settings import Settings
from .common import add_scenario_options, client_options, client_security, ensure_image, rpc_errors


@contextmanager
def _farm(args: argparse.Namespace, settings: Settings, versions: int, console: Console) -> Iterator[Any]:
    """A ``SandboxClient`` for ``--server``, the default farm, or an embedded one."""
    from ..api.channel import open_channel
    from ..api.client import SandboxClient
    from .farm import default_slots, embedded_farm, listening

    address = args.server or settings.fleet.listen
    if args.server or listening(address):
        console.print(f"farm: {address}")
        yield SandboxClient(open_channel(address, client_security(args)))
        return
    for name in ("twin", "fakenet"):
        ensure_image(settings, name, console)
    slots = args.slots or default_slots(versions, settings)
    with embedded_farm(settings, slots) as local:
        console.print(f"farm: none at {address}; embedded orchestrator at {local} with a {slots}-slot local worker")
        yield SandboxClient(open_channel(local))


class _Bars:
    """One progress bar per version, fed from the runner's threads."""

    def __init__(self, progress: Any, hours: float) -> None:
        self._progress = progress
        self._hours = hours
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, label: str, ev: Any) -> None:
        from ..model import Stage

        with self._lock:
            if label not in self._tasks:
                self._tasks[label] = self._progress.add_task(label, total=self._hours, step="")
            task = self._tasks[label]
        done = ev.device_hours
        if ev.stage == Stage.FINISHED:
            done = self._hours
        fields: dict[str, Any] = {"step": f"{ev.stage.value}: {ev.message}"[:60]}
        if done is not None:
            fields["completed"] = min(done, self._hours)
        self._progress.update(task, **fields)


def _print_results(campaign: Any, junit: Path | None, html: Path | None) -> None:
    from ..campaign.diff import diff_campaign, render_diffs
    from ..campaign.table import render_table

    s = campaign.scenario
    print(f"campaign {campaign.campaign_id}: {len(campaign.results)} version(s), {s.hours:g} device hours, "
          f"seed {s.seed}, {s.contacts} contacts, {s.sms} SMS, {s.calls} calls\n")
    print(render_table(campaign))
    diffs = diff_campaign(campaign)
    if diffs:
        print("\n" + render_diffs(diffs))
    leaking = [r for r in campaign.results if r.completed and r.leaks]
    if leaking:
        print("\nfindings (first of each kind and destination):")
        for r in leaking:
            for d in r.leaks:
                print(f"  {r.label}: {d.describe()}")
    saved = [r for r in campaign.results if r.files]
    if saved:
        print("\nreports:")
        for r in saved:
            print(f"  {r.label}: " + ", ".join(f"{k} {p}" for k, p in sorted(r.files.items())))
    written = [f"junit: {junit}"] if junit is not None else []
    written += [f"html:  {html}"] if html is not None else []
    if written:
        print("\n" + "\n".join(written))


@rpc_errors
def cmd_campaign(args: argparse.Namespace, settings: Settings) -> int:
    from ..campaign.junit import render_junit
    from ..campaign.page import render_page
    from ..campaign.runner import CampaignRequest, run_campaign
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bundles = tuple(Path(b) for b in args.bundles)
    baseline = Path(args.baseline) if args.baseline else None
    for b in (*bundles, *((baseline,) if baseline else ())):
        if not b.exists():
            raise HoneyphoneError(f"{b}: no such bundle", fix="pass bundle directories, .tar.gz or .zip files")
    d = Scenario()
    scenario = Scenario(
        hours=args.hours if args.hours is not None else d.hours, seed=args.seed if args.seed is not None else d.seed,
        contacts=args.contacts if args.contacts is not None else d.contacts,
        sms=args.sms if args.sms is not None else d.sms, calls=args.calls if args.calls is not None else d.calls,
        locale=args.locale or d.locale,
    )
    junit = Path(args.junit) if args.junit else None
    html = Path(args.html) if args.html else None
    reports = Path(args.reports) if args.reports else (html.with_name(html.stem + ".reports") if html else None)
    request = CampaignRequest(bundles, scenario, baseline, reports_dir=reports)
    versions = len({p.resolve() for p in (*bundles, *((baseline,) if baseline else ()))})
    console = Console(stderr=True)
    with _farm(args, settings, versions, console) as client:
        columns = (TextColumn("[bold]{task.description}"), BarColumn(),
                   TextColumn("{task.completed:.1f}/{task.total:.0f} device h"), TextColumn("{task.fields[step]}"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            campaign = run_campaign(client, request, _Bars(progress, scenario.hours))
    for path, text in ((junit, render_junit(campaign, hostname=socket.gethostname()) if junit else ""),
                       (html, render_page(campaign, html.parent.resolve()) if html else "")):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    _print_results(campaign, junit, html)
    sys.stdout.flush()
    return int(campaign.exit_code)


def add_campaign_command(sub: Any) -> None:
    p = sub.add_parser(
        "campaign", help="analyze several firmware versions under one scenario and compare them",
        description="Run every BUNDLE (and the baseline) with the same scenario and seed, in parallel on a farm, "
                    "and print a verdict table and the differences against the baseline.  Exit 1 if any version "
                    "leaks, 3 if any is suspicious, 2 if any could not complete, else 0.",
    )
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle directories, .tar.gz or .zip files")
    p.add_argument("--baseline", metavar="BUNDLE", help="compare every BUNDLE with this one (it is analyzed too)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here (one testcase per version)")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML summary here")
    p.add_argument("--reports", metavar="DIR",
                   help="save each version's report here (default: FILE.reports/ next to --html, else not saved)")
    add_scenario_options(p, hours_help="device hours to simulate (default 96)",
                         seed_help="canary seed, the same for every version (default 0)")
    p.add_argument("--slots", type=int, help="slots of the embedded worker (default: one per version the host holds)")
    client_options(p)
    p.set_defaults(func=cmd_campaign)
