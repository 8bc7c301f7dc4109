"""Installing a bundle's ``[[apps]]`` as privileged system apps.

Real firmware ships as APKs in ``/system/priv-app``; installing them the same
way (not with ``pm install``) gives them the same privileges, shared uids
and boot-time start.  Each app goes to ``/system/priv-app/<name>/<name>.apk``
with ``/system/etc/permissions/privapp-permissions-<package>.xml`` listing
every permission its manifest requests: a privileged permission missing from
that allowlist makes a device that enforces ``ro.control_privapp_permissions``
refuse to boot.  Then the device reboots so PackageManager scans them.

An app declaring ``android:sharedUserId="android.uid.system"`` must be signed
with the platform key of the image; a vendor's key does not match the
emulator's, and PackageManager then skips the app.  ``verify_installed``
reports that case by name instead of leaving the analysis with no firmware.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..bundle import Bundle
from ..errors import BundleError, DeviceError
from .axml import ApkManifest, read_apk_manifest
from .device import Device

PRIV_APP_DIR = "/system/priv-app"
PERMISSIONS_DIR = "/system/etc/permissions"
SYSTEM_FILE_LABEL = "u:object_r:system_file:s0"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")


@dataclass(frozen=True)
class PrivApp:
    name: str  # directory and file stem under /system/priv-app
    host_path: Path
    manifest: ApkManifest

    @property
    def apk_path(self) -> str:
        return f"{PRIV_APP_DIR}/{self.name}/{self.name}.apk"

    @property
    def permissions_path(self) -> str:
        return f"{PERMISSIONS_DIR}/privapp-permissions-{self.manifest.package}.xml"


def app_dir_name(bundle_path: str) -> str:
    """``apps/FotaProvider.apk`` -> ``FotaProvider`` (only characters safe in a path)."""
    stem = bundle_path.rsplit("/", 1)[-1]
    if stem.lower().endswith(".apk"):
        stem = stem[:-4]
    name = _SAFE_NAME.sub("_", stem).strip("._-")
    if not name:
        raise BundleError("an app's file name leaves no usable directory name", path=bundle_path)
    return name[:64]


def permissions_xml(manifest: ApkManifest) -> str:
    """The privapp-permissions allowlist granting what ``manifest`` requests."""
    if not _PACKAGE.match(manifest.package):
        raise BundleError(f"invalid package name {manifest.package!r} in an app manifest")
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<permissions>",
             f"    <privapp-permissions package={quoteattr(manifest.package)}>"]
    for perm in manifest.permissions:
        lines.append(f"        <permission name={quoteattr(perm)}/>")
    lines += ["    </privapp-permissions>", "</permissions>", ""]
    return "\n".join(lines)


def plan_apps(bundle: Bundle) -> list[PrivApp]:
    """Read every ``[[apps]]`` APK's manifest; names and packages must be unique."""
    apps: list[PrivApp] = []
    for app in bundle.manifest.apps:
        host = bundle.root.joinpath(*app.path.split("/"))
        if not host.is_file():
            raise BundleError("the app file is missing from the bundle", path=app.path)
        manifest = read_apk_manifest(host)
        apps.append(PrivApp(app_dir_name(app.path), host, manifest))
    for attr in ("name",):
        seen = [getattr(a, attr) for a in apps]
        if len(seen) != len(set(seen)):
            raise BundleError("two apps map to the same /system/priv-app directory", path="apps")
    packages = [a.manifest.package for a in apps]
    if len(packages) != len(set(packages)):
        raise BundleError("two apps declare the same package", path="apps")
    return apps


def install_commands(app: PrivApp) -> list[str]:
    """Shell commands (run as root on a writable /system) after the files are pushed."""
    d = f"{PRIV_APP_DIR}/{app.name}"
    return [
        f"chown -R root:root {d} {app.permissions_path}",
        f"chmod 755 {d}",
        f"chmod 644 {app.apk_path} {app.permissions_path}",
        f"chcon -R {SYSTEM_FILE_LABEL} {d} {app.permissions_path}",
    ]


def push_apps(device: Device, apps: Sequence[PrivApp]) -> None:
    """Push APKs and allowlists onto a writable /system (root).  A reboot must follow."""
    for app in apps:
        device.shell(["mkdir", "-p", f"{PRIV_APP_DIR}/{app.name}"]).check()
        device.push(app.host_path, app.apk_path, mode=0o644)
        device.push_bytes(permissions_xml(app.manifest).encode(), app.permissions_path, mode=0o644)
        for cmd in install_commands(app):
            device.shell(cmd).check()


def verify_installed(device: Device, apps: Sequence[PrivApp]) -> None:
    """After the reboot: every package is known to PackageManager from /system/priv-app."""
    missing: list[str] = []
    for app in apps:
        out = device.shell(["pm", "path", app.manifest.package]).text
        if f"{PRIV_APP_DIR}/{app.name}/" not in out:
            missing.append(app.manifest.package)
    if missing:
        hint = ""
        if any(a.manifest.shared_user_id == "android.uid.system" for a in apps if a.manifest.package in missing):
            hint = ("; apps with sharedUserId android.uid.system must be signed with the emulator's platform key, "
                    "a vendor key makes PackageManager skip them")
        raise DeviceError(f"PackageManager did not pick up {', '.join(missing)} from {PRIV_APP_DIR}{hint}",
                          fix="read `adb logcat -b all | grep PackageManager` on the device for the reason")


def grant_runtime_permissions(device: Device, apps: Sequence[PrivApp]) -> dict[str, list[str]]:
    """``pm grant`` every requested permission; returns what was granted per package.

    On a real phone the vendor's default-permissions files pre-grant the
    firmware its runtime permissions (READ_SMS, READ_CONTACTS, ...); a stock
    emulator has none for these packages.  ``pm grant`` refuses install-time
    and privileged permissions ("not a changeable permission type"); those are
    granted by the privapp allowlist already, so refusals are not errors.
    """
    granted: dict[str, list[str]] = {}
    for app in apps:
        pkg = app.manifest.package
        granted[pkg] = []
        for perm in app.manifest.permissions:
            if device.shell(["pm", "grant", pkg, perm]).exit_code == 0:
                granted[pkg].append(perm)
    return granted


__all__ = ["PrivApp", "app_dir_name", "grant_runtime_permissions", "install_commands", "permissions_xml",
           "plan_apps", "push_apps", "verify_installed"]
