"""Starting the Android emulator container (``honeyphone/android:<api>``).

Like the twin: unprivileged, explicit capabilities, memory/CPU/pids limits,
on the analysis' own internal network at a pinned address, labelled with the
analysis id, adbd reached at ``<ip>:5555`` (``launch.sh`` forwards it to the
emulator's loopback adb port).  Differences: ``/dev/kvm`` is passed in, the
limits are an emulator's (about 3 GB guest RAM and 2 cores), and the
fakenet's address goes in as ``HONEYPHONE_DNS`` so the emulator's own NAT
resolves through it (``-dns-server``); its traffic leaves the container's
interface like the twin's, so the same default route via the fakenet and
the same firewall rules apply.
"""

from __future__ import annotations

import os

import docker
import docker.errors

from ..errors import DeviceError, EnvironmentProblem
from ..settings import Settings
from .device_container import DeviceContainer
from .labels import analysis_labels
from .network import DeviceNetwork, start_at_address

KVM = "/dev/kvm"
# What launch.sh needs as root in the container: its own files (AVD, logs) and
# killing its children.  QEMU needs no capability with /dev/kvm passed in.
EMULATOR_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"]


def kvm_available() -> bool:
    try:
        fd = os.open(KVM, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def pick_android_image(settings: Settings, tags: list[str]) -> str | None:
    """Which local image runs the android profile: the pinned one (HONEYPHONE_ANDROID_IMAGE),
    else ``<repo>:<android_api>``, else the highest API level built here."""
    if settings.android_image:
        return settings.android_image if settings.android_image in tags else None
    preferred = settings.android_image_tag()
    if preferred in tags:
        return preferred
    apis = sorted(int(v) for r, _, v in (t.rpartition(":") for t in tags)
                  if r == settings.android_image_repo and v.isdigit())
    return f"{settings.android_image_repo}:{apis[-1]}" if apis else None


def local_android_image(settings: Settings, client: docker.DockerClient) -> str | None:
    tags: list[str] = []
    if settings.android_image:
        try:
            tags = list(client.images.get(settings.android_image).tags) + [settings.android_image]
        except docker.errors.ImageNotFound:
            return None
    else:
        for image in client.images.list(name=settings.android_image_repo):
            tags += image.tags
    return pick_android_image(settings, tags)


def android_preflight(settings: Settings, client: docker.DockerClient) -> str:
    """Before anything is created: KVM works and an image is here; returns the image to boot."""
    if not kvm_available():
        raise EnvironmentProblem(f"{KVM} cannot be opened: the Android emulator needs KVM",
                                 fix="run android bundles on a worker with hardware virtualisation and /dev/kvm "
                                     "(workers advertise the android profile only then)")
    image = local_android_image(settings, client)
    if image is None:
        raise EnvironmentProblem(
            f"no Android emulator image here ({settings.android_image or settings.android_image_repo + ':<api>'})",
            fix=f"build one with `honeyphone images build android --api {settings.android_api}` "
                "on a machine with the Android SDK (see README, Android emulator profile)")
    return image


def emulator_create_kwargs(
    settings: Settings, analysis_id: str, network: DeviceNetwork, image: str, environment: dict[str, str]
) -> dict[str, object]:
    """The ``containers.create`` arguments (separate so they can be checked without Docker)."""
    return {
        "image": image,
        "name": f"hp-android-{analysis_id}",
        "hostname": f"android-{analysis_id[:8]}",
        "labels": analysis_labels(settings, analysis_id, "device"),
        "environment": environment,
        "devices": [f"{KVM}:{KVM}:rwm"],
        "cap_drop": ["ALL"],
        "cap_add": EMULATOR_CAPS,
        "security_opt": ["no-new-privileges"],
        "mem_limit": settings.android_memory_bytes,
        "memswap_limit": settings.android_memory_bytes,
        "nano_cpus": settings.android_nano_cpus,
        "pids_limit": 4096,
        "shm_size": "256m",
        "network": network.name,
        "detach": True,
        "init": True,
        "tmpfs": {"/tmp": "rw,exec,nosuid,nodev,size=256m,mode=1777"},
    }


def start_emulator(
    client: docker.DockerClient,
    settings: Settings,
    analysis_id: str,
    network: DeviceNetwork,
    *,
    image: str | None = None,
    ip_index: int = 3,
    environment: dict[str, str] | None = None,
) -> DeviceContainer:
    """Create and start an emulator container on ``network`` at a fixed address."""
    if not kvm_available():
        raise EnvironmentProblem(f"{KVM} cannot be opened: the Android emulator needs KVM",
                                 fix="run on a host with hardware virtualisation and access to /dev/kvm")
    tag = image or settings.android_image_tag()
    ip = network.host(ip_index)
    kwargs = emulator_create_kwargs(settings, analysis_id, network, tag, dict(environment or {}))
    try:
        container = client.containers.create(**kwargs)
    except docker.errors.ImageNotFound as exc:
        raise DeviceError(f"image {tag} not found",
                          fix=f"build it with `honeyphone images build android --api {settings.android_api}`") from exc
    try:
        start_at_address(client, container, network, ip)
    except docker.errors.APIError as exc:
        raise DeviceError(f"cannot start emulator container {kwargs['name']}: {exc}") from exc
    return DeviceContainer(analysis_id, str(container.id), str(kwargs["name"]), ip, network)


__all__ = ["EMULATOR_CAPS", "android_preflight", "emulator_create_kwargs", "kvm_available", "local_android_image",
           "pick_android_image", "start_emulator"]
