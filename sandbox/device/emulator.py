"""Booting an Android emulator for one analysis and installing its firmware.

Boot = labelled internal network -> emulator container -> ``adb connect`` ->
``sys.boot_completed=1`` -> ``adb root`` -> pop-ups dismissed, screen kept
on.  Firmware = ``/system`` made writable once, the bundle's apps (and, on
API <= 33, the CA) pushed, one reboot, then checks that PackageManager took
the apps and, on API 34+, the CA mounts (which a reboot undoes) reapplied.
As with the twin, a failed boot removes everything it created.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import docker

from ..containers.cleanup import cleanup
from ..containers.device_container import DeviceContainer
from ..containers.emulator_container import start_emulator
from ..containers.network import DeviceNetwork
from ..network.bridge import create_device_network
from ..settings import Settings
from .adb_server import AdbServer
from .boot import abandon_boot
from .android import adb_root, api_level, dismiss_anr_dialogs, keep_awake, make_system_writable, reboot
from .device import Device
from .privapp import PrivApp, grant_runtime_permissions, push_apps, verify_installed
from .trust_android import AndroidTrust, uses_apex_store


@dataclass(frozen=True)
class AndroidHandle:
    analysis_id: str
    container: DeviceContainer
    device: Device
    api: int
    boot_seconds: float

    @property
    def network(self) -> DeviceNetwork:
        return self.container.network

    def with_device(self, device: Device) -> "AndroidHandle":
        """After a reboot or ``adb root`` the transport is new."""
        return replace(self, device=device)


def settle_after_boot(device: Device) -> list[str]:
    """Dismiss known ANR pop-ups and keep the screen on; returns what was dismissed."""
    dismissed = dismiss_anr_dialogs(device)
    keep_awake(device)
    return dismissed


def boot_android(
    settings: Settings,
    client: docker.DockerClient,
    server: AdbServer,
    analysis_id: str,
    *,
    network: DeviceNetwork | None = None,
    environment: dict[str, str] | None = None,
    image: str | None = None,
) -> AndroidHandle:
    t0 = time.monotonic()
    container: DeviceContainer | None = None
    try:
        net = network or create_device_network(client, settings, analysis_id)
        container = start_emulator(client, settings, analysis_id, net, image=image, environment=environment)
        limit = settings.android_boot_timeout_s
        device = Device.connect(server, container.serial, settings, timeout=limit)
        device.wait_for_boot(limit)
        device = adb_root(device, server, settings)
        api = api_level(device)
        settle_after_boot(device)
        return AndroidHandle(analysis_id, container, device, api, time.monotonic() - t0)
    except BaseException as exc:
        abandon_boot(settings, client, server, analysis_id, container, exc, "emulator")


def install_firmware(
    handle: AndroidHandle,
    server: AdbServer,
    settings: Settings,
    apps: Sequence[PrivApp],
    trust: AndroidTrust | None = None,
) -> AndroidHandle:
    """Privileged apps (+ the CA), one reboot, checks.  Returns the handle with the new transport."""
    device = make_system_writable(handle.device, server, settings)
    if trust is not None:
        trust.choose_name(device)
    push_apps(device, apps)
    if trust is not None and not trust_uses_apex(trust):
        trust.push_system(device)
    device = reboot(device, server, settings)
    settle_after_boot(device)
    verify_installed(device, apps)
    grant_runtime_permissions(device, apps)
    if trust is not None:
        if trust_uses_apex(trust):
            trust.reapply(device)
        else:
            trust.verify(device)
    return handle.with_device(device)


def after_reboot(handle: AndroidHandle, trust: AndroidTrust | None) -> None:
    """What every boot after the first needs again: pop-ups, screen, API 34+ CA mounts."""
    settle_after_boot(handle.device)
    if trust is not None:
        trust.reapply(handle.device)


def trust_uses_apex(trust: AndroidTrust) -> bool:
    return uses_apex_store(trust.api)


def shutdown_android(settings: Settings, client: docker.DockerClient, handle: AndroidHandle) -> None:
    handle.device.disconnect()
    cleanup(client, settings, handle.analysis_id)


__all__ = ["AndroidHandle", "after_reboot", "boot_android", "install_firmware", "settle_after_boot",
           "shutdown_android"]
