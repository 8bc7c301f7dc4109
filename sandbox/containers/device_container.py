"""Starting and stopping device containers (the twin today, the emulator later).

Containers are unprivileged with an explicit, minimal capability set,
pids/memory/CPU limits and no host mount (what the device writes goes to
size-limited tmpfs mounts, see ``twin_tmpfs``), on the analysis' own
internal network, labelled with the analysis id.  The host reaches the device's adbd at ``<ip>:5555``.
"""

from __future__ import annotations

from dataclasses import dataclass

import docker
import docker.errors

from ..errors import DeviceError
from ..settings import Settings
from .labels import analysis_labels
from .network import DeviceNetwork, start_at_address

ADB_PORT = 5555

# What the twin's init needs: chown the providers, drop services to their uid,
# signal them, and let strace trace them.  Nothing else (no NET_ADMIN, no SYS_TIME).
TWIN_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL", "SYS_PTRACE"]


# Where the device may write: size-limited tmpfs mounts, no host directory.
# /data is the analysis' own scratch (Android keeps everything an app writes
# there); the twin's init recreates its layout at boot.
TWIN_DATA_MOUNTS = ("/data", "/data/honeyphone", "/tmp")


def twin_tmpfs(settings: Settings) -> dict[str, str]:
    limits = settings.device_limits
    return {
        "/run": "rw,nosuid,nodev,size=16m",
        "/data": f"rw,exec,nosuid,nodev,size={limits.data_bytes},mode=0755",
        "/data/honeyphone": f"rw,noexec,nosuid,nodev,size={limits.trace_bytes},mode=0755",
        "/tmp": f"rw,exec,nosuid,nodev,size={limits.tmp_bytes},mode=1777",
    }


@dataclass(frozen=True)
class DeviceContainer:
    analysis_id: str
    container_id: str
    name: str
    ip: str
    network: DeviceNetwork

    @property
    def serial(self) -> str:
        return f"{self.ip}:{ADB_PORT}"


def start_twin(
    client: docker.DockerClient,
    settings: Settings,
    analysis_id: str,
    network: DeviceNetwork,
    *,
    ip_index: int = 3,
    environment: dict[str, str] | None = None,
) -> DeviceContainer:
    """Create and start a twin container on ``network`` at a fixed address."""
    ip = network.host(ip_index)
    name = f"hp-twin-{analysis_id}"
    limits = settings.device_limits
    env = {"HONEYPHONE_SERIAL": f"HPTWIN{analysis_id[:10].upper()}"}
    env.update(environment or {})
    try:
        container = client.containers.create(
            settings.twin_image,
            name=name,
            hostname=f"twin-{analysis_id[:8]}",
            labels=analysis_labels(settings, analysis_id, "device"),
            environment=env,
            # Docker's embedded resolver (127.0.0.11) forwards to these servers:
            # name it the fakenet so no query can reach the host's resolver
            # (CVE-2024-29018 class of leaks on older engines).
            dns=[env["HONEYPHONE_DNS"]] if env.get("HONEYPHONE_DNS") else None,
            cap_drop=["ALL"],
            cap_add=TWIN_CAPS,
            security_opt=["no-new-privileges"],
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            nano_cpus=limits.nano_cpus,
            pids_limit=limits.pids,
            network=network.name,
            detach=True,
            init=False,
            tmpfs=twin_tmpfs(settings),
        )
    except docker.errors.ImageNotFound as exc:
        raise DeviceError(
            f"image {settings.twin_image} not found",
            fix="build it with `honeyphone images build twin`",
        ) from exc
    # Pin the address: connect with an explicit IP instead of Docker's choice.
    try:
        start_at_address(client, container, network, ip)
    except docker.errors.APIError as exc:
        raise DeviceError(f"cannot start twin container {name}: {exc}") from exc
    return DeviceContainer(analysis_id, str(container.id), name, ip, network)


def is_running(client: docker.DockerClient, container_id: str) -> bool:
    try:
        c = client.containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return bool(c.status == "running")


def container_logs(client: docker.DockerClient, container_id: str, tail: int = 50) -> str:
    try:
        return bytes(client.containers.get(container_id).logs(tail=tail)).decode("utf-8", "replace")
    except docker.errors.NotFound:
        return ""


def stop_container(client: docker.DockerClient, container_id: str, timeout: int = 5) -> None:
    try:
        c = client.containers.get(container_id)
    except docker.errors.NotFound:
        return
    try:
        c.stop(timeout=timeout)
    except docker.errors.APIError:
        pass
    c.remove(force=True, v=True)
