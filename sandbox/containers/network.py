"""Per-analysis internal Docker networks.

Each device gets its own ``--internal`` bridge: Docker adds no route off the
host for it.  Subnets come from a configurable pool; two analyses racing for
the same subnet is resolved by Docker refusing the overlap and us moving on.

Docker plumbing only: fencing the pool off-host (an unreachable route) is
the network package's job, so analyses create their bridge through
``sandbox.network.bridge.create_device_network``, which does both.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import IPAMConfig, IPAMPool

from ..errors import DeviceError
from ..settings import Settings
from .labels import analysis_labels


@dataclass(frozen=True)
class DeviceNetwork:
    id: str
    name: str
    subnet: str
    gateway: str  # the host's own address on the bridge
    bridge: str  # host interface name, for firewall rules

    def host(self, index: int) -> str:
        """The index-th usable address of the subnet (1 is the gateway)."""
        return str(ipaddress.ip_network(self.subnet)[index])


def _used_subnets(client: docker.DockerClient) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    used = []
    for net in client.networks.list():
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Subnet"):
                used.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    return used


def create_internal_network(client: docker.DockerClient, settings: Settings, analysis_id: str) -> DeviceNetwork:
    """The analysis' ``--internal`` bridge on the first free subnet of the pool.

    Does not touch host routes; see ``sandbox.network.bridge`` for the call
    that also makes the pool unreachable off-host.
    """
    pool = ipaddress.ip_network(settings.subnet_pool)
    name = f"hp-{analysis_id}"
    last_error: Exception | None = None
    for candidate in pool.subnets(new_prefix=settings.subnet_prefix):
        if any(candidate.overlaps(u) for u in _used_subnets(client)):
            continue
        gateway = str(candidate[1])
        bridge = f"hp{analysis_id[:12]}"
        try:
            net = client.networks.create(
                name,
                driver="bridge",
                internal=True,
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(candidate), gateway=gateway)]),
                labels=analysis_labels(settings, analysis_id, "network"),
                options={"com.docker.network.bridge.name": bridge},
            )
        except docker.errors.APIError as exc:
            last_error = exc
            if "overlap" in str(exc).lower():
                continue
            raise DeviceError(f"cannot create network {name}: {exc}") from exc
        return DeviceNetwork(str(net.id), name, str(candidate), gateway, bridge)
    raise DeviceError(
        f"no free /{settings.subnet_prefix} subnet left in {settings.subnet_pool} ({last_error})",
        fix="run `honeyphone device down --all` to remove leftovers, or widen HONEYPHONE_SUBNET_POOL",
    )


def start_at_address(client: docker.DockerClient, container: Container, network: DeviceNetwork, ip: str) -> None:
    """Pin a created container to ``ip`` on ``network`` and start it.

    Docker picks addresses itself at create time; the device and fakenet need
    fixed ones (the gateway, the DNS server, the adb serial), so the endpoint
    is re-made with an explicit address before the first start.  On failure
    the container is removed and the engine's error propagates.
    """
    try:
        net = client.networks.get(network.id)
        net.disconnect(container)
        net.connect(container, ipv4_address=ip)
        container.start()
        container.reload()
    except docker.errors.APIError:
        container.remove(force=True)
        raise
