"""Making an Android emulator trust the analysis' fakenet CA.

API <= 33 reads system CAs from ``/system/etc/security/cacerts``: with the
emulator started ``-writable-system``, verification is disabled
(``avbctl disable-verification`` + reboot), ``/system`` is remounted and the
CA is pushed as ``<subject_hash_old>.0`` (mode 644), then the device
reboots.  This survives reboots.

API 34+ reads them from the Conscrypt APEX, ``/apex/com.android.conscrypt/
cacerts``, which no remount makes writable.  Instead a tmpfs holding the
current CAs plus ours is mounted over ``/system/etc/security/cacerts`` and
bind-mounted over the APEX directory inside the mount namespace of zygote,
zygote64 and every process they forked (``nsenter --mount=/proc/PID/ns/mnt``);
apps forked later inherit zygote's view.  Nothing of this survives a reboot,
so ``AndroidTrust.reapply`` must run after every boot.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .adb_server import AdbServer
from .android import make_system_writable, reboot
from .device import Device
from ..errors import DeviceError
from ..settings import Settings
from .certhash import android_ca_name
from .trust import check_pem

SYSTEM_CACERTS = "/system/etc/security/cacerts"
APEX_CACERTS = "/apex/com.android.conscrypt/cacerts"
STAGE_DIR = "/data/local/tmp/honeyphone-ca"
SYSTEM_FILE_LABEL = "u:object_r:system_file:s0"
APEX_MIN_API = 34


def uses_apex_store(api: int) -> bool:
    return api >= APEX_MIN_API


def system_store_commands(name: str, staged: str) -> list[str]:
    """API <= 33, on a remounted /system: place the CA under its hashed name."""
    target = f"{SYSTEM_CACERTS}/{name}"
    return [
        f"cp {shlex.quote(staged)} {shlex.quote(target)}",
        f"chown root:root {shlex.quote(target)}",
        f"chmod 644 {shlex.quote(target)}",
        f"chcon {SYSTEM_FILE_LABEL} {shlex.quote(target)}",
    ]


def apex_inject_script(name: str, staged: str) -> str:
    """API 34+: the tmpfs + per-namespace bind mount, as one idempotent root shell script."""
    q = shlex.quote
    stage = f"{STAGE_DIR}/store"
    return "\n".join([
        "set -e",
        f"rm -rf {q(stage)}",
        f"mkdir -p -m 700 {q(stage)}",
        f"if [ -d {APEX_CACERTS} ]; then cp {APEX_CACERTS}/* {q(stage)}/; else cp {SYSTEM_CACERTS}/* {q(stage)}/; fi",
        f"cp {q(staged)} {q(stage)}/{q(name)}",
        f"if ! grep -q ' {SYSTEM_CACERTS} tmpfs ' /proc/mounts; then mount -t tmpfs tmpfs {SYSTEM_CACERTS}; fi",
        f"cp {q(stage)}/* {SYSTEM_CACERTS}/",
        f"chown root:root {SYSTEM_CACERTS}/*",
        f"chmod 644 {SYSTEM_CACERTS}/*",
        f"chcon {SYSTEM_FILE_LABEL} {SYSTEM_CACERTS} {SYSTEM_CACERTS}/*",
        "set +e",
        "for Z in $(pidof zygote) $(pidof zygote64); do",
        f"  nsenter --mount=/proc/$Z/ns/mnt -- /bin/mount --bind {SYSTEM_CACERTS} {APEX_CACERTS}",
        "  for P in $(ps -o PID -P $Z | grep -v PID); do",
        f"    nsenter --mount=/proc/$P/ns/mnt -- /bin/mount --bind {SYSTEM_CACERTS} {APEX_CACERTS} &",
        "  done",
        "done",
        "wait",
        "",
    ])


def zygote_view_command(name: str) -> str:
    """Prints the CA as seen from zygote64's (else zygote's) mount namespace."""
    return ("Z=$(pidof zygote64 || pidof zygote); "
            f"nsenter --mount=/proc/${{Z%% *}}/ns/mnt -- ls {APEX_CACERTS}/{shlex.quote(name)}")


@dataclass
class AndroidTrust:
    """The CA of one analysis on one emulator; ``device`` is replaced after reboots."""

    pem: bytes
    api: int
    name: str = ""

    def _existing(self, device: Device, directory: str) -> set[str]:
        return set(device.shell(["ls", directory]).text.split())

    def _stage(self, device: Device) -> str:
        staged = f"{STAGE_DIR}/ca.pem"
        device.shell(["mkdir", "-p", STAGE_DIR]).check()
        device.push_bytes(check_pem(self.pem), staged, mode=0o644)
        return staged

    def choose_name(self, device: Device) -> str:
        """``<subject_hash_old>.<n>``, avoiding names another CA already has on the device."""
        store = APEX_CACERTS if uses_apex_store(self.api) else SYSTEM_CACERTS
        self.name = android_ca_name(self.pem, self._existing(device, store))
        return self.name

    def push_system(self, device: Device) -> None:
        """API <= 33, /system already remounted writable (root): place the file.  A reboot must follow."""
        if uses_apex_store(self.api):
            raise DeviceError("API 34+ reads CAs from the Conscrypt APEX; use reapply()")
        if not self.name:
            self.choose_name(device)
        staged = self._stage(device)
        for cmd in system_store_commands(self.name, staged):
            device.shell(cmd).check()

    def verify(self, device: Device) -> None:
        """After boot (and reapply on API 34+): the CA is where apps look."""
        if uses_apex_store(self.api):
            seen = device.shell(zygote_view_command(self.name))
        else:
            seen = device.shell(["ls", f"{SYSTEM_CACERTS}/{self.name}"])
        if seen.exit_code != 0:
            where = f"zygote's view of {APEX_CACERTS}" if uses_apex_store(self.api) else SYSTEM_CACERTS
            raise DeviceError(f"the CA {self.name} is not in {where}: {(seen.error_text or seen.text).strip()}")

    def install(self, device: Device, server: AdbServer, settings: Settings) -> Device:
        """Install on its own; returns the device to use afterwards (API <= 33 reboots)."""
        self.choose_name(device)
        if uses_apex_store(self.api):
            self.reapply(device)
            return device
        device = make_system_writable(device, server, settings)
        self.push_system(device)
        device = reboot(device, server, settings)
        self.verify(device)
        return device

    def reapply(self, device: Device) -> None:
        """API 34+: (re)do the mounts; a no-op on API <= 33, where the file persists."""
        if not uses_apex_store(self.api):
            return
        if not self.name:
            raise DeviceError("install the CA before reapplying it")
        staged = self._stage(device)
        script = f"{STAGE_DIR}/inject.sh"
        device.push_bytes(apex_inject_script(self.name, staged).encode(), script, mode=0o700)
        device.shell(["sh", script], timeout=120).check()
        self.verify(device)


__all__ = ["APEX_CACERTS", "AndroidTrust", "SYSTEM_CACERTS", "apex_inject_script", "system_store_commands",
           "uses_apex_store", "zygote_view_command"]
