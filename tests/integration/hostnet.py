"""The host's own interfaces, for tests that watch them for device traffic
(tests/integration is on sys.path through its conftest)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def host_uplinks() -> list[str]:
    """The host's default-route interfaces and docker0: where a leak would leave or cross."""
    out = subprocess.run(["ip", "-o", "-4", "route", "show", "default"], capture_output=True, text=True).stdout
    names = {line.split(" dev ")[1].split()[0] for line in out.splitlines() if " dev " in line}
    if Path("/sys/class/net/docker0").exists():
        names.add("docker0")
    return sorted(names)


def uplink_bpf(iface: str, pool: str, targets: Sequence[str]) -> str:
    """What a device's leak would look like leaving ``iface``: a frame the host
    sends to one of the device's outside ``targets`` (masqueraded or not), or
    from any address of the analysis ``pool``.

    Not whole documentation ranges: this host's own uplink may be numbered in
    one (192.0.2.2/24 here), and then every packet of the host matches -- a
    DNS lookup of another test's container was once counted as device
    traffic (CI, 2026-12-08).
    """
    mac = Path(f"/sys/class/net/{iface}/address").read_text().strip()
    return f"ether src {mac} and (" + " or ".join([*(f"host {t}" for t in targets), f"src net {pool}"]) + ")"
