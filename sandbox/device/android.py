"""Android specifics over the one ``Device``: root, reboots, writable
``/system``, planting prerequisites, ANR pop-ups and process lookup.

Everything here drives a stock google_apis (userdebug) emulator through the
same adb path as the twin.  ``adb root`` and reboots restart adbd, which
drops the transport, so those helpers return a freshly connected ``Device``
and callers must use it instead of the old one.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import DeviceError, PlantingError
from ..settings import Settings
from . import appops
from .adb_server import AdbServer
from .device import Device

# mCurrentFocus values of pop-ups that block a freshly booted emulator, and
# how to clear them (the same cases docker-android handles): a hung System UI
# is killed (it restarts), the others take the default button.
ANR_KILL = {"Not Responding: com.android.systemui": "com.android.systemui"}
ANR_ENTER = ("Not Responding: com.google.android.gms", "Not Responding: system", "isn't responding",
             "Application Not Responding", "ConversationListActivity")
_FOCUS = re.compile(r"mCurrentFocus=(.*)")


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str


def api_level(device: Device) -> int:
    value = device.getprop("ro.build.version.sdk")
    if not value.isdigit():
        raise DeviceError(f"{device.serial} reports no API level (ro.build.version.sdk={value!r})")
    return int(value)


def reconnect(server: AdbServer, serial: str, settings: Settings, timeout: float) -> Device:
    """Drop the (possibly dead) transport and connect again."""
    client = server.client()
    try:
        client.disconnect(serial)
    except Exception:  # adbutils raises AdbError or OSError; neither matters here
        pass
    return Device.connect(server, serial, settings, timeout=timeout)


def is_root(device: Device) -> bool:
    res = device.shell(["id", "-u"], timeout=10)
    return res.exit_code == 0 and res.text.strip() == "0"


def adb_root(device: Device, server: AdbServer, settings: Settings, timeout: float = 60.0) -> Device:
    """``adb root`` and wait until a shell on the new adbd is uid 0."""
    if is_root(device):
        return device
    reply = device.service("root:")
    if "cannot run as root" in reply:
        raise DeviceError(f"{device.serial} refuses adb root ({reply.strip()})",
                          fix="use a google_apis (userdebug) system image, not a Google Play one")
    deadline = time.monotonic() + timeout
    last = reply.strip()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        try:
            fresh = reconnect(server, device.serial, settings, timeout=10)
            if is_root(fresh):
                return fresh
        except DeviceError as exc:
            last = str(exc)
    raise DeviceError(f"{device.serial} did not come back as root within {timeout:.0f}s ({last})")


def reboot(device: Device, server: AdbServer, settings: Settings, timeout: float | None = None) -> Device:
    """Reboot, wait for ``sys.boot_completed`` and return a root ``Device``."""
    limit = timeout if timeout is not None else settings.android_boot_timeout_s
    try:
        device.service("reboot:")
    except DeviceError:
        pass  # adbd may drop the transport before answering
    time.sleep(5.0)  # let the old adbd go away before polling the new one
    fresh = reconnect(server, device.serial, settings, timeout=limit)
    fresh.wait_for_boot(limit)
    return adb_root(fresh, server, settings)


def make_system_writable(device: Device, server: AdbServer, settings: Settings) -> Device:
    """``avbctl disable-verification`` + reboot when needed, then ``adb remount``.

    Needs the emulator started with ``-writable-system``.  ``remount`` asks
    for one more reboot the first time it sets up the overlay; that case is
    handled by rebooting and remounting once more.
    """
    device = adb_root(device, server, settings)
    verity = device.shell("avbctl get-verification", timeout=30)
    if verity.exit_code == 0 and "enabled" in verity.text:
        device.shell("avbctl disable-verification", timeout=30).check()
        device = reboot(device, server, settings)
    for attempt in range(2):
        reply = device.service("remount:", timeout=120)
        if "reboot" in reply.lower() and attempt == 0:
            device = reboot(device, server, settings)
            continue
        if "remount succeeded" in reply.lower() or writable(device, "/system"):
            return device
        raise DeviceError(f"adb remount failed on {device.serial}: {reply.strip()}",
                          fix="start the emulator with -writable-system (launch.sh does)")
    raise DeviceError(f"/system on {device.serial} is still read-only after remount and reboot")


def writable(device: Device, path: str) -> bool:
    probe = f"{path.rstrip('/')}/.honeyphone-rw-probe"
    res = device.shell(f"touch {probe} && rm -f {probe}", timeout=15)
    return res.exit_code == 0


def prepare_for_planting(device: Device) -> None:
    """Let the shell write SMS (Android drops the inserts silently otherwise) and prove it."""
    op = "WRITE_SMS"
    device.shell(appops.set_command(appops.SHELL_PACKAGE, op, "allow")).check()
    out = device.shell(appops.get_command(appops.SHELL_PACKAGE, op)).check()
    if not appops.effective_allowed(out.text, op):
        raise PlantingError(
            f"appops did not take: `appops get {appops.SHELL_PACKAGE} {op}` printed {out.text.strip()!r}",
            fix="planted SMS would be dropped silently; check the image is a google_apis build",
        )


def keep_awake(device: Device) -> None:
    """Screen on and unlocked: non-wakeup alarms are held back while the screen is off."""
    for cmd in ("svc power stayon true", "settings put global stay_on_while_plugged_in 7",
                "input keyevent KEYCODE_WAKEUP", "wm dismiss-keyguard"):
        device.shell(cmd, timeout=30)


def current_focus(device: Device) -> str:
    text = device.shell("dumpsys window", timeout=30).text
    focus = [m.group(1).strip() for m in _FOCUS.finditer(text)]
    return focus[-1] if focus else ""


def dismiss_anr_dialogs(device: Device, rounds: int = 3) -> list[str]:
    """Clear the known "not responding" pop-ups; returns what was dismissed."""
    dismissed: list[str] = []
    for _ in range(rounds):
        focus = current_focus(device)
        acted = False
        for marker, proc in ANR_KILL.items():
            if marker in focus:
                device.shell(f"kill $(pidof {proc})", timeout=15)
                dismissed.append(marker)
                acted = True
        if any(marker in focus for marker in ANR_ENTER):
            device.shell("input keyevent KEYCODE_ENTER", timeout=15)
            dismissed.append(focus)
            acted = True
        if not acted:
            break
        time.sleep(1.0)
    return dismissed


def parse_ps(text: str) -> list[Proc]:
    """Rows of toybox ``ps -A -o PID,NAME`` (header line skipped)."""
    out: list[Proc] = []
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            out.append(Proc(int(parts[0]), parts[1].strip()))
    return out


# The emulator's NAT maps 10.0.2.2 to the container's loopback, where the
# emulator's console (5556) and adb (5557) listen: a firmware app reaching
# them would get a root shell that strace does not see, or could drive the
# emulator itself.  Only root (adbd after ``adb root``) may go there.
EMULATOR_HOST_ALIAS = "10.0.2.2"
FENCE_RULE = ("OUTPUT", "-d", f"{EMULATOR_HOST_ALIAS}/32", "-m", "owner", "!", "--uid-owner", "0", "-j", "REJECT")


def fence_command() -> str:
    return shlex.join(["iptables", "-w", "-I", *FENCE_RULE])


def fence_emulator_host(device: Device) -> None:
    """Reject non-root traffic to the emulator's host alias; idempotent; iptables does not survive a reboot."""
    check = shlex.join(["iptables", "-w", "-C", *FENCE_RULE])
    if device.shell(check, timeout=30).exit_code != 0:
        device.shell(fence_command(), timeout=30).check()
    if device.shell(check, timeout=30).exit_code != 0:
        raise DeviceError(f"the guest firewall did not take the rule that fences {EMULATOR_HOST_ALIAS}",
                          fix="check the image's kernel has the xt_owner match (all Android kernels do)")


def package_processes(device: Device, packages: Iterable[str]) -> list[Proc]:
    """Processes of ``packages``: the main process (named after the package) and ``pkg:sub`` ones."""
    wanted = tuple(packages)
    procs = parse_ps(device.shell("ps -A -o PID,NAME", timeout=30).check().text)
    return [p for p in procs if any(p.name == pkg or p.name.startswith(pkg + ":") for pkg in wanted)]


__all__ = [
    "EMULATOR_HOST_ALIAS", "Proc", "adb_root", "fence_command", "fence_emulator_host", "api_level", "current_focus", "dismiss_anr_dialogs", "is_root", "keep_awake",
    "make_system_writable", "package_processes", "parse_ps", "prepare_for_planting", "reboot", "reconnect",
    "writable",
]
