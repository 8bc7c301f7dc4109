"""What the pipeline asks of a device profile, and what it hands one.

The pipeline owns everything shared by every profile: the bundle, the
canaries, the internal network and its firewall rules, the fakenet, the
capture (brought up with the device by ``environment.bring_up``, which
``device up`` shares), the watchdog, detection and the report.  A session owns one
device kind's own steps, in the order that kind needs them:

* twin: boot -> CA -> plant -> push services -> start them under strace
  -> accelerated clock;
* emulator: boot (``adb root``) -> plant (``appops`` first) -> privileged
  apps + CA + reboot -> wall-clock steps through the firmware's alarms and
  jobs, strace attached to each new firmware process.

Both are driven over ADB by the same ``Device`` class; the session only
chooses which commands to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import docker

from ..bundle import Bundle
from ..canary.model import CanarySet
from ..clock.base import DeviceClock
from ..containers.network import DeviceNetwork
from ..device.adb_server import AdbServer
from ..device.device import Device
from ..network.fakenet import FakenetHandle
from ..settings import Settings
from .planting import PlantReport
from .run_state import RunState, TraceClock


@dataclass(frozen=True)
class SessionContext:
    """Everything a session may use; created by ``environment.bring_up`` once the fakenet is up."""

    settings: Settings
    client: docker.DockerClient
    server: AdbServer
    analysis_id: str
    network: DeviceNetwork
    fakenet: FakenetHandle
    state: RunState


@dataclass(frozen=True)
class BootInfo:
    container_id: str
    device_ip: str
    boot_seconds: float


class DeviceSession(Protocol):
    kind: str
    trace_clock: TraceClock
    health_mounts: tuple[str, ...]  # tmpfs mounts whose use the health section reports

    @property
    def device(self) -> Device:
        """The current ADB transport (it changes across reboots on the emulator)."""

    def boot(self) -> BootInfo:
        """Boot the device on the analysis network, its only way out the fakenet."""

    def install_ca(self, pem: bytes) -> None:
        """Make the device trust the fakenet's CA (on the emulator: with the firmware's reboot)."""

    def plant(self, canaries: CanarySet) -> PlantReport:
        """Insert the canaries and read every one back."""

    def start_firmware(self, bundle: Bundle, start_epoch: float, horizon_hours: float) -> DeviceClock:
        """Install and start the bundle's code; returns the device clock, under control,
        to run ``horizon_hours`` device hours from ``clock.origin()``.
        Each firmware process goes into ``RunState.services`` and the timeline."""

    def service_status(self) -> list[dict[str, Any]]:
        """Rows ``{name, pid, running, ...}`` per traced firmware process, for the health section."""

    def cpu_sessions(self, status: list[dict[str, Any]]) -> tuple[int, ...]:
        """Pids whose CPU use the container sample should report (twin services); () if none."""

    def stop_firmware(self) -> None:
        """Stop the firmware (and so its tracers) so the traces are complete."""

    def collect(self, syscalls_dir: Path, logs_dir: Path) -> None:
        """Pull the strace files and any firmware logs."""

    def close(self) -> None:
        """Drop the ADB transport; the containers go with the analysis cleanup."""


__all__ = ["BootInfo", "DeviceSession", "SessionContext"]
