"""The device twin's steps of an analysis.

Services start under strace (host time stamps: strace itself runs on the
real clock, only the traced firmware carries the device clock library) and
the device clock is event-driven (real time while busy, a jump to the next
deadline while idle; ``sandbox/clock/twin_clock.py``); the host maps its
time stamps through the controller's segment log.  The firmware is stopped through the engine, not adb, so a firmware
that used up the pids limit or starved adbd can still be stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..bundle import Bundle
from ..canary.model import CanarySet
from ..clock.twin_clock import ClockConfig, TwinClock
from ..containers.device_container import TWIN_DATA_MOUNTS
from ..device.device import Device
from ..device.firmware import ServiceWrap, install_twin_bundle, start_services
from ..device.twin import TwinHandle, boot_twin, file_reader, hpctl_via_engine
from ..errors import DeviceError, HoneyphoneError
from ..monitor.strace_cmd import strace_options
from ..network.routing import fence_adbd, route_via
from ..device.trust import install_ca_twin
from .planting import PlantReport, plant
from .run_state import TraceClock
from .session import BootInfo, DeviceSession, SessionContext

TRACE_DIR = "/data/honeyphone/trace"
LOG_DIR = "/data/honeyphone/logs"


def wrap_for_strace(name: str, user: str) -> ServiceWrap:
    """Each service runs under its own strace, writing ``TRACE_DIR/<name>.strace``."""
    prefix = strace_options(f"{TRACE_DIR}/{name}.strace")
    if user != "root":
        prefix += ["-u", user]
    return ServiceWrap(argv_prefix=[*prefix, "--"], prefix_drops_privileges=True)


def pull_traces(device: Device, dest: Path, trace_dir: str = TRACE_DIR) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in device.shell(["ls", trace_dir]).text.split():
        if name.endswith(".strace") and "/" not in name:
            device.pull(f"{trace_dir}/{name}", dest / name)


class TwinSession:
    kind = "twin"
    trace_clock: TraceClock = "host"
    health_mounts: tuple[str, ...] = TWIN_DATA_MOUNTS

    def __init__(self, ctx: SessionContext) -> None:
        self._ctx = ctx
        self._handle: TwinHandle | None = None
        self._clock: TwinClock | None = None

    @property
    def handle(self) -> TwinHandle:
        if self._handle is None:
            raise DeviceError("the twin is not booted")
        return self._handle

    @property
    def device(self) -> Device:
        return self.handle.device

    def boot(self) -> BootInfo:
        c = self._ctx
        self._handle = boot_twin(c.settings, c.client, c.server, c.analysis_id, network=c.network,
                                 environment={"HONEYPHONE_DNS": c.fakenet.ip})
        cid = self._handle.container.container_id
        route_via(c.client, cid, c.fakenet.ip)
        fence_adbd(c.client, cid, c.network.gateway)  # issue 9: firmware cannot use adbd
        return BootInfo(cid, self._handle.container.ip, self._handle.boot_seconds)

    def install_ca(self, pem: bytes) -> None:
        install_ca_twin(self.device, pem, self._ctx.analysis_id)

    def plant(self, canaries: CanarySet) -> PlantReport:
        return plant(self.device, canaries)

    def start_firmware(self, bundle: Bundle, start_epoch: float, horizon_hours: float) -> TwinClock:
        config = ClockConfig(start_epoch=start_epoch, horizon_hours=horizon_hours, settings=self._ctx.settings.clock)
        install_twin_bundle(self.device, bundle, wrap_for_strace, clock=config.manifest_entry())
        self.device.shell(["mkdir", "-p", TRACE_DIR]).check()
        started = start_services(self.device)
        self._clock = TwinClock(file_reader(self._ctx.client, self.handle), config)
        state = self._ctx.state
        state.mapping = self._clock.mapping()
        for svc in started:
            state.services.append({"name": svc.name, "pid": svc.pid})
            state.mark("process_start", process=svc.name, pid=svc.pid)
        return self._clock

    def service_status(self) -> list[dict[str, Any]]:
        """``hpctl status``: which services still run and how the others ended."""
        try:
            rows = json.loads(hpctl_via_engine(self._ctx.client, self.handle, "status"))
        except (HoneyphoneError, ValueError) as exc:
            return [{"name": "?", "error": str(exc)[:300]}]
        return [dict(r) for r in rows if isinstance(r, dict)]

    def cpu_sessions(self, status: list[dict[str, Any]]) -> tuple[int, ...]:
        return tuple(int(r["pid"]) for r in status if isinstance(r.get("pid"), int))

    def stop_firmware(self) -> None:
        hpctl_via_engine(self._ctx.client, self.handle, "stop")
        if self._clock is not None:
            self._ctx.state.mapping = self._clock.mapping(refresh=True)  # every jump, with the firmware's own `date`
            self._ctx.state.health["clock"] = self._clock.state().health()

    def collect(self, syscalls_dir: Path, logs_dir: Path) -> None:
        pull_traces(self.device, syscalls_dir)
        if self._clock is not None:  # the jump log: every segment of the device clock, with why it jumped
            (syscalls_dir.parent / "clock-jumps.jsonl").write_bytes(self._clock.segment_log())
        logs_dir.mkdir(parents=True, exist_ok=True)
        for svc in self._ctx.state.services:
            try:
                self.device.pull(f"{LOG_DIR}/{svc['name']}.log", logs_dir / f"{svc['name']}.log")
            except HoneyphoneError:
                pass

    def close(self) -> None:
        if self._handle is not None:
            self._handle.device.disconnect()


def _conforms(session: TwinSession) -> DeviceSession:
    """Never called: mypy checks here that ``TwinSession`` is a ``DeviceSession``."""
    return session

__all__ = ["LOG_DIR", "TRACE_DIR", "TwinSession", "pull_traces", "wrap_for_strace"]
