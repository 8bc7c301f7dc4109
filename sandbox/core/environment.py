"""A contained device environment: internal network, host firewall rules,
fakenet, optional capture, and a twin whose only way out is the fakenet.

Bringing it up is all-or-nothing: a failure at any step removes what the
earlier steps created (by the analysis label and rule comment) before the
error propagates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import docker

from ..containers.cleanup import CleanupReport, cleanup
from ..containers.network import DeviceNetwork
from ..network.bridge import create_device_network
from ..device.adb_server import AdbServer
from ..device.twin import TwinHandle, boot_twin
from ..network import containment
from ..network.capture import Capture
from ..network.fakenet import FakenetHandle, fetch_ca_pem, start_fakenet, wait_ready
from ..network.routing import fence_adbd, route_via
from ..device.trust import install_ca_twin
from ..settings import Settings

ADB_PORT = 5555


@dataclass(frozen=True)
class Environment:
    analysis_id: str
    network: DeviceNetwork
    fakenet: FakenetHandle
    twin: TwinHandle
    capture: Capture | None


def control_channel_filter(network: DeviceNetwork) -> str:
    """BPF that keeps the host's own adb session (the planting commands) out of the pcap."""
    return f"not (host {network.gateway} and tcp port {ADB_PORT})"


def bring_up(
    settings: Settings,
    client: docker.DockerClient,
    server: AdbServer,
    analysis_id: str,
    *,
    pcap: Path | None = None,
) -> Environment:
    capture: Capture | None = None
    try:
        network = create_device_network(client, settings, analysis_id)
        containment.install_rules(analysis_id, network.bridge)
        fakenet = start_fakenet(client, settings, analysis_id, network)
        if pcap is not None:
            capture = Capture(network.bridge, pcap, bpf=control_channel_filter(network)).start()
        wait_ready(client, fakenet)
        twin = boot_twin(settings, client, server, analysis_id, network=network,
                         environment={"HONEYPHONE_DNS": fakenet.ip})
        route_via(client, twin.container.container_id, fakenet.ip)
        fence_adbd(client, twin.container.container_id, network.gateway)
        install_ca_twin(twin.device, fetch_ca_pem(client, fakenet), analysis_id)
        return Environment(analysis_id, network, fakenet, twin, capture)
    except BaseException:
        if capture is not None:
            try:
                capture.stop()
            except Exception:
                pass
        tear_down(settings, client, analysis_id)
        raise


def tear_down(settings: Settings, client: docker.DockerClient, analysis_id: str) -> CleanupReport:
    """Remove every container, network and firewall rule of the analysis."""
    return cleanup(client, settings, analysis_id, extra=(containment.remove_rules,))
