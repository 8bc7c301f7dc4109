"""The UDP sink: swallows every datagram the device sends (DNS excepted).

With TPROXY the socket is transparent and asks for ``IP_ORIGDSTADDR``, so
each record carries the datagram's original destination.  With the REDIRECT
fallback that is lost in userspace; the host's pcap of the analysis bridge
still has it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import time
from collections.abc import Callable
from typing import Any

from .origdst import parse_sockaddr_in

Record = Callable[[dict[str, Any]], None]
IP_TRANSPARENT = 19
IP_RECVORIGDSTADDR = 20
IP_ORIGDSTADDR = 20
MAX_DATAGRAM = 65535


def datagram_record(data: bytes, addr: tuple[str, int], keep: int, orig_dst: tuple[str, int] | None) -> dict[str, Any]:
    return {
        "ts": time.time(),
        "client": f"{addr[0]}:{addr[1]}",
        "orig_dst": f"{orig_dst[0]}:{orig_dst[1]}" if orig_dst else None,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "head_b64": base64.b64encode(data[:keep]).decode("ascii"),
    }


def orig_dst_from_ancillary(ancdata: list[tuple[int, int, bytes]]) -> tuple[str, int] | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_IP and kind == IP_ORIGDSTADDR:
            try:
                return parse_sockaddr_in(data)
            except ValueError:
                return None
    return None


class UdpSink:
    def __init__(self, record: Record, port: int, keep: int, transparent: bool):
        self._record = record
        self._keep = keep
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.transparent = transparent
        self.report_orig_dst = transparent  # only TPROXY keeps the original destination
        if transparent:
            self.sock.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            self.sock.setsockopt(socket.SOL_IP, IP_RECVORIGDSTADDR, 1)
        self.sock.bind(("0.0.0.0", port))
        self.sock.setblocking(False)

    def _readable(self) -> None:
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(16))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            orig = orig_dst_from_ancillary(anc) if self.report_orig_dst else None
            self._record(datagram_record(data, addr, self._keep, orig))

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        except RuntimeError:
            pass
        self.sock.close()
