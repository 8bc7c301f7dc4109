"""``honeyphone device up|down|list``: devices to explore by hand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import HoneyphoneError
from ..settings import Settings
from .common import console, ensure_image


def cmd_device_up(args: argparse.Namespace, settings: Settings) -> int:
    """Boot a contained twin (fakenet, firewall rules, CA) with the bundle installed and running."""
    from ..bundle import load_bundle
    from ..containers.engine import docker_client
    from ..core.environment import bring_up_twin, tear_down
    from ..device import AdbServer
    from ..device.firmware import install_twin_bundle, start_services
    from ..device.twin import new_analysis_id
    from .progress import spinner

    client = docker_client(settings)
    for image in ("twin", "fakenet"):
        ensure_image(settings, image, console())
    analysis_id = args.id or new_analysis_id()
    workdir = settings.data_dir / "tmp" / "bundles"
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(Path(args.bundle), settings.bundle_limits, workdir)
    server = AdbServer.from_settings(settings)
    try:
        with spinner(console(), f"device {analysis_id}") as update:
            update("network, fakenet and twin")
            env, handle = bring_up_twin(settings, client, server, analysis_id)
            try:
                update("installing firmware")
                install_twin_bundle(handle.device, bundle)
                update("starting services")
                started = start_services(handle.device)
            except BaseException:
                tear_down(settings, client, analysis_id)
                raise
    finally:
        bundle.cleanup()
    fakenet = env.ready()[1]
    print(f"analysis id: {analysis_id}")
    print(f"adb serial:  {handle.device.serial}   (booted in {handle.boot_seconds:.2f}s)")
    print(f"fakenet:     {fakenet.ip} (the device's gateway and DNS; TLS intercepted)")
    print(f"firmware:    {bundle.manifest.firmware.name} {bundle.manifest.firmware.version}")
    for svc in started:
        print(f"service:     {svc.name} pid {svc.pid}")
    adb = " ".join(server.adb_argv())
    print(f"explore:     {adb} -s {handle.device.serial} shell")
    print(f"stop:        honeyphone device down {analysis_id}")
    return 0


def cmd_device_down(args: argparse.Namespace, settings: Settings) -> int:
    from ..containers.cleanup import cleanup
    from ..containers.engine import docker_client

    if not args.all and not args.id:
        raise HoneyphoneError("name a device id or pass --all", fix="honeyphone device list shows the ids")
    from ..device import AdbServer
    from ..network.containment import remove_rules

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
    from ..containers.engine import docker_client

    client = docker_client(settings)
    for c in client.containers.list(all=True, ignore_removed=True, filters={"label": [f"{settings.label_role}=device"]}):
        aid = c.labels.get(settings.label_analysis, "?")
        nets = c.attrs.get("NetworkSettings", {}).get("Networks", {})
        ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), "")
        print(f"{aid}\t{c.status}\t{ip}:5555\t{c.name}")
    return 0


def add_device_commands(sub: Any) -> None:
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
