"""Socket addresses as strace prints them, in the one form summaries use.

Why a module of its own: the syscall decoders read addresses out of sockaddr
structs and ``-yy`` socket decorations, and the summary looks flows up by
address; both must write an address the same way a packet capture does
(IPv4-mapped IPv6 as dotted IPv4, no zone), or a flow would not find the
process that opened it.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import TypeAlias

from .syntax import STR, unescape

__all__ = [
    "INET_FAMILIES",
    "Endpoint",
    "SockInfo",
    "is_loopback",
    "normalize_ip",
    "parse_sockaddr",
    "socket_from_deco",
    "split_hostport",
]

INET_FAMILIES = frozenset({"AF_INET", "AF_INET6"})
_PROTO_FAMILY = {"TCP": "AF_INET", "UDP": "AF_INET", "TCPv6": "AF_INET6", "UDPv6": "AF_INET6"}

_FAMILY_RE = re.compile(r"sa_family=(\w+)")
_PORT_RE = re.compile(r"sin6?_port=htons\((\d+)\)")
_INET_ADDR_RE = re.compile(r'inet_addr\("([^"]*)"\)')
_INET6_ADDR_RE = re.compile(r'inet_pton\(AF_INET6, "([^"]*)"')
_UNIX_PATH_RE = re.compile(r"sun_path=(@?)(" + STR + r")")
_SOCKDECO_RE = re.compile(r"<(TCP|UDP|TCPv6|UDPv6):\[(.*)\]>", re.S)

Endpoint: TypeAlias = tuple[str, int]
"""(address, port)."""

SockInfo: TypeAlias = tuple[str, str, Endpoint | None, Endpoint | None]
"""(protocol, family, peer, local) of an IP socket's decoration."""


@lru_cache(maxsize=4096)
def normalize_ip(address: str) -> str:
    """Canonical text for an IP: IPv4-mapped IPv6 becomes dotted IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def is_loopback(address: str | None) -> bool:
    """127/8 or ``::1`` (as :func:`normalize_ip` writes them)."""
    if not address:
        return False
    return address.startswith("127.") or address == "::1"


def parse_sockaddr(text: str) -> tuple[str, str | None, int | None]:
    """(family, address, port) from a strace sockaddr ``{sa_family=...}``."""
    fm = _FAMILY_RE.search(text)
    family = fm.group(1) if fm else "AF_UNKNOWN"
    if family in INET_FAMILIES:
        pm = _PORT_RE.search(text)
        am = (_INET_ADDR_RE if family == "AF_INET" else _INET6_ADDR_RE).search(text)
        port = int(pm.group(1)) if pm else None
        return family, (normalize_ip(am.group(1)) if am else None), port
    if family == "AF_UNIX":
        um = _UNIX_PATH_RE.search(text)
        if um is None:
            return family, None, None
        return family, um.group(1) + unescape(um.group(2)[1:-1]), None
    return family, None, None


def split_hostport(text: str) -> Endpoint | None:
    """``1.2.3.4:443`` or ``[::1]:443`` to (address, port)."""
    if text.startswith("["):
        host, sep, port = text[1:].rpartition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return normalize_ip(host), int(port)


def socket_from_deco(deco: str) -> SockInfo | None:
    """(protocol, family, peer, local) from ``<TCP:[a:p->b:q]>`` (local
    ``a:p``, peer ``b:q``) or ``<UDP:[a:p]>`` (local only); None if not IP.
    An endpoint is None when the decoration lacks it (``<TCP:[14400]>``, the
    inode of a socket not yet connected) or its port is 0 (not bound)."""
    m = _SOCKDECO_RE.fullmatch(deco)
    if m is None:
        return None
    proto, inner = m.group(1), m.group(2)
    here, arrow, there = inner.partition("->")
    peer = split_hostport(there) if arrow else None
    local = split_hostport(here)
    if local is not None and local[1] == 0:
        local = None
    return proto, _PROTO_FAMILY[proto], peer, local
