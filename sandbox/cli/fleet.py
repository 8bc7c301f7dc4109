"""The farm's commands: ``serve``, ``worker``, ``submit``, ``status``, ``list``,
``cancel``, ``report`` and ``artifacts``.

``serve`` listens on 127.0.0.1:50551 by default (``Settings.fleet.listen``),
and every client command talks to that address unless ``--server`` says
otherwise.  ``submit --wait`` exits 0 clean, 1 leak, 3 suspicious and 2 when
the analysis could not complete (failed or cancelled) or on any error.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ..bundle.pack import pack_bundle
from ..model import Scenario, Stage, Verdict
from ..core.runners import default_cleanup, load_runner
from ..errors import EnvironmentProblem, HoneyphoneError
from ..settings import Settings
from .common import add_scenario_options, client_options, client_security, console, rpc_errors, sandbox_client

if TYPE_CHECKING:
    from workers.agent import WorkerAgent

    from ..api.channel import ClientSecurity
    from ..api.client import SandboxClient

EXIT_CLEAN, EXIT_LEAK, EXIT_INCOMPLETE, EXIT_SUSPICIOUS = 0, 1, 2, 3
_VERDICT_EXIT = {Verdict.CLEAN: EXIT_CLEAN, Verdict.LEAK: EXIT_LEAK, Verdict.SUSPICIOUS: EXIT_SUSPICIOUS}
_log = logging.getLogger("honeyphone")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# -- settings and security ------------------------------------------------------


def fleet_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    if getattr(args, "data", None):
        settings = replace(settings, data_dir=args.data)
    changes: dict[str, Any] = {}
    for name in ("lease_seconds", "max_attempts", "store"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    return replace(settings, fleet=replace(settings.fleet, **changes)) if changes else settings


# -- runners and workers ----------------------------------------------------------


def _build_agent(
    args: argparse.Namespace, settings: Settings, address: str, security: ClientSecurity, slots: int
) -> WorkerAgent:
    from workers.agent import WorkerAgent, WorkerConfig
    from workers.capacity import check_slots, default_worker_name, detect_profiles

    from ..api.channel import open_channel
    from ..api.fleet_client import FleetClient

    check_slots(slots, settings)
    profiles = tuple(args.profiles.split(",")) if args.profiles else detect_profiles(settings)
    if not profiles:
        raise EnvironmentProblem(
            "no device profile works on this host (Docker does not answer)",
            fix="start Docker (scripts/setup-host.sh), or name profiles with --profiles",
        )
    runner = load_runner(args.runner, settings)
    cleanup = (lambda ids: None) if args.no_cleanup else default_cleanup(settings, args.cleanup_all)
    config = WorkerConfig(slots=slots, name=args.name or default_worker_name(), profiles=profiles)
    return WorkerAgent(settings, config, FleetClient(open_channel(address, security)), runner, cleanup)


@contextmanager
def _signals(first: Callable[[], None], second: Callable[[], None]) -> Iterator[None]:
    """SIGTERM/SIGINT: ``first`` the first time, ``second`` after that."""
    count = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal count
        count += 1
        print(f"{signal.Signals(signum).name}: {'draining' if count == 1 else 'aborting'}", file=sys.stderr)
        (first if count == 1 else second)()

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@rpc_errors
def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    _logging()
    settings = fleet_settings(args, settings)
    address = args.orchestrator or settings.fleet.listen
    agent = _build_agent(args, settings, address, client_security(args), args.slots)
    with _signals(agent.drain, agent.abort):
        return int(agent.run())


def redact_store(url: str) -> str:
    """The store URL without its password, for the start-up line and logs."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


@rpc_errors
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from ..api.channel import ClientSecurity
    from ..api.server import Security, split_address, start_server
    from ..orchestrator.runtime import Orchestrator

    _logging()
    settings = fleet_settings(args, settings)
    listen = args.listen or settings.fleet.listen
    security = Security.from_files(args.token_file, args.tls_cert, args.tls_key, args.tls_client_ca)
    orch = Orchestrator.open(settings.data_dir / "orchestrator", settings.fleet)
    agent = None
    try:
        orch.start()
        server = start_server(orch, settings.fleet, listen, security)
        host, _ = split_address(listen)
        where = redact_store(settings.fleet.store) if settings.fleet.store else f"data {settings.data_dir}"
        print(f"honeyphone orchestrator listening on {host}:{server.port} ({where})", flush=True)
        stop = threading.Event()
        worker_thread = None
        if args.local_worker:
            local = ClientSecurity(security.token, security.tls_cert if security.tls else None)
            target = f"{'localhost' if security.tls else '127.0.0.1'}:{server.port}"
            agent = _build_agent(args, settings, target, local, args.local_worker)
            worker_thread = threading.Thread(target=agent.run, name="local-worker", daemon=True)
            worker_thread.start()

        def drain() -> None:
            if agent is not None:
                agent.drain()
            stop.set()

        def abort() -> None:
            if agent is not None:
                agent.abort()
            stop.set()

        with _signals(drain, abort):
            stop.wait()
            if worker_thread is not None:
                worker_thread.join()
        server.stop(grace=5.0)
    finally:
        orch.close()
    return 0


