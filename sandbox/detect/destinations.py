"""Who a payload went to: channel and destination name heuristics.

Why a module: the pcap and the fakenet's logs name destinations the same
way -- the request's Host header or the ClientHello's SNI from the bytes,
the decrypted flow of the same socket, else the most recent DNS answer for
the address (:class:`HostIndex`, a *guess*; see ``sources.py``) -- and UDP
datagrams are paired with their capture by :class:`UdpIndex`.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import struct
from collections import OrderedDict
from collections.abc import Iterable

from sandbox.detect.payloads import Channel, HostSource

__all__ = ["HostIndex", "client_hello_sni", "UdpIndex"]

_HTTP_METHODS = (
    b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"TRACE ", b"CONNECT ",
    b"PROPFIND ", b"PROPPATCH ", b"MKCOL ", b"COPY ", b"MOVE ", b"LOCK ", b"UNLOCK ", b"PRI ",
)

_HOST_HEADER = re.compile(rb"\r\nhost:[ \t]*([^\r\n]{1,255})", re.IGNORECASE)

_SLACK_S = 0.5

_MAX_LOOKBACK = 256


class HostIndex:
    """DNS queries per device IP, to name destinations (see the module docstring)."""

    def __init__(self, answer_ips: Iterable[str] = (), *, max_records: int = 200_000,
                 max_age_s: float = 3600.0) -> None:
        self.answer_ips: set[str] = set(answer_ips)
        self.max_records = max_records
        self.max_age_s = max_age_s
        self._by_client: dict[str, list[tuple[float, int, str, str | None]]] = {}
        self._count = 0
        self._seq = 0

    def add(self, ts: float, client_ip: str, name: str, answer_ip: str | None) -> None:
        """A query by ``client_ip`` for ``name`` (answered with ``answer_ip`` if known)."""
        if answer_ip is not None:
            self.answer_ips.add(answer_ip)
        rows = self._by_client.setdefault(client_ip, [])
        self._seq += 1
        bisect.insort(rows, (ts, self._seq, name, answer_ip))
        self._count += 1
        if self._count > self.max_records * 5 // 4:
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest records across clients down to ``max_records``."""
        every = sorted(r[0] for rows in self._by_client.values() for r in rows)
        cutoff = every[len(every) - self.max_records]
        for client, rows in self._by_client.items():
            self._by_client[client] = [r for r in rows if r[0] >= cutoff]
        self._count = sum(len(rows) for rows in self._by_client.values())

    def lookup(self, client_ip: str, dst_ip: str, ts: float) -> str | None:
        """The name the device most plausibly resolved to reach ``dst_ip`` at ``ts``."""
        rows = self._by_client.get(client_ip)
        if not rows:
            return None
        i = bisect.bisect_right(rows, (ts + _SLACK_S, float("inf"), "", None))
        for j in range(i - 1, max(-1, i - 1 - _MAX_LOOKBACK), -1):
            q_ts, _, name, answer = rows[j]
            if ts - q_ts > self.max_age_s:
                break
            if answer == dst_ip or (answer is None and (not self.answer_ips or dst_ip in self.answer_ips)):
                return name
        return None


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


def client_hello_sni(data: bytes) -> str | None:
    """The server name of a TLS ClientHello at the start of ``data``, or None.
    Never raises: the bytes come from hostile firmware."""
    try:
        return _sni(data)
    except (IndexError, struct.error, UnicodeDecodeError):
        return None


def _sni(data: bytes) -> str | None:
    if len(data) < 9 or data[0] != 0x16 or data[5] != 0x01:
        return None
    hello = data[9:5 + struct.unpack_from("!H", data, 3)[0]]
    pos = 34
    pos += 1 + hello[pos]
    pos += 2 + struct.unpack_from("!H", hello, pos)[0]
    pos += 1 + hello[pos]
    end = min(len(hello), pos + 2 + struct.unpack_from("!H", hello, pos)[0])
    pos += 2
    while pos + 4 <= end:
        ext, size = struct.unpack_from("!HH", hello, pos)
        pos += 4
        if ext == 0:
            p = pos + 2
            while p + 3 <= pos + size:
                kind, n = hello[p], struct.unpack_from("!H", hello, p + 1)[0]
                if kind == 0:
                    return hello[p + 3:p + 3 + n].decode("ascii")
                p += 3 + n
            return None
        pos += size
    return None


def stream_channel(head: bytes, port: int, start_known: bool = True) -> Channel:
    """By the stream's first bytes; by port only when its start was not captured."""
    if head[:1] == b"\x16" and head[1:2] == b"\x03":
        return "https"
    if head.startswith(_HTTP_METHODS):
        return "http"
    if not start_known or not head:
        return "http" if port == 80 else "https" if port == 443 else "tcp"
    return "tcp"


def head_host(head: bytes) -> tuple[str | None, HostSource | None]:
    sni = client_hello_sni(head)
    if sni:
        return sni, "sni"
    if head.startswith(_HTTP_METHODS):
        end = head.find(b"\r\n\r\n")
        m = _HOST_HEADER.search(head, 0, end if end >= 0 else len(head))
        if m is not None:
            host = strip_port(m.group(1).decode("latin-1").strip())
            if host and not is_ip(host):
                return host, "http-host"
    return None, None


class UdpIndex:
    """Where device sockets sent datagrams, to fill in destinations the
    fakenet's UDP log lacks (its REDIRECT fallback loses them)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._rows: OrderedDict[str, list[tuple[float, str, int]]] = OrderedDict()
        self._count = 0

    def add(self, client: str, ts: float, ip: str, port: int) -> None:
        if self._count >= self.limit:
            return
        self._rows.setdefault(client, []).append((ts, ip, port))
        self._count += 1

    def find(self, client: str, ts: float, within: float = 2.0) -> tuple[str, int] | None:
        best: tuple[float, str, int] | None = None
        for row_ts, ip, port in self._rows.get(client, ()):
            if abs(row_ts - ts) <= within and (best is None or abs(row_ts - ts) < abs(best[0] - ts)):
                best = (row_ts, ip, port)
        return (best[1], best[2]) if best else None
