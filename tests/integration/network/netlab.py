"""Helpers for the network containment tests: boot a contained analysis, read pcaps.

``boot_contained`` boots one fully contained analysis the way the pipeline does:
internal network -> host firewall rules -> host capture on the bridge ->
fakenet (wait for ready) -> twin with ``HONEYPHONE_DNS`` -> default route via
the fakenet -> the fakenet's CA installed on the twin.  Teardown (also on
failure) stops the capture and the fakenet gracefully, collects the logs and
removes every container, network and firewall rule of the analysis.  Analysis
ids are random and each test module has its own adb server (the shared
``hp_settings`` fixture), so modules are xdist-safe.  A uniquely named module
rather than conftest.py, so ``from netlab import ...`` is never ambiguous.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import dpkt
from hostnet import host_uplinks  # noqa: F401  (re-exported for the network tests)

from sandbox.containers.cleanup import cleanup
from sandbox.containers.network import DeviceNetwork
from sandbox.network.bridge import create_device_network
from sandbox.device import AdbServer
from sandbox.device.twin import TwinHandle, boot_twin
from sandbox.network.capture import Capture, CaptureResult
from sandbox.network.containment import install_rules, remove_rules
from sandbox.network.fakenet import (
    FakenetHandle,
    FakenetReady,
    collect_logs,
    fetch_ca_pem,
    start_fakenet,
    stop_fakenet,
    wait_ready,
)
from sandbox.network.logs import FakenetLogs
from sandbox.network.routing import route_via
from sandbox.device.trust import install_ca_twin
from sandbox.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ContainedAnalysis:
    """One contained analysis; ``teardown`` is idempotent and returns the evidence."""

    analysis_id: str
    client: docker.DockerClient
    settings: Settings
    workdir: Path
    network: DeviceNetwork | None = None
    capture: Capture | None = None
    fakenet: FakenetHandle | None = None
    twin: TwinHandle | None = None
    ready: FakenetReady | None = None
    ca_pem: bytes = b""
    capture_result: CaptureResult | None = None
    logs: FakenetLogs | None = None
    torn_down: bool = False
    cleanup_errors: tuple[str, ...] = field(default=())

    @property
    def device_ip(self) -> str:
        assert self.twin is not None
        return self.twin.container.ip

    @property
    def pcap(self) -> Path:
        return self.workdir / "bridge.pcap"

    def fakenet_mac(self) -> str:
        assert self.fakenet is not None and self.network is not None
        attrs = self.client.containers.get(self.fakenet.container_id).attrs
        return str(attrs["NetworkSettings"]["Networks"][self.network.name]["MacAddress"]).lower()

    def run_python(self, script: str, *args: str, timeout: float = 60) -> str:
        """Run a Python script on the device over adb, as the firmware would."""
        assert self.twin is not None
        path = f"/data/local/tmp/hp-{secrets.token_hex(4)}.py"
        self.twin.device.push_bytes(script.encode(), path)
        result = self.twin.device.shell(["python3", path, *args], timeout=timeout)
        assert result.exit_code == 0, result.error_text
        return result.text

    def teardown(self) -> None:
        if self.torn_down:
            return
        self.torn_down = True
        try:
            if self.twin is not None:
                self.twin.device.disconnect()
                # Stop the device first: nothing new reaches the fakenet while it drains.
                try:
                    self.client.containers.get(self.twin.container.container_id).stop(timeout=5)
                except docker.errors.DockerException:
                    pass
            if self.capture is not None:
                self.capture_result = self.capture.stop()
            if self.fakenet is not None:
                stop_fakenet(self.client, self.fakenet)
                self.logs = collect_logs(self.client, self.fakenet, self.workdir)
        finally:
            report = cleanup(self.client, self.settings, self.analysis_id, extra=(remove_rules,))
            self.cleanup_errors = report.errors


def boot_contained(
    client: docker.DockerClient, settings: Settings, server: AdbServer, workdir: Path, *, trust_ca: bool = True
) -> ContainedAnalysis:
    a = ContainedAnalysis("t" + secrets.token_hex(5), client, settings, workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        a.network = create_device_network(client, settings, a.analysis_id)
        install_rules(a.analysis_id, a.network.bridge)
        a.capture = Capture(a.network.bridge, a.pcap).start()
        a.fakenet = start_fakenet(client, settings, a.analysis_id, a.network)
        a.ready = wait_ready(client, a.fakenet)
        a.ca_pem = fetch_ca_pem(client, a.fakenet)
        a.twin = boot_twin(settings, client, server, a.analysis_id, network=a.network,
                           environment={"HONEYPHONE_DNS": a.fakenet.dns_server})
        route_via(client, a.twin.container.container_id, a.fakenet.ip)
        if trust_ca:
            install_ca_twin(a.twin.device, a.ca_pem, a.analysis_id)
    except BaseException:
        a.teardown()
        raise
    return a


DOC_NETS = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


@dataclass(frozen=True)
class Packet:
    eth_src: str
    eth_dst: str
    src: str
    dst: str
    proto: str  # tcp | udp | other
    sport: int
    dport: int
    tcp_flags: int
    payload: bytes


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def read_pcap(path: Path) -> list[Packet]:
    """Every IPv4 packet of an Ethernet pcap, via dpkt (as an analyst's tool would read it)."""
    packets: list[Packet] = []
    with open(path, "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            l4 = ip.data
            if isinstance(l4, dpkt.tcp.TCP):
                proto, sport, dport, flags, payload = "tcp", l4.sport, l4.dport, l4.flags, bytes(l4.data)
            elif isinstance(l4, dpkt.udp.UDP):
                proto, sport, dport, flags, payload = "udp", l4.sport, l4.dport, 0, bytes(l4.data)
            else:
                proto, sport, dport, flags, payload = "other", 0, 0, 0, b""
            packets.append(Packet(_mac(eth.src), _mac(eth.dst), socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst),
                                  proto, sport, dport, flags, payload))
    return packets


def in_doc_ranges(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return any(ip in n for n in DOC_NETS)
