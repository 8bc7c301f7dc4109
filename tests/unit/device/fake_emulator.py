"""A scripted emulator shell for the Android session's offline tests.

It extends tests/unit/device/fake_android.py (clock, alarms, jobs, appops
as AOSP prints them) with what an analysis also sends: ``content`` (run by
the twin's own implementation of Content.java over AOSP's schemas, in a
temporary root), Android's silent drop of SMS inserts without the shell's
WRITE_SMS app-op, toybox ``ps``, ``strace -p`` started in the background,
``kill``, ``iptables -C/-I``, ``am force-stop``, ``logcat -f``, ``ls`` and
``adb pull`` of trace files.  A firmware package's process starts with the
"reboot" that installs it; when its alarm fires it forks an upload process,
as a real app's alarm receiver would start work.
"""

from __future__ import annotations

import io
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.device.device import Device, ShellResult

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # fake_android, also when imported from another test directory
sys.path.insert(0, str(HERE.parents[2] / "emulator_images" / "twin"))

from fake_android import FakeAndroid  # noqa: E402
from twinrt import content as twin_content  # noqa: E402

SMS_URI = re.compile(r"--uri content://sms(/\w+)?\b")


@dataclass
class FakeEmulator(FakeAndroid):
    package: str = "com.example.fw"
    installed: bool = False
    procs: dict[int, str] = field(default_factory=dict)  # pid -> process name
    tracers: dict[int, int] = field(default_factory=dict)  # tracer pid -> traced pid
    iptables: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # device path -> content
    next_pid: int = 4000
    dropped_sms: int = 0
    # what ``adb root``/``remount``/``reboot`` and the CA install touch
    api: int = 34
    root: bool = True
    verity: bool = True  # dm-verity on /system until `avbctl disable-verification` and a reboot
    verity_pending_off: bool = False
    overlay_ready: bool = False  # remount's overlayfs needs one reboot the first time
    system_writable: bool = False
    reboots: int = 0
    cacerts: set[str] = field(default_factory=lambda: {"0d69c7e1.0", "5ed36f99.0"})  # the stock store
    cacerts_tmpfs: set[str] | None = None  # API 34+: our tmpfs over the system store (gone at reboot)
    zygote_sees: set[str] = field(default_factory=set)  # what apps see under the Conscrypt APEX
    packages: dict[str, str] = field(default_factory=dict)  # package -> apk path, as PackageManager scanned

    # -- firmware model ----------------------------------------------------------
    def install(self) -> None:
        """What the firmware's reboot leaves: the package's main process running (and no iptables rules)."""
        self.installed = True
        self.iptables.clear()
        self._spawn(self.package)

    def reboot_now(self) -> None:
        """adbd restarts unprivileged; mounts, iptables and processes are gone; /system is rescanned."""
        self.reboots += 1
        self.root = False
        self.system_writable = False
        self.cacerts_tmpfs = None
        self.zygote_sees = set(self.cacerts)
        self.iptables.clear()
        self.procs.clear()
        self.tracers.clear()
        if self.verity_pending_off:
            self.verity, self.verity_pending_off = False, False
        for path in self.files:
            if re.fullmatch(r"/system/priv-app/([^/]+)/\1\.apk", path):
                pkg = self.files.get(f"{path}.package", b"").decode()
                if pkg:
                    self.packages[pkg] = path
        if self.installed:
            self._spawn(self.package)

    def service(self, name: str, timeout: float = 30.0) -> str:
        """adbd's host services, with the replies AOSP's adbd prints."""
        self.commands.append(f"<service {name}>")
        if name == "root:":
            if self.root:
                return "adbd is already running as root\n"
            self.root = True
            return "restarting adbd as root\n"
        if name == "reboot:":
            self.reboot_now()
            return ""
        if name == "remount:":
            if self.verity:
                return "dm_verity is enabled on the system partition.\nUse \"adb disable-verity\" to disable verity.\n"
            if not self.overlay_ready:
                self.overlay_ready = True
                return "Using overlayfs for /system\nNow reboot your device for settings to take effect\n"
            self.system_writable = True
            return "Using overlayfs for /system\nremount succeeded\n"
        raise AssertionError(f"unexpected service {name}")

    def wait_for_boot(self, timeout: float | None = None) -> float:
        return 0.0

    def push(self, local: Path, remote: str, mode: int = 0o644) -> None:
        self._write(remote, local.read_bytes())

    def _write(self, remote: str, data: bytes) -> None:
        if remote.startswith("/system/") and not self.system_writable:
            raise AssertionError(f"push to read-only /system: {remote}")
        self.files[remote] = data
        if remote.endswith(".apk"):
            from sandbox.device.axml import read_apk_manifest
            import tempfile

            with tempfile.NamedTemporaryFile(suffix=".apk") as tmp:
                tmp.write(data)
                tmp.flush()
                self.files[remote + ".package"] = read_apk_manifest(Path(tmp.name)).package.encode()

    def _spawn(self, name: str) -> int:
        self.next_pid += 1
        self.procs[self.next_pid] = name
        return self.next_pid

    def _deliver(self) -> None:
        before = len(self.fired)
        super()._deliver()
        for tag, _ in self.fired[before:]:
            if self.package in tag and self.installed:
                self._spawn(f"{self.package}:upload")

    # -- the shell -----------------------------------------------------------------
    def shell(self, command: str | list[str], timeout: float | None = None) -> ShellResult:
        self.sleep(0.02)  # an adb round trip takes time, during which the wall clock runs
        return super().shell(command, timeout)

    def _run(self, cmd: str) -> tuple[str, int]:
        if cmd.startswith("content "):
            outs, code = [], 0
            for part in cmd.split(" && "):
                out, code = self._content(part)
                outs.append(out)
                if code != 0:
                    break
            return "".join(outs), code
        if cmd == "ps -A -o PID,NAME":
            rows = ["  PID NAME"] + [f"{pid:5d} {name}" for pid, name in sorted(self.procs.items())]
            rows += ["    1 init", "  312 zygote64", "  690 system_server"]
            return "\n".join(rows) + "\n", 0
        if m := re.fullmatch(r"nohup strace (.*) </dev/null >/dev/null 2>(\S+) & echo \$!", cmd):
            argv = shlex.split(m.group(1))
            traced = int(argv[argv.index("-p") + 1])
            out = argv[argv.index("-o") + 1]
            if traced not in self.procs:
                self.files[shlex.split(m.group(2))[0]] = b"strace: attach: ptrace(PTRACE_SEIZE): No such process\n"
                return "1\n", 0
            tracer = self._spawn("strace")
            self.tracers[tracer] = traced
            # one connect, stamped in device time (the guest's stepped wall clock)
            ts = self.wall_ms() / 1000
            self.files[out] = (f"{traced} {ts:.6f} connect(5, {{sa_family=AF_INET, sin_port=htons(443), "
                               f"sin_addr=inet_addr(\"198.51.100.7\")}}, 16) = 0\n").encode()
            return f"{tracer}\n", 0
        if m := re.fullmatch(r"kill -0 (\d+)", cmd):
            return "", 0 if int(m.group(1)) in self.procs else 1
        if m := re.fullmatch(r"kill -INT ([\d ]+) 2>/dev/null; true", cmd):
            for pid in map(int, m.group(1).split()):
                self.procs.pop(pid, None)
                self.tracers.pop(pid, None)
            return "", 0
        if m := re.fullmatch(r"am force-stop (\S+)", cmd):
            for pid, name in list(self.procs.items()):
                if name == m.group(1) or name.startswith(m.group(1) + ":"):
                    del self.procs[pid]
            for tracer, traced in list(self.tracers.items()):  # strace exits with its tracee
                if traced not in self.procs:
                    del self.tracers[tracer]
                    self.procs.pop(tracer, None)
            return "", 0
        if cmd == "id -u":
            return ("0" if self.root else "2000") + "\n", 0
        if cmd == "avbctl get-verification":
            return f"verification is {'enabled' if self.verity else 'disabled'}\n", 0
        if cmd == "avbctl disable-verification":
            self.verity_pending_off = True
            return "Successfully disabled verification on the slot\nReboot the device for changes to take effect.\n", 0
        if re.fullmatch(r"touch (/system/\S+) && rm -f \1", cmd):
            return "", 0 if self.system_writable else 1
        if m := re.fullmatch(r"pm path (\S+)", cmd):
            path = self.packages.get(m.group(1))
            return (f"package:{path}\n", 0) if path else ("", 1)
        if m := re.fullmatch(r"pm grant (\S+) (\S+)", cmd):
            return ("", 0) if m.group(2) in ("android.permission.READ_SMS", "android.permission.READ_CONTACTS") else (
                f"Exception occurred while executing 'grant':\njava.lang.SecurityException: Permission {m.group(2)} "
                "requested by ... is not a changeable permission type\n", 255)
        if re.fullmatch(r"(chown|chmod|chcon) .*", cmd):
            return "", 0
        if m := re.fullmatch(r"cp (\S+) /system/etc/security/cacerts/(\S+)", cmd):
            if not self.system_writable:
                return "cp: /system/etc/security/cacerts: Read-only file system\n", 1
            self.cacerts.add(m.group(2))
            return "", 0
        if cmd in ("ls /system/etc/security/cacerts", "ls /apex/com.android.conscrypt/cacerts"):
            store = self.cacerts if cmd.startswith("ls /system") or self.cacerts_tmpfs is None else self.cacerts_tmpfs
            return "\n".join(sorted(store)) + "\n", 0
        if m := re.fullmatch(r"ls /system/etc/security/cacerts/(\S+)", cmd):
            store = self.cacerts_tmpfs if self.cacerts_tmpfs is not None else self.cacerts
            return ("", 0) if m.group(1) in store else (f"ls: {cmd[3:]}: No such file or directory\n", 1)
        if m := re.fullmatch(r"sh (\S+/inject\.sh)", cmd):
            name = re.search(r"cp \S+ \S+/store/(\S+)\n", self.files[m.group(1)].decode())
            assert name, "the inject script copies the CA into its staging store"
            self.cacerts_tmpfs = set(self.cacerts) | {name.group(1)}
            self.zygote_sees = set(self.cacerts_tmpfs)
            return "", 0
        if m := re.search(r"nsenter --mount=.*? -- ls /apex/com.android.conscrypt/cacerts/(\S+)$", cmd):
            return ("", 0) if m.group(1) in self.zygote_sees else ("ls: No such file or directory\n", 1)
        if cmd.startswith("iptables -w -C "):
            return "", 0 if cmd[len("iptables -w -C "):] in self.iptables else 1
        if cmd.startswith("iptables -w -I "):
            self.iptables.append(cmd[len("iptables -w -I "):])
            return "", 0
        if re.fullmatch(r"mkdir -p (\S+)", cmd):
            return "", 0
        if m := re.fullmatch(r"ls (\S+)", cmd):
            d = m.group(1).rstrip("/") + "/"
            return "\n".join(sorted(p[len(d):] for p in self.files if p.startswith(d) and "/" not in p[len(d):])), 0
        if m := re.fullmatch(r"cat (\S+)", cmd):
            return self.files.get(m.group(1), b"").decode(), 0 if m.group(1) in self.files else 1
        if m := re.fullmatch(r"mkdir -p (\S+) && logcat -d -v epoch -v uid -f (\S+)", cmd):
            self.files[m.group(2)] = f"{self.wall_ms() / 1000:.3f}  u0_a45  4001  4001 I fw: done\n".encode()
            return "", 0
        if cmd == "dumpsys window":
            return "  mCurrentFocus=Window{1f2e u0 com.android.launcher3/.Launcher}\n", 0
        return super()._run(cmd)

    def _content(self, command: str) -> tuple[str, int]:
        argv = shlex.split(command)
        if argv[1] == "insert" and SMS_URI.search(command) and self.appops.get(("com.android.shell", "WRITE_SMS")) != "allow":
            self.dropped_sms += 1  # SmsProvider refuses the caller; `content` still exits 0
            return "", 0
        out, err = io.StringIO(), io.StringIO()
        code = twin_content.run(argv[1:], out, err)
        return out.getvalue() + err.getvalue(), code

    # -- adb sync ------------------------------------------------------------------
    def pull(self, remote: str, local: Path) -> None:
        if remote not in self.files:
            from sandbox.errors import DeviceError

            raise DeviceError(f"remote object {remote!r} does not exist")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(self.files[remote])

    def push_bytes(self, data: bytes, remote: str, mode: int = 0o644) -> None:
        self._write(remote, data)

    def disconnect(self) -> None:
        self.commands.append("<disconnect>")

    # the Device method planting uses, exactly as Device has it (on top of ``shell``)
    content_query = Device.content_query
