"""Containment: a device reaches nothing but its own fakenet.

Two analyses are booted side by side.  Device A tries (a) a listener the
test opens on A's host bridge address, (b) B's device and B's fakenet, and
(c) documentation addresses, once with its normal route and once with its
route forced through the host (as if it had rewritten its own routing).
The host listener must see nothing, B must see nothing of A, foreign
traffic may only ever reach A's fakenet, and the host's uplinks must never
carry it.  After teardown no container, network, firewall rule or bridge of
either analysis may remain.  Traffic goes only to loopback-free test
listeners on the host bridge and to our own containers.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hostnet import uplink_bpf
from netlab import ContainedAnalysis, Packet, free_port, host_uplinks, read_pcap

from sandbox.containers.labels import analysis_filter
from sandbox.network.capture import Capture
from sandbox.network.containment import list_rules
from sandbox.network.routing import route_via

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("net-containment")]

PROBE = r'''
import json, socket, sys
targets = json.loads(sys.argv[1])
out = {}
for name, (host, port, proto, payload) in targets.items():
    try:
        if proto == "udp":
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.sendto(payload.encode(), (host, port))
            out[name] = "sent"
        else:
            s = socket.create_connection((host, port), timeout=4)
            s.sendall(payload.encode())
            s.close()
            out[name] = "connected"
    except Exception as exc:
        out[name] = "failed " + type(exc).__name__
print(json.dumps(out))
'''


@dataclass(frozen=True)
class Evidence:
    a: ContainedAnalysis
    b: ContainedAnalysis
    a_device: str
    b_device: str
    b_fakenet: str
    gateway_probe: dict[str, Any]
    peer_probe: dict[str, Any]
    misrouted_probe: dict[str, Any]
    listener_tcp_accepted: bool
    listener_udp_received: bool
    a_packets: list[Packet]
    b_packets: list[Packet]
    uplink_packets: dict[str, int]
    fakenet_facts: dict[str, Any]
    leftovers: dict[str, tuple[int, int, int, bool]]


def probe(a: ContainedAnalysis, targets: dict[str, tuple[str, int, str, str]]) -> dict[str, Any]:
    return dict(json.loads(a.run_python(PROBE, json.dumps(targets))))


def bridge_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


# Outside addresses device A sends to with its route forced through the host.
MISROUTED = ("203.0.113.77", "192.0.2.77")


@pytest.fixture(scope="module")
def evidence(contained_factory: Callable[..., ContainedAnalysis], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evidence]:
    a = contained_factory(trust_ca=False)
    b = contained_factory(trust_ca=False)
    assert a.network and b.network and a.fakenet and b.fakenet and a.twin and b.twin
    container = a.client.containers.get(a.fakenet.container_id)
    host_config = container.attrs["HostConfig"]
    fakenet_facts = {
        "ip_forward": container.exec_run(["cat", "/proc/sys/net/ipv4/ip_forward"]).output.decode().strip(),
        "networks": sorted(container.attrs["NetworkSettings"]["Networks"]),
        "cap_add": host_config["CapAdd"],
        "cap_drop": host_config["CapDrop"],
        "privileged": host_config["Privileged"],
    }
    pcap_dir = tmp_path_factory.mktemp("uplinks")
    uplinks = [Capture(iface, pcap_dir / f"{iface}.pcap", bpf=uplink_bpf(iface, a.settings.subnet_pool, MISROUTED)).start()
               for iface in host_uplinks()]
    port = free_port()
    tcp_listener = socket.socket()
    udp_listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tcp_listener.bind((a.network.gateway, port))
        tcp_listener.listen(8)
        udp_listener.bind((a.network.gateway, port))
        gw = a.network.gateway
        gateway_probe = probe(a, {"tcp": (gw, port, "tcp", "hello-host"), "udp": (gw, port, "udp", "hello-host")})
        peer_probe = probe(a, {
            "b_adbd": (b.device_ip, 5555, "tcp", "CNXN-from-a"),
            "b_fakenet_http": (b.fakenet.ip, 80, "tcp", "GET /from-a HTTP/1.0\r\n\r\n"),
            "b_fakenet_dns": (b.fakenet.ip, 53, "udp", "dns-from-a"),
        })
        # As if the firmware had rewritten its route to the host: the host must not forward.
        route_via(a.client, a.twin.container.container_id, gw)
        try:
            misrouted_probe = probe(a, {
                "tcp": (MISROUTED[0], 80, "tcp", "GET /misrouted HTTP/1.0\r\n\r\n"),
                "udp": (MISROUTED[1], 9999, "udp", "misrouted-udp"),
            })
        finally:
            route_via(a.client, a.twin.container.container_id, a.fakenet.ip)
        readable, _, _ = select.select([tcp_listener, udp_listener], [], [], 1.0)
        accepted = tcp_listener in readable
        received = udp_listener in readable
    finally:
        tcp_listener.close()
        udp_listener.close()
        uplink_counts = {c.iface: c.stop().captured or 0 for c in uplinks}
    a_device, b_device, b_fakenet = a.device_ip, b.device_ip, b.fakenet.ip
    a.teardown()
    b.teardown()
    leftovers = {
        x.analysis_id: (
            len(x.client.containers.list(all=True, ignore_removed=True, filters=analysis_filter(x.settings, x.analysis_id))),
            len(x.client.networks.list(filters=analysis_filter(x.settings, x.analysis_id))),
            len(list_rules(x.analysis_id)),
            bridge_exists(x.network.bridge) if x.network else False,
        )
        for x in (a, b)
    }
    yield Evidence(a, b, a_device, b_device, b_fakenet, gateway_probe, peer_probe, misrouted_probe, accepted,
                   received, read_pcap(a.pcap), read_pcap(b.pcap), uplink_counts, fakenet_facts, leftovers)


def test_device_cannot_reach_the_host_bridge_address(evidence: Evidence) -> None:
    assert evidence.gateway_probe["tcp"].startswith("failed"), evidence.gateway_probe
    assert not evidence.listener_tcp_accepted
    assert not evidence.listener_udp_received


def test_device_cannot_reach_another_analysis(evidence: Evidence) -> None:
    # Off-subnet addresses go to A's own fakenet, which answers them itself...
    assert evidence.a.logs is not None and evidence.b.logs is not None
    a_conns = {c.orig_dst for c in evidence.a.logs.tcp_connections()}
    assert f"{evidence.b_device}:5555" in a_conns and f"{evidence.b_fakenet}:80" in a_conns
    # ...and nothing of A ever reaches B: not its logs, not its bridge.
    a_ip = evidence.a_device
    b_logs = evidence.b.logs
    assert not [c for c in b_logs.tcp_connections() if c.client.startswith(a_ip + ":")]
    assert not [q for q in b_logs.dns_queries() if q.client.startswith(a_ip + ":")]
    assert not [u for u in b_logs.udp_datagrams() if u.client.startswith(a_ip + ":")]
    assert not [p for p in evidence.b_packets if a_ip in (p.src, p.dst)]


def test_misrouted_traffic_is_dropped_by_the_host(evidence: Evidence) -> None:
    assert evidence.misrouted_probe["tcp"].startswith("failed"), evidence.misrouted_probe
    assert evidence.a.logs is not None
    assert not [c for c in evidence.a.logs.tcp_connections() if c.orig_dst.startswith("203.0.113.77:")]
    assert not [u for u in evidence.a.logs.udp_datagrams() if u.head == b"misrouted-udp"]


def test_host_uplinks_never_carry_device_traffic(evidence: Evidence) -> None:
    assert evidence.uplink_packets and all(n == 0 for n in evidence.uplink_packets.values()), evidence.uplink_packets


def test_each_analysis_has_its_own_ca(evidence: Evidence) -> None:
    assert evidence.a.ca_pem and evidence.b.ca_pem and evidence.a.ca_pem != evidence.b.ca_pem


def test_nothing_remains_after_teardown(evidence: Evidence) -> None:
    assert evidence.a.cleanup_errors == () and evidence.b.cleanup_errors == ()
    assert all(v == (0, 0, 0, False) for v in evidence.leftovers.values()), evidence.leftovers


def test_fakenet_is_minimal(evidence: Evidence) -> None:
    facts = evidence.fakenet_facts
    assert facts["ip_forward"] == "0"
    assert facts["networks"] == [evidence.a.network.name if evidence.a.network else ""]
    assert facts["cap_add"] == ["NET_ADMIN"] and facts["cap_drop"] == ["ALL"]
    assert facts["privileged"] is False
