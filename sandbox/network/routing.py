"""Pointing a device's default route at its fakenet, from the host.

The device container runs without NET_ADMIN (hostile firmware must not
rewrite its own network), so the host enters only the container's network
namespace with ``nsenter -n`` and replaces the route there.  Everything the
device sends to an address off its subnet then goes to the fakenet, which
redirects it to its own listeners.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass

import docker
import docker.errors

from ..errors import DeviceError, EnvironmentProblem


@dataclass(frozen=True)
class RouteResult:
    container_id: str
    pid: int
    via: str
    table: str  # ``ip route show`` in the device's netns afterwards


def container_pid(client: docker.DockerClient, container_id: str) -> int:
    try:
        c = client.containers.get(container_id)
    except docker.errors.NotFound as exc:
        raise DeviceError(f"container {container_id[:12]} does not exist") from exc
    pid = int((c.attrs.get("State") or {}).get("Pid") or 0)
    if pid <= 0:
        raise DeviceError(f"container {container_id[:12]} is not running")
    return pid


def _nsenter_ip(pid: int, *args: str) -> subprocess.CompletedProcess[str]:
    nsenter, ip = shutil.which("nsenter"), shutil.which("ip")
    if nsenter is None or ip is None:
        raise EnvironmentProblem("nsenter and ip are needed on the host", fix="apt-get install -y util-linux iproute2")
    return subprocess.run([nsenter, "-t", str(pid), "-n", ip, *args], capture_output=True, text=True, timeout=30)


def default_route_argv(via: str) -> list[str]:
    ipaddress.IPv4Address(via)  # raises ValueError for anything else
    return ["route", "replace", "default", "via", via]


def route_via(client: docker.DockerClient, container_id: str, via: str) -> RouteResult:
    """Make ``via`` (the fakenet's address) the device's default gateway."""
    argv = default_route_argv(via)
    pid = container_pid(client, container_id)
    proc = _nsenter_ip(pid, *argv)
    if proc.returncode != 0:
        raise DeviceError(f"cannot set the default route of {container_id[:12]} via {via}: {proc.stderr.strip()}")
    table = _nsenter_ip(pid, "route", "show").stdout
    if f"default via {via} " not in table + " ":
        raise DeviceError(f"default route of {container_id[:12]} is not via {via} after setting it:\n{table}")
    return RouteResult(container_id, pid, via, table)


def fence_adbd_argv(allowed: str, port: int = 5555) -> list[str]:
    ipaddress.IPv4Address(allowed)  # raises ValueError for anything else
    return ["-w", "10", "-I", "INPUT", "-p", "tcp", "--dport", str(port), "!", "-s", f"{allowed}/32",
            "-j", "REJECT", "--reject-with", "tcp-reset"]


def fence_adbd(client: docker.DockerClient, container_id: str, allowed: str, port: int = 5555) -> None:
    """Let only ``allowed`` (the host's bridge address) reach the device's adbd.

    The twin's adbd listens on every address and hands out root shells without
    authentication, as the host needs.  Firmware must not use it: a shell
    opened through adbd runs outside the service's strace (and as root).  So
    a rule in the device's own network namespace, set from the host like the
    route, rejects connections to the adb port from anything but the host,
    loopback and the device's own address included.  The device has no
    NET_ADMIN and cannot remove it.
    """
    pid = container_pid(client, container_id)
    nsenter, iptables = shutil.which("nsenter"), shutil.which("iptables")
    if nsenter is None or iptables is None:
        raise EnvironmentProblem("nsenter and iptables are needed on the host",
                                 fix="apt-get install -y util-linux iptables")
    proc = subprocess.run([nsenter, "-t", str(pid), "-n", iptables, *fence_adbd_argv(allowed, port)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise DeviceError(f"cannot fence the adb port of {container_id[:12]}: {proc.stderr.strip()}")
