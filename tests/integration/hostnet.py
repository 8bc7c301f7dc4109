"""The host's own interfaces, for tests that watch them for device traffic
(tests/integration is on sys.path through its conftest)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def host_uplinks() -> list[str]:
    """The host's default-route interfaces and docker0: where a leak would leave or cross."""
    out = subprocess.run(["ip", "-o", "-4", "route", "show", "default"], capture_output=True, text=True).stdout
    names = {line.split(" dev ")[1].split()[0] for line in out.splitlines() if " dev " in line}
    if Path("/sys/class/net/docker0").exists():
        names.add("docker0")
    return sorted(names)
