"""Escape prober: every attempt is recorded as connected / refused / timeout."""
import ipaddress
import json
import os
import socket
import struct
import time


TIMEOUT = 1.5  # seconds: the device clock runs network waits in real time


def own_network() -> tuple[str, ipaddress.IPv4Network]:
    with open("/proc/net/route") as f:
        for line in f.read().splitlines()[1:]:
            iface, dest, gw, flags, _r, _u, _m, mask = line.split()[:8]
            if dest != "00000000" and gw == "00000000":
                net = ipaddress.IPv4Network(
                    (socket.inet_ntoa(struct.pack("<I", int(dest, 16))),
                     socket.inet_ntoa(struct.pack("<I", int(mask, 16)))), strict=False)
                return iface, net
    raise RuntimeError("no connected route")


def tcp(host: str, port: int, payload: bytes = b"") -> str:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as s:
            if payload:
                s.sendall(payload)
                try:
                    reply = s.recv(64)
                except OSError:
                    reply = b""
                return "connected:" + reply[:4].decode("latin-1")
            return "connected"
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timeout"
    except OSError as exc:
        return "error:" + (exc.strerror or type(exc).__name__)


def udp(host: str, port: int) -> str:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"escape-probe", (host, port))
        return "sent"
    except OSError as exc:
        return "error:" + (exc.strerror or type(exc).__name__)


def unix(path: str) -> str:
    if not os.path.exists(path):
        return "absent"
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(path)
        s.sendall(b"GET /containers/json HTTP/1.0\r\n\r\n")
        return "connected:" + s.recv(12).decode("latin-1")
    except OSError as exc:
        return "error:" + (exc.strerror or type(exc).__name__)


# An ADB CNXN message (version 0x01000000, maxdata 4096, "host::\0").
body = b"host::\0"
cnxn = struct.pack("<6I", 0x4E584E43, 0x01000000, 4096, len(body), sum(body) & 0xFFFFFFFF,
                   0x4E584E43 ^ 0xFFFFFFFF) + body

iface, net = own_network()
gateway = str(net.network_address + 1)
me = socket.gethostbyname(socket.gethostname())
targets = json.load(open("/system/etc/escape/targets.json"))
time.sleep(0.5)  # half a second after start: everything is up
results = {
    "gateway": gateway,
    "host_docker_2375": tcp(gateway, 2375, b"GET /containers/json HTTP/1.0\r\n\r\n"),
    "host_docker_2376": tcp(gateway, 2376),
    "host_ssh_22": tcp(gateway, 22),
    "host_adb_server_5037": tcp(gateway, 5037),
    "host_udp_2375": udp(gateway, 2375),
    "docker_sock_var_run": unix("/var/run/docker.sock"),
    "docker_sock_run": unix("/run/docker.sock"),
    "containerd_sock": unix("/run/containerd/containerd.sock"),
    "own_adbd_loopback": tcp("127.0.0.1", 5555, cnxn),
    "own_adbd_ip": tcp(me, 5555, cnxn),
    "outside_tcp_203": tcp("203.0.113.5", 443),
    "outside_tcp_198": tcp("198.51.100.7", 80, b"GET /escape HTTP/1.0\r\nHost: x\r\n\r\n"),
    "outside_udp_192": udp("192.0.2.9", 5353),
}
for i, other in enumerate(targets.get("other_devices", [])):
    results[f"other_device_{i}_adbd"] = tcp(other, 5555, cnxn)
    results[f"other_device_{i}_udp"] = udp(other, 9)
print("ESCAPE " + json.dumps(results), flush=True)
while True:
    time.sleep(3600)