# -- client commands --------------------------------------------------------------


def _labels(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HoneyphoneError(f"--label {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


@contextmanager
def _bundle_stream(bundle: Path) -> Iterator[tuple[BinaryIO, str]]:
    if bundle.is_dir():
        with tempfile.TemporaryFile() as tmp:
            pack_bundle(bundle, cast(BinaryIO, tmp))
            tmp.seek(0)
            yield cast(BinaryIO, tmp), bundle.resolve().name + ".tar.gz"
    elif bundle.is_file():
        with bundle.open("rb") as f:
            yield f, bundle.name
    else:
        raise HoneyphoneError(f"{bundle}: no such bundle", fix="pass a bundle directory, .tar, .tar.gz or .zip")


@rpc_errors
def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    client = sandbox_client(args, settings)
    with _bundle_stream(Path(args.bundle)) as (stream, filename):
        sha, size = client.upload_firmware(stream, filename)
    d = Scenario()
    scenario = Scenario(
        hours=args.hours if args.hours is not None else d.hours, seed=args.seed if args.seed is not None else d.seed,
        contacts=args.contacts if args.contacts is not None else d.contacts,
        sms=args.sms if args.sms is not None else d.sms, calls=args.calls if args.calls is not None else d.calls,
        locale=args.locale or d.locale, profile=args.profile or d.profile,
    )
    rec = client.submit(sha, scenario, args.priority, _labels(args.label))
    print(rec.id, flush=True)
    console().print(f"uploaded {filename} ({size} bytes, sha256 {sha[:12]}…); analysis {rec.id} queued")
    if not args.wait:
        return 0
    return _wait(client, rec.id, scenario.hours)


def _wait(client: SandboxClient, analysis_id: str, hours: float) -> int:
    from .progress import bar

    with bar(console(), analysis_id, hours, "device h") as update:
        done = 0.0
        for ev in client.watch(analysis_id):
            if ev.device_hours is not None:
                done = ev.device_hours
            if ev.stage == Stage.FINISHED:
                done = hours
            update(done, f"{ev.stage.value}: {ev.message}")
    rec, _ = client.get(analysis_id)
    if rec.verdict is not None and rec.state.value == "succeeded":
        print(f"{analysis_id} {rec.verdict.value}")
        return _VERDICT_EXIT[rec.verdict]
    print(f"{analysis_id} {rec.state.value}: {rec.error or ''}".rstrip(": "))
    return EXIT_INCOMPLETE


def _fmt_time(t: float | None) -> str:
    import datetime

    return "" if t is None else datetime.datetime.fromtimestamp(t).isoformat(timespec="seconds")


@rpc_errors
def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    rec, artifacts = sandbox_client(args, settings).get(args.id)
    rows = [
        ("id", rec.id), ("state", rec.state.value), ("stage", rec.stage.value),
        ("verdict", rec.verdict.value if rec.verdict else ""), ("error", rec.error or ""),
        ("device hours", "" if rec.device_hours is None else f"{rec.device_hours:.1f}/{rec.scenario.hours:g}"),
        ("attempts", f"{rec.attempts}/{rec.max_attempts}"), ("worker", rec.worker_id or ""),
        ("firmware", rec.firmware_sha256), ("priority", str(rec.priority)),
        ("scenario", ", ".join(f"{k}={v}" for k, v in vars(rec.scenario).items())),
        ("labels", ", ".join(f"{k}={v}" for k, v in rec.labels.items())),
        ("created", _fmt_time(rec.created_at)), ("finished", _fmt_time(rec.finished_at)),
        ("artifacts", ", ".join(f"{a.name} ({a.size} B)" for a in artifacts)),
    ]
    for key, value in rows:
        if value:
            print(f"{key + ':':14}{value}")
    return 0


@rpc_errors
def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from ..orchestrator.model import AnalysisState

    client = sandbox_client(args, settings)
    state = AnalysisState(args.state) if args.state else None
    token, shown = "", 0
    while shown < args.limit:
        recs, token = client.list(state, _labels(args.label), min(500, args.limit - shown), token)
        for r in recs:
            verdict = r.verdict.value if r.verdict else "-"
            labels = ",".join(f"{k}={v}" for k, v in r.labels.items()) or "-"
            print(f"{r.id}\t{r.state.value}\t{r.stage.value}\t{verdict}\t{_fmt_time(r.created_at)}\t{labels}")
        shown += len(recs)
        if not token:
            break
    return 0


@rpc_errors
def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    rec = sandbox_client(args, settings).cancel(args.id)
    print(f"{rec.id} {rec.state.value}")
    return 0


@rpc_errors
def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    _, doc = sandbox_client(args, settings).report(args.id)
    if args.output:
        Path(args.output).write_text(doc + "\n")
    else:
        sys.stdout.write(doc + "\n")
    return 0


@rpc_errors
def cmd_artifacts(args: argparse.Namespace, settings: Settings) -> int:
    client = sandbox_client(args, settings)
    _, artifacts = client.get(args.id)
    if not artifacts:
        raise HoneyphoneError(f"analysis {args.id} has no artifacts (yet)", fix=f"honeyphone status {args.id}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for a in artifacts:
        size = client.download_artifact(args.id, a.name, out / a.name)
        print(f"{out / a.name}\t{size}")
    return 0


# -- parser -------------------------------------------------------------------------


def _worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="worker name shown in events (default HOST-PID)")
    p.add_argument("--profiles", help="comma-separated profiles to offer (default: detect twin/android)")
    p.add_argument("--runner", help=argparse.SUPPRESS)  # MODULE:FUNCTION factory, for tests and demos
    p.add_argument("--no-cleanup", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--cleanup-all", action="store_true",
        help="at start remove every Honeyphone container/network on this host (only when no other worker runs here)",
    )


def add_fleet_commands(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the orchestrator (and optionally a local worker)")
    serve.add_argument("--listen", metavar="ADDR", help="address to listen on (default 127.0.0.1:50551)")
    serve.add_argument("--data", type=Path, metavar="DIR", help="data directory (default: --data-dir)")
    serve.add_argument("--local-worker", type=int, default=0, metavar="N", help="also run a worker with N slots")
    serve.add_argument("--token-file", type=Path, help="require this bearer token from every client")
    serve.add_argument("--tls-cert", type=Path, help="server certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    serve.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA (mTLS)")
    serve.add_argument("--lease-seconds", type=int, help="lease term; a silent worker loses work after it (default 30)")
    serve.add_argument("--max-attempts", type=int, help="leases an analysis may use up (default 3)")
    serve.add_argument(
        "--store", metavar="URL",
        help="postgresql://user@host:port/db: keep state in PostgreSQL, shared by every orchestrator"
             " given the same URL (default: HONEYPHONE_STORE, else SQLite under the data dir)",
    )
    _worker_options(serve)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run analyses leased from an orchestrator")
    worker.add_argument("--orchestrator", metavar="HOST:PORT", help="orchestrator address (default 127.0.0.1:50551)")
    worker.add_argument("--slots", type=int, default=1, help="analyses to run at once (default 1)")
    worker.add_argument("--token-file", type=Path, help="file holding the bearer token")
    worker.add_argument("--tls-ca", type=Path, help="CA certificate to verify the orchestrator (implies TLS)")
    worker.add_argument("--tls", action="store_true", help="use TLS with the system trust store")
    _worker_options(worker)
    worker.set_defaults(func=cmd_worker)

    submit = sub.add_parser("submit", help="upload a bundle and queue an analysis; --wait to follow it")
    submit.add_argument("bundle", help="bundle directory, .tar, .tar.gz or .zip")
    submit.add_argument("--wait", action="store_true", help="follow progress; exit 0 clean, 1 leak, 3 suspicious, 2 incomplete")
    add_scenario_options(submit, hours_help="device hours to simulate (1..720, default 96)",
                         seed_help="scenario seed (default 0)")
    submit.add_argument("--profile", choices=["twin", "android"])
    submit.add_argument("--priority", type=int, default=0, help="-100..100, higher first (default 0)")
    submit.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    client_options(submit)
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="show one analysis")
    status.add_argument("id")
    client_options(status)
    status.set_defaults(func=cmd_status)

    ls = sub.add_parser("list", help="list analyses, newest first")
    ls.add_argument("--state", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    ls.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    ls.add_argument("--limit", type=int, default=50)
    client_options(ls)
    ls.set_defaults(func=cmd_list)

    cancel = sub.add_parser("cancel", help="cancel a queued or running analysis")
    cancel.add_argument("id")
    client_options(cancel)
    cancel.set_defaults(func=cmd_cancel)

    report = sub.add_parser("report", help="print or save the JSON report")
    report.add_argument("id")
    report.add_argument("-o", "--output", metavar="FILE")
    client_options(report)
    report.set_defaults(func=cmd_report)

    arts = sub.add_parser("artifacts", help="download every artifact of an analysis")
    arts.add_argument("id")
    arts.add_argument("--out", required=True, metavar="DIR")
    client_options(arts)
    arts.set_defaults(func=cmd_artifacts)
