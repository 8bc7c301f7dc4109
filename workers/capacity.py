"""What this host can run: how many slots fit, and which device profiles work.

A worker that promised more slots than the host can hold would thrash every
analysis on it, so the agent refuses up front and says what the host has.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from sandbox.containers.emulator_container import kvm_available
from sandbox.errors import EnvironmentProblem
from sandbox.settings import Settings

_log = logging.getLogger(__name__)
GiB = 1024**3


@dataclass(frozen=True)
class HostCapacity:
    memory_bytes: int  # available now
    cpus: float

    def max_slots(self, slot_memory_bytes: int, slot_cpus: float) -> int:
        return int(min(self.memory_bytes // max(slot_memory_bytes, 1), self.cpus // max(slot_cpus, 1e-9)))


def host_capacity() -> HostCapacity:
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        cpus = float(psutil.cpu_count() or 1)
    return HostCapacity(int(psutil.virtual_memory().available), cpus)


def check_slots(slots: int, settings: Settings, capacity: HostCapacity | None = None) -> None:
    """Raise ``EnvironmentProblem`` when ``slots`` analyses would not fit on this host."""
    cap = capacity or host_capacity()
    fleet = settings.fleet
    allowed = cap.max_slots(fleet.slot_memory_bytes, fleet.slot_cpus)
    if slots < 1:
        raise EnvironmentProblem(f"--slots must be at least 1, got {slots}")
    if slots > allowed:
        raise EnvironmentProblem(
            f"refusing {slots} slots: this host allows {allowed} "
            f"({cap.memory_bytes / GiB:.1f} GiB memory available at {fleet.slot_memory_bytes / GiB:.1f} GiB per slot, "
            f"{cap.cpus:g} CPUs at {fleet.slot_cpus:g} per slot)",
            fix=f"run with --slots {max(allowed, 1)} or fewer, or free memory/CPUs",
        )


def docker_answers(settings: Settings) -> bool:
    try:
        from sandbox.containers.engine import docker_client

        return bool(docker_client(settings).ping())
    except Exception as exc:  # no SDK, no daemon, no permission: all mean "no"
        _log.info("docker does not answer: %s", exc)
        return False


def android_image_present(settings: Settings) -> bool:
    """An emulator image is built here: ``honeyphone/android:<api>`` (any API level),
    or the image pinned with HONEYPHONE_ANDROID_IMAGE.  A Dockerfile alone is not
    enough: building needs the Android SDK, which this host may not have."""
    try:
        from sandbox.containers.emulator_container import local_android_image
        from sandbox.containers.engine import docker_client

        return local_android_image(settings, docker_client(settings)) is not None
    except Exception as exc:  # no SDK, no daemon, no permission: all mean "no"
        _log.info("cannot look for an android image: %s", exc)
        return False


def detect_profiles(settings: Settings) -> tuple[str, ...]:
    """``twin`` when Docker answers; ``android`` also when /dev/kvm works and an android image exists."""
    if not docker_answers(settings):
        return ()
    profiles = ["twin"]
    if kvm_available() and android_image_present(settings):
        profiles.append("android")
    return tuple(profiles)


def default_worker_name() -> str:
    return f"{os.uname().nodename}-{os.getpid()}"[:64].replace(" ", "-")


def firmware_cache(settings: Settings) -> Path:
    return settings.data_dir / "worker" / "firmware"
