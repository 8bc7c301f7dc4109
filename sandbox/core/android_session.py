"""The Android emulator's steps of an analysis.

Order, and why:

1. boot (``adb root``), the container's route through the fakenet, and the
   guest firewall rule that keeps apps away from the emulator's own console
   and adb on 10.0.2.2;
2. plant, with ``appops set com.android.shell WRITE_SMS allow`` checked
   first (without it SMS inserts vanish silently).  Planting comes before
   the firmware is installed, so the firmware's first run already finds the
   data, as on a phone that took an update;
3. the bundle's ``[[apps]]`` into ``/system/priv-app`` with their
   privapp-permissions, the fakenet CA (file in the system store on API
   <= 33, mounts into zygote's view on 34+), one reboot, checks; the fence
   again (iptables does not survive a reboot);
4. ``settings put global auto_time 0``, the wall clock to the start time,
   then steps with ``cmd alarm set-time`` through the firmware's pending
   RTC alarms and job deadlines, forcing due jobs; after every step each
   new process of a firmware package gets ``strace -f -p``;
5. ``am force-stop`` per package, tracers detached, traces and logcat
   pulled.  strace in the guest stamps device time
   (``RunState.trace_clock = "device"``); the report maps it back.

What this does not see: a firmware process that starts and ends between
two clock steps is not traced (its network traffic is still captured and
attributed to the device), nor what an app did before strace attached.

None of this has run against a real emulator here (no Android image, no
KVM); it is unit-tested against a scripted shell that answers with the
outputs AOSP prints (tests/unit/core/test_core_android_session.py).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..bundle import Bundle
from ..canary.model import CanarySet
from ..clock.android_clock import AndroidClock, AndroidClockConfig
from ..containers.emulator_container import android_preflight
from ..device.android import dismiss_anr_dialogs, fence_emulator_host, package_processes
from ..device.android_strace import TRACE_DIR, StraceAttacher
from ..device.device import Device
from ..device.emulator import AndroidHandle, boot_android, install_firmware
from ..device.privapp import PrivApp, plan_apps
from ..errors import DeviceError, HoneyphoneError
from ..network.routing import route_via
from ..device.trust_android import AndroidTrust
from .planting import PlantReport, plant
from .run_state import TraceClock
from .session import BootInfo, DeviceSession, SessionContext
from .twin_session import pull_traces

LOGCAT_DIR = "/data/local/tmp/honeyphone"

BootFn = Callable[[SessionContext], AndroidHandle]
InstallFn = Callable[[SessionContext, AndroidHandle, list[PrivApp], AndroidTrust | None], AndroidHandle]


def _boot(ctx: SessionContext) -> AndroidHandle:
    return boot_android(ctx.settings, ctx.client, ctx.server, ctx.analysis_id, network=ctx.network,
                        environment={"HONEYPHONE_DNS": ctx.fakenet.ip},
                        image=android_preflight(ctx.settings, ctx.client))


def _install(ctx: SessionContext, handle: AndroidHandle, apps: list[PrivApp],
             trust: AndroidTrust | None) -> AndroidHandle:
    return install_firmware(handle, ctx.server, ctx.settings, apps, trust)


def _route(ctx: SessionContext, handle: AndroidHandle) -> None:
    route_via(ctx.client, handle.container.container_id, ctx.fakenet.ip)


def trace_name(trace_path: str) -> str:
    """``/…/trace/com.example.fw-1234.strace`` -> ``com.example.fw-1234`` (the health section's service name)."""
    name = trace_path.rsplit("/", 1)[-1]
    return name[: -len(".strace")] if name.endswith(".strace") else name


class AndroidSession:
    kind = "android"
    trace_clock: TraceClock = "device"
    health_mounts: tuple[str, ...] = ()

    def __init__(self, ctx: SessionContext, *, boot: BootFn = _boot, install: InstallFn = _install,
                 route: Callable[[SessionContext, AndroidHandle], None] = _route,
                 clock_factory: Callable[..., AndroidClock] = AndroidClock) -> None:
        # boot/install/route/clock_factory are seams for the offline unit tests
        # (no emulator there); the pipeline uses the defaults.
        self._ctx = ctx
        self._boot_fn, self._install_fn, self._route_fn = boot, install, route
        self._clock_factory = clock_factory
        self._handle: AndroidHandle | None = None
        self._trust: AndroidTrust | None = None
        self._pem: bytes | None = None
        self._packages: tuple[str, ...] = ()
        self._attacher: StraceAttacher | None = None
        self._clock: AndroidClock | None = None
        self.dismissed: list[str] = []

    @property
    def handle(self) -> AndroidHandle:
        if self._handle is None:
            raise DeviceError("the emulator is not booted")
        return self._handle

    @property
    def device(self) -> Device:
        return self.handle.device

    def boot(self) -> BootInfo:
        self._handle = self._boot_fn(self._ctx)
        self._route_fn(self._ctx, self._handle)
        fence_emulator_host(self.device)
        self._ctx.state.health["android"] = {"api": self._handle.api}
        return BootInfo(self._handle.container.container_id, self._handle.container.ip, self._handle.boot_seconds)

    def install_ca(self, pem: bytes) -> None:
        """Kept for the firmware's reboot: the CA goes in with the apps (one reboot for both)."""
        self._trust = AndroidTrust(pem, self.handle.api)

    def plant(self, canaries: CanarySet) -> PlantReport:
        return plant(self.device, canaries, android=True)

    def start_firmware(self, bundle: Bundle, start_epoch: float, horizon_hours: float) -> AndroidClock:
        apps = plan_apps(bundle)
        if not apps:
            raise HoneyphoneError("the android bundle lists no [[apps]]: there is no firmware to run",
                                  fix="add the firmware's APKs as [[apps]] entries in firmware.toml")
        self._packages = tuple(a.manifest.package for a in apps)
        self._handle = self._install_fn(self._ctx, self.handle, apps, self._trust)
        fence_emulator_host(self.device)  # the reboot dropped it
        self._ctx.state.health.setdefault("android", {})["ca"] = self._trust.name if self._trust else None
        self._attacher = StraceAttacher(self._packages)
        config = AndroidClockConfig(start_epoch=start_epoch, packages=self._packages, api_level=self.handle.api)
        self._clock = self._clock_factory(self.device, config, after_step=self._after_step)
        self._clock.configure()
        self._ctx.state.mapping = self._clock.mapping()
        self._attach()
        return self._clock

    def _attach(self) -> None:
        assert self._attacher is not None
        for proc in self._attacher.attach_new(self.device):
            self._ctx.state.mark("process_start", process=proc.name, pid=proc.pid)
            self._ctx.state.services.append({"name": proc.name, "pid": proc.pid})

    def _after_step(self, device_epoch: float) -> None:
        """After each clock step: clear pop-ups a jump can raise, trace new firmware processes."""
        self.dismissed += dismiss_anr_dialogs(self.device, rounds=1)
        self._attach()

    def service_status(self) -> list[dict[str, Any]]:
        if self._attacher is None:
            return []
        try:
            running = {p.pid for p in package_processes(self.device, self._packages)}
        except HoneyphoneError as exc:
            return [{"name": "?", "error": str(exc)[:300]}]
        return [{"name": trace_name(path), "pid": pid, "running": pid in running, "exit": None,
                 "process": self._attacher.names.get(pid)}
                for pid, path in self._attacher.attached.items()]

    def cpu_sessions(self, status: list[dict[str, Any]]) -> tuple[int, ...]:
        return ()  # guest processes are invisible to the container's cgroup sample

    def stop_firmware(self) -> None:
        for pkg in self._packages:
            self.device.shell(shlex.join(["am", "force-stop", pkg]), timeout=30)
        if self._attacher is not None:
            self._attacher.detach_all(self.device)
        if self._clock is not None:
            self._ctx.state.mapping = self._clock.mapping()
            self._ctx.state.health.setdefault("android", {}).update(
                clock_steps=len(self._clock.steps), forced_jobs=len(self._clock.forced_jobs),
                dismissed_dialogs=list(self.dismissed))

    def collect(self, syscalls_dir: Path, logs_dir: Path) -> None:
        pull_traces(self.device, syscalls_dir, TRACE_DIR)
        logs_dir.mkdir(parents=True, exist_ok=True)
        # logcat stamps device time (epoch seconds with -v epoch), like the traces
        remote = f"{LOGCAT_DIR}/logcat.txt"
        res = self.device.shell(f"mkdir -p {LOGCAT_DIR} && logcat -d -v epoch -v uid -f {remote}", timeout=120)
        if res.exit_code == 0:
            self.device.pull(remote, logs_dir / "logcat.txt")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.device.disconnect()


def _conforms(session: AndroidSession) -> DeviceSession:
    """Never called: mypy checks here that ``AndroidSession`` is a ``DeviceSession``."""
    return session


__all__ = ["AndroidSession", "trace_name"]
