"""The ``honeyphone`` command line.

Commands are thin: they parse arguments, build one ``Settings``, call the
library and render results.  Every error is printed with what went wrong and
how to fix it; the exit code for an error is 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from .errors import HoneyphoneError
from .settings import Settings

EXIT_ERROR = 2


def _console() -> Console:
    return Console(stderr=True)


def cmd_images_build(args: argparse.Namespace, settings: Settings) -> int:
    from .cli_progress import spinner
    from .containers.engine import docker_client
    from .images import ImageBuilder

    console = _console()
    if "android" in args.names:
        # The SDK check fails fast (no Docker, no network needed) when nothing is there.
        from .images.android_sdk import find_sdk, no_sdk_error

        if not args.download and find_sdk(args.api, os.environ, args.sdk) is None:
            raise no_sdk_error(args.api, os.environ)
    client = docker_client(settings)
    for name in args.names:
        with spinner(console, f"image {name}") as update:
            result = ImageBuilder(settings, client, progress=update).build(
                name, force=args.force, api=args.api, sdk=args.sdk, download=args.download)
        state = "cached" if result.cached else f"built in {result.seconds:.1f}s"
        print(f"{result.tag} {result.image_id[:19]} ({state}, base {result.base})")
    return 0


def _ensure_image(settings: Settings, name: str) -> None:
    from .cli_progress import spinner
    from .containers.engine import docker_client
    from .images import ImageBuilder

    with spinner(_console(), f"image {name}") as update:
        ImageBuilder(settings, docker_client(settings), progress=update).build(name)


def cmd_device_up(args: argparse.Namespace, settings: Settings) -> int:
    """Boot a contained twin (fakenet, firewall rules, CA) with the bundle installed and running."""
    from .bundle import load_bundle
    from .cli_progress import spinner
    from .containers.engine import docker_client
    from .core.environment import bring_up, tear_down
    from .device import AdbServer
    from .device.firmware import install_twin_bundle, start_services
    from .device.twin import new_analysis_id

    client = docker_client(settings)
    for image in ("twin", "fakenet"):
        _ensure_image(settings, image)
    analysis_id = args.id or new_analysis_id()
    workdir = settings.data_dir / "tmp" / "bundles"
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(Path(args.bundle), settings.bundle_limits, workdir)
    server = AdbServer.from_settings(settings)
    try:
        with spinner(_console(), f"device {analysis_id}") as update:
            update("network, fakenet and twin")
            env = bring_up(settings, client, server, analysis_id)
            try:
                update("installing firmware")
                install_twin_bundle(env.twin.device, bundle)
                update("starting services")
                started = start_services(env.twin.device)
            except BaseException:
                tear_down(settings, client, analysis_id)
                raise
    finally:
        bundle.cleanup()
    handle = env.twin
    print(f"analysis id: {analysis_id}")
    print(f"adb serial:  {handle.device.serial}   (booted in {handle.boot_seconds:.2f}s)")
    print(f"fakenet:     {env.fakenet.ip} (the device's gateway and DNS; TLS intercepted)")
    print(f"firmware:    {bundle.manifest.firmware.name} {bundle.manifest.firmware.version}")
    for svc in started:
        print(f"service:     {svc.name} pid {svc.pid}")
    adb = " ".join(server.adb_argv())
    print(f"explore:     {adb} -s {handle.device.serial} shell")
    print(f"stop:        honeyphone device down {analysis_id}")
    return 0


def cmd_device_down(args: argparse.Namespace, settings: Settings) -> int:
    from .containers.cleanup import cleanup
    from .containers.engine import docker_client

    if not args.all and not args.id:
        raise HoneyphoneError("name a device id or pass --all", fix="honeyphone device list shows the ids")
    from .network.containment import remove_rules

    from .device import AdbServer

    client = docker_client(settings)
    # Disconnect first: an adb server keeps reconnecting to a serial it knows.
    server = AdbServer.from_settings(settings)
    if server.is_running():
        filters = {"label": [f"{settings.label_role}=device"]}
        if not args.all:
            filters["label"].append(f"{settings.label_analysis}={args.id}")
        for c in client.containers.list(all=True, ignore_removed=True, filters=filters):
            for net in (c.attrs.get("NetworkSettings", {}).get("Networks") or {}).values():
                if net.get("IPAddress"):
                    server.disconnect(f"{net['IPAddress']}:5555")
    report = cleanup(client, settings, None if args.all else args.id, extra=(remove_rules,))
    for c in report.containers:
        print(f"removed container {c}")
    for n in report.networks:
        print(f"removed network {n}")
    for o in report.other:
        print(f"removed {o}")
    for e in report.errors:
        print(f"error: {e}", file=sys.stderr)
    if not report.removed_anything:
        print("nothing to remove")
    return 1 if report.errors else 0


def cmd_device_list(args: argparse.Namespace, settings: Settings) -> int:
    from .containers.engine import docker_client

    client = docker_client(settings)
    for c in client.containers.list(all=True, ignore_removed=True, filters={"label": [f"{settings.label_role}=device"]}):
        aid = c.labels.get(settings.label_analysis, "?")
        nets = c.attrs.get("NetworkSettings", {}).get("Networks", {})
        ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), "")
        print(f"{aid}\t{c.status}\t{ip}:5555\t{c.name}")
    return 0


EXIT_BY_VERDICT = {"clean": 0, "leak": 1, "suspicious": 3}


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    """One-shot analysis on the local Docker engine, no orchestrator needed."""
    import json
    import shutil
    import tempfile

    from .cli_progress import bar
    from .core.analysis import AnalysisRequest, CancelToken, ProgressEvent, Scenario, Stage
    from .core.pipeline import run_analysis
    from .device.twin import new_analysis_id

    for image in ("twin", "fakenet"):
        _ensure_image(settings, image)
    if args.clock_rate:
        from dataclasses import replace

        settings = replace(settings, clock=replace(settings.clock, fallback_rate=args.clock_rate))
    scenario = Scenario(hours=args.hours, seed=args.seed, contacts=args.contacts, sms=args.sms, calls=args.calls,
                        locale=args.locale)
    aid = new_analysis_id()
    request = AnalysisRequest(aid, Path(args.bundle), scenario)
    keep = args.artifacts is not None
    out = Path(args.artifacts) if keep else Path(tempfile.mkdtemp(prefix=f"honeyphone-{aid}-"))
    console = _console()
    console.print(f"analysis [bold]{aid}[/]: {args.bundle}, {args.hours:g} device hours, seed {args.seed}")
    with bar(console, "analysis", args.hours, "device h") as update:
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
        from .core.summary_text import render_summary

        print(render_summary(outcome.report))
        if keep:
            print(f"artifacts: {out}")
        verdict = outcome.verdict.value if outcome.verdict else "clean"
        return EXIT_BY_VERDICT[verdict]
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    from .cli_fleet import add_scenario_options
    from .core.analysis import Scenario

    p = argparse.ArgumentParser(prog="honeyphone", description="Catch phone firmware stealing personal data.")
    p.add_argument("--data-dir", type=Path, help="where analyses, artifacts and the store live")
    sub = p.add_subparsers(dest="command", required=True)

    images = sub.add_parser("images", help="build the device, fakenet and farm images").add_subparsers(dest="images_cmd", required=True)
    b = images.add_parser("build", help="build images from emulator_images/ and deploy/images/ (cached when unchanged)")
    b.add_argument("names", nargs="+", choices=["twin", "fakenet", "android", "orchestrator", "worker", "postgres"])
    b.add_argument("--api", type=int, default=34, choices=[30, 33, 34, 35],
                   help="android: API level of the system image (default 34)")
    b.add_argument("--sdk", type=Path, help="android: an SDK root holding emulator/ and the system image "
                   "(default $HONEYPHONE_ANDROID_SDK, $HONEYPHONE_ANDROID_SDK_ZIP, $ANDROID_SDK_ROOT)")
    b.add_argument("--download", action="store_true",
                   help="android: let the Docker build fetch the SDK from Google's repository (needs internet)")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    b.set_defaults(func=cmd_images_build)

    an = sub.add_parser("analyze", help="analyze a firmware bundle on this machine and print the verdict")
    an.add_argument("bundle", help="bundle directory, .tar.gz or .zip")
    add_scenario_options(an, hours_help="device hours to fast-forward (default 96)",
                         seed_help="canary seed (default 0)", defaults=Scenario())
    an.add_argument("--clock-rate", type=float, help="the device clock's fallback rate for a device that is never idle: device seconds per real second, never while an exchange is in flight (default 14400)")
    an.add_argument("--report-json", help="write the JSON report here")
    an.add_argument("--artifacts", help="keep artifacts (pcap, flows, syscalls, report) in this directory")
    an.set_defaults(func=cmd_analyze)

    device = sub.add_parser("device", help="boot and remove devices for exploring by hand").add_subparsers(dest="device_cmd", required=True)
    up = device.add_parser("up", help="boot a twin with a firmware bundle and leave it running")
    up.add_argument("bundle", help="bundle directory, .tar.gz or .zip")
    up.add_argument("--id", help="analysis id to use (default: random)")
    up.set_defaults(func=cmd_device_up)
    down = device.add_parser("down", help="remove a device and everything it created")
    down.add_argument("id", nargs="?")
    down.add_argument("--all", action="store_true", help="remove every Honeyphone device, network and rule")
    down.set_defaults(func=cmd_device_down)
    ls = device.add_parser("list", help="list devices")
    ls.set_defaults(func=cmd_device_list)

    from .cli_fleet import add_fleet_commands

    add_fleet_commands(sub)
    from .cli_campaign import add_campaign_command

    add_campaign_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    settings = Settings.from_env(**overrides)
    try:
        return int(args.func(args, settings))
    except HoneyphoneError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"fix:   {exc.fix}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
