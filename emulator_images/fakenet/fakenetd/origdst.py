"""The destination a redirected TCP connection was really sent to.

iptables REDIRECT rewrites the destination to us; conntrack remembers the
original, which Linux hands back through ``getsockopt(SOL_IP,
SO_ORIGINAL_DST)`` as a ``struct sockaddr_in``.
"""

from __future__ import annotations

import socket
import struct

SO_ORIGINAL_DST = 80
SOCKADDR_IN_LEN = 16


def parse_sockaddr_in(raw: bytes) -> tuple[str, int]:
    """``struct sockaddr_in`` (family in host order, port and address in network order)."""
    if len(raw) < 8:
        raise ValueError(f"sockaddr_in too short: {len(raw)} bytes")
    (family,) = struct.unpack_from("=H", raw, 0)
    if family != socket.AF_INET:
        raise ValueError(f"not an AF_INET sockaddr (family {family})")
    port, addr = struct.unpack_from("!H4s", raw, 2)
    return socket.inet_ntoa(addr), port


def original_dst(sock: socket.socket) -> tuple[str, int]:
    return parse_sockaddr_in(sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, SOCKADDR_IN_LEN))
