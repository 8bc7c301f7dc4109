"""iptables inside the fakenet's own network namespace.

Everything the device sends arrives on ``iface`` (the analysis network):

* UDP/TCP 53 -> the DNS server (nat REDIRECT);
* every other TCP, to any address and port -> the catch-all (nat REDIRECT,
  the original destination stays readable through SO_ORIGINAL_DST);
* every other UDP -> the UDP sink, by TPROXY when the kernel has it (the
  sink then sees the original destination), else by nat REDIRECT.

The device reaches addresses that are not ours because the host points its
default route at us; REDIRECT/TPROXY turn those packets into local ones, so
nothing is ever forwarded and ``ip_forward`` stays 0.  The fakenet itself
never opens a connection out of ``iface``.  The rule lists are built by pure
functions so unit tests can check them without root.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

TPROXY_MARK = "0x1/0x1"
TPROXY_TABLE = "100"


@dataclass(frozen=True)
class Ports:
    dns: int
    catchall: int
    udp_sink: int


def nat_rules(iface: str, ports: Ports, udp_redirect: bool) -> list[list[str]]:
    """``iptables -t nat`` argument lists, in order."""
    rules = [
        ["-A", "PREROUTING", "-i", iface, "-p", "udp", "--dport", "53", "-j", "REDIRECT", "--to-ports", str(ports.dns)],
        ["-A", "PREROUTING", "-i", iface, "-p", "tcp", "--dport", "53", "-j", "REDIRECT", "--to-ports", str(ports.dns)],
        ["-A", "PREROUTING", "-i", iface, "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(ports.catchall)],
    ]
    if udp_redirect:
        rules.append(["-A", "PREROUTING", "-i", iface, "-p", "udp", "-j", "REDIRECT", "--to-ports", str(ports.udp_sink)])
    return rules


def tproxy_rules(iface: str, ports: Ports) -> list[list[str]]:
    """``iptables -t mangle`` argument lists sending non-DNS UDP to the sink."""
    return [[
        "-A", "PREROUTING", "-i", iface, "-p", "udp", "!", "--dport", "53",
        "-j", "TPROXY", "--on-ip", "0.0.0.0", "--on-port", str(ports.udp_sink), "--tproxy-mark", TPROXY_MARK,
    ]]


def tproxy_routing() -> list[list[str]]:
    """``ip`` argument lists delivering TPROXY-marked packets locally."""
    return [
        ["rule", "add", "fwmark", TPROXY_MARK, "lookup", TPROXY_TABLE],
        ["route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", TPROXY_TABLE],
    ]


def filter_rules(iface: str) -> list[list[str]]:
    """``iptables -t filter``: the fakenet answers, it never initiates."""
    return [["-A", "OUTPUT", "-o", iface, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]]


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def install(iface: str, ports: Ports, allow_tproxy: bool) -> str:
    """Install everything; returns the UDP mode used, ``tproxy`` or ``redirect``."""
    udp_mode = "tproxy" if allow_tproxy else "redirect"
    if allow_tproxy:
        try:
            for args in tproxy_routing():
                _run(["ip", *args])
            for args in tproxy_rules(iface, ports):
                _run(["iptables", "-w", "-t", "mangle", *args])
        except RuntimeError:
            udp_mode = "redirect"
    for args in nat_rules(iface, ports, udp_redirect=udp_mode == "redirect"):
        _run(["iptables", "-w", "-t", "nat", *args])
    for args in filter_rules(iface):
        _run(["iptables", "-w", "-t", "filter", *args])
    return udp_mode


def drop_default_route() -> None:
    """Docker gives even internal networks a default route via the host; we never need it."""
    subprocess.run(["ip", "route", "del", "default"], capture_output=True, timeout=30, check=False)


def ip_forward_enabled() -> bool:
    with open("/proc/sys/net/ipv4/ip_forward", encoding="ascii") as f:
        return f.read().strip() != "0"


def iface_address(iface: str) -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", iface], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    raise RuntimeError(f"no IPv4 address on {iface}")
