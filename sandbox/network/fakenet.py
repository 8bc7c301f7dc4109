"""Starting one analysis' fakenet container and getting its results back.

The fakenet is the device's only peer: it sits at ``.2`` on the analysis'
internal network and on no other network, runs with every capability
dropped except NET_ADMIN (its own iptables, TPROXY socket and routes) and
``ip_forward=0``, so even a compromised fakenet can only answer, never
forward.  The host waits for its ready file before starting the device,
fetches its per-analysis CA to install on the device, and at teardown stops
it gracefully (so mitmproxy closes its flow file) and copies
``/data/fakenet`` out with ``get_archive``, which works on a stopped
container.  Removal is left to the labelled cleanup.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from ..containers.device_container import container_logs
from ..containers.labels import analysis_labels
from ..containers.network import DeviceNetwork, start_at_address
from ..errors import DeviceError, ImageError
from ..settings import Settings
from .archive import extract_dir, read_file
from .logs import FakenetLogs

DATA_DIR = "/data/fakenet"
READY_PATH = f"{DATA_DIR}/ready"
CA_PATH = f"{DATA_DIR}/ca.pem"
FAKENET_IP_INDEX = 2
FAKENET_CAPS = ["NET_ADMIN"]
MEMORY_BYTES = 512 * 1024 * 1024
PIDS = 256


class FakenetError(DeviceError):
    """The fakenet did not start, died, or its results cannot be read."""


@dataclass(frozen=True)
class FakenetHandle:
    analysis_id: str
    container_id: str
    name: str
    ip: str
    network: DeviceNetwork

    @property
    def dns_server(self) -> str:
        """What the device's resolv.conf must name (``HONEYPHONE_DNS``)."""
        return self.ip


@dataclass(frozen=True)
class FakenetReady:
    """What the fakenet reported once everything was up."""

    ip: str
    answer_ip: str
    udp_mode: str  # "tproxy" (UDP records carry orig_dst) or "redirect"
    ports: tuple[tuple[str, int], ...]


def fakenet_environment(answer_ip: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env: dict[str, str] = {"HONEYPHONE_FAKENET_IFACE": "eth0"}
    if answer_ip is not None:
        env["HONEYPHONE_FAKENET_ANSWER_IP"] = answer_ip
    env.update(extra or {})
    return env


def start_fakenet(
    client: docker.DockerClient,
    settings: Settings,
    analysis_id: str,
    network: DeviceNetwork,
    *,
    ip_index: int = FAKENET_IP_INDEX,
    answer_ip: str | None = None,
    environment: dict[str, str] | None = None,
) -> FakenetHandle:
    """Create and start the fakenet at a fixed address on ``network`` only.

    ``answer_ip`` is what every DNS A query is answered with (default: the
    fakenet's own address); ``environment`` passes other
    ``HONEYPHONE_FAKENET_*`` settings (HTTP_BODY, HTTP_STATUS, TXT, ...).
    """
    ip = network.host(ip_index)
    name = f"hp-fakenet-{analysis_id}"
    try:
        container = client.containers.create(
            settings.fakenet_image,
            name=name,
            hostname="fakenet",
            labels=analysis_labels(settings, analysis_id, "fakenet"),
            environment=fakenet_environment(answer_ip, environment),
            cap_drop=["ALL"],
            cap_add=FAKENET_CAPS,
            security_opt=["no-new-privileges"],
            sysctls={
                "net.ipv4.ip_forward": "0",
                "net.ipv6.conf.all.disable_ipv6": "1",
                "net.ipv6.conf.default.disable_ipv6": "1",
            },
            mem_limit=MEMORY_BYTES,
            memswap_limit=MEMORY_BYTES,
            nano_cpus=settings.device_limits.nano_cpus,
            pids_limit=PIDS,
            network=network.name,
            detach=True,
            init=False,
            tmpfs={"/run": "rw,nosuid,nodev,size=16m,mode=0700"},
        )
    except docker.errors.ImageNotFound as exc:
        raise ImageError(
            f"image {settings.fakenet_image} not found",
            fix="build it with `honeyphone images build fakenet`",
        ) from exc
    try:
        start_at_address(client, container, network, ip)
    except docker.errors.APIError as exc:
        raise FakenetError(f"cannot start fakenet container {name}: {exc}") from exc
    attached = set((container.attrs.get("NetworkSettings") or {}).get("Networks") or {})
    if attached != {network.name}:
        container.remove(force=True)
        raise FakenetError(f"fakenet {name} is attached to {sorted(attached)}, expected only {network.name}")
    return FakenetHandle(analysis_id, str(container.id), name, ip, network)


def _status(client: docker.DockerClient, handle: FakenetHandle) -> str:
    try:
        return str(client.containers.get(handle.container_id).status)
    except docker.errors.NotFound:
        return "gone"


def wait_ready(client: docker.DockerClient, handle: FakenetHandle, timeout: float = 90.0) -> FakenetReady:
    """Block until the fakenet's ready file appears; fail fast if it dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = json.loads(read_file(client, handle.container_id, READY_PATH, max_bytes=64 * 1024))
            ports = tuple(sorted((str(k), int(v)) for k, v in dict(info.get("ports", {})).items()))
            return FakenetReady(str(info["ip"]), str(info["answer_ip"]), str(info["udp_mode"]), ports)
        except FileNotFoundError:
            pass
        status = _status(client, handle)
        if status not in ("created", "running"):
            logs = container_logs(client, handle.container_id)
            raise FakenetError(f"fakenet {handle.name} is {status} before it was ready\n--- fakenet log ---\n{logs}")
        if time.monotonic() >= deadline:
            logs = container_logs(client, handle.container_id)
            raise FakenetError(f"fakenet {handle.name} not ready after {timeout:.0f}s\n--- fakenet log ---\n{logs}")
        time.sleep(0.2)


def fetch_ca_pem(client: docker.DockerClient, handle: FakenetHandle) -> bytes:
    """This analysis' interception CA certificate (PEM); the key never leaves the fakenet."""
    try:
        pem = read_file(client, handle.container_id, CA_PATH, max_bytes=64 * 1024)
    except FileNotFoundError as exc:
        raise FakenetError(f"fakenet {handle.name} has no CA yet; call wait_ready first") from exc
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise FakenetError(f"fakenet {handle.name} returned something that is not a PEM certificate")
    return pem


def stop_fakenet(client: docker.DockerClient, handle: FakenetHandle, timeout: int = 15) -> None:
    """Stop gracefully (SIGTERM) so every log and the mitmproxy flow file are complete.

    The container is kept so ``collect_logs`` can still copy from it; the
    labelled cleanup removes it.
    """
    try:
        client.containers.get(handle.container_id).stop(timeout=timeout)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise FakenetError(f"cannot stop fakenet {handle.name}: {exc}") from exc


def collect_logs(client: docker.DockerClient, handle: FakenetHandle, dest_dir: Path) -> FakenetLogs:
    """Copy ``/data/fakenet`` to ``dest_dir/fakenet``; best after ``stop_fakenet``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        extract_dir(client, handle.container_id, DATA_DIR, dest_dir)
    except FileNotFoundError as exc:
        raise FakenetError(f"fakenet {handle.name} has no {DATA_DIR}") from exc
    return FakenetLogs(dest_dir / Path(DATA_DIR).name)
