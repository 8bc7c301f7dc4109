"""Installing a firmware bundle onto a device and starting its services.

Twin profile: every file under ``files/`` is pushed over adb sync to the same
device path, then ``services.json`` is pushed and ``hpctl start`` runs the
services, each wrapped by the host-chosen prefix (strace, clock).  The
prefix is built on the host so the trace parser always matches what ran.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..bundle import Bundle
from ..errors import DeviceError
from .device import Device

SERVICES_JSON = "/system/etc/honeyphone/services.json"
USERS = {"root": 0, "system": 1000, "shell": 2000}
LOG_DIR = "/data/honeyphone/logs"


@dataclass(frozen=True)
class StartedService:
    name: str
    pid: int


@dataclass(frozen=True)
class ServiceWrap:
    """How each service is launched: ``prefix(name, user) + exec``, plus env."""

    argv_prefix: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    prefix_drops_privileges: bool = False  # e.g. ``strace -u USER`` switches user itself


WrapFactory = Callable[[str, str], ServiceWrap]
"""(service name, user) -> how to launch it."""


def push_bundle_files(device: Device, bundle: Bundle) -> int:
    """Push ``files/`` to the device; returns the number of files pushed."""
    count = 0
    dirs = list(bundle.directories())
    if dirs:
        device.shell(["mkdir", "-p", *dirs]).check()
    for device_path, host_path, mode in bundle.files():
        device.push(host_path, device_path, mode=mode)
        count += 1
    for link in bundle.symlinks():
        device.shell(["ln", "-sfn", link.target, link.device_path]).check()
    return count


def services_manifest(bundle: Bundle, wrap_for: WrapFactory) -> dict[str, object]:
    services: list[dict[str, object]] = []
    for svc in bundle.manifest.services:
        wrap = wrap_for(svc.name, svc.user)
        uid = USERS[svc.user]
        entry: dict[str, object] = {
            "name": svc.name,
            "argv": [*wrap.argv_prefix, *svc.exec],
            "env": {**dict(svc.env), **dict(wrap.env or {})},
            "cwd": svc.cwd or "/",
            "log": f"{LOG_DIR}/{svc.name}.log",
        }
        if wrap.argv_prefix:
            entry["tracer_argc"] = 1
        if not wrap.prefix_drops_privileges and uid != 0:
            entry["drop_to_uid"] = uid
            entry["drop_to_gid"] = uid
        services.append(entry)
    return {"services": services}


def no_wrap(name: str, user: str) -> ServiceWrap:
    return ServiceWrap()


def install_twin_bundle(
    device: Device, bundle: Bundle, wrap_for: WrapFactory = no_wrap, clock: Mapping[str, float | None] | None = None
) -> int:
    """Push files and the services manifest.  Services are not started yet."""
    pushed = push_bundle_files(device, bundle)
    manifest = services_manifest(bundle, wrap_for)
    if clock is not None:
        manifest["clock"] = dict(clock)
    device.shell(["mkdir", "-p", LOG_DIR]).check()
    device.push_bytes(json.dumps(manifest, indent=1).encode(), SERVICES_JSON, mode=0o644)
    return pushed


def start_services(device: Device) -> list[StartedService]:
    out = device.shell("hpctl start").check()
    try:
        started = json.loads(out.text)
        return [StartedService(str(s["name"]), int(s["pid"])) for s in started]
    except (ValueError, KeyError, TypeError) as exc:
        raise DeviceError(f"hpctl start printed unexpected output: {out.text!r}") from exc


def service_status(device: Device) -> list[dict[str, object]]:
    out = device.shell("hpctl status").check()
    return list(json.loads(out.text))


def stop_services(device: Device) -> None:
    device.shell("hpctl stop").check()


def read_service_log(device: Device, name: str) -> str:
    return device.shell(["cat", f"{LOG_DIR}/{name}.log"]).text


__all__ = [
    "ServiceWrap", "StartedService", "install_twin_bundle", "start_services", "service_status",
    "stop_services", "read_service_log", "push_bundle_files", "services_manifest",
]
