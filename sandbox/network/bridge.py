"""The analysis' bridge, created fenced: the one way an analysis gets its network.

``sandbox.containers.network`` creates the ``--internal`` Docker bridge and
knows nothing of host routes; ``containment`` owns the host side.  Creating a
bridge without first making the subnet pool unreachable off-host would let
host packets to a pool address whose bridge is gone leave the machine, so
the two steps are joined here rather than leaving each caller to remember.
"""

from __future__ import annotations

import docker

from ..containers.network import DeviceNetwork, create_internal_network
from ..settings import Settings
from .containment import ensure_pool_unreachable

__all__ = ["create_device_network"]


def create_device_network(client: docker.DockerClient, settings: Settings, analysis_id: str) -> DeviceNetwork:
    """Make the pool unreachable off-host (idempotent), then create the analysis' bridge."""
    ensure_pool_unreachable(settings.subnet_pool)
    return create_internal_network(client, settings, analysis_id)
