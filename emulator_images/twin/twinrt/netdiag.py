"""Which network exchanges of the device are in flight, from the kernel.

The clock controller must not jump device time while an answer is on its
way: the firmware's timeout would fire at once.  Rather than hook every
send and receive, this asks the kernel (sock_diag netlink, what ``ss -tin``
uses; no privilege needed) for every TCP and UDP socket of the twin's
network namespace with its ``tcp_info``:

* a TCP connect in progress (SYN_SENT / SYN_RECV);
* data not yet acknowledged, or received but not yet read;
* an established connection that sent data after it last received some,
  i.e. a request (or a TLS handshake step) awaiting its answer, or that
  moved data in the last second (a TLS 1.3 request whose answer so far is
  only the server's session tickets);
* a UDP socket connected to port 53: a name lookup (glibc's resolver runs
  its own real-time timeouts, out of the clock's reach).

Each socket counts for at most ``cap_s`` real seconds from when it was
first seen in flight, so a peer that never answers cannot hold the clock
forever; those are reported as stalled.
/proc/net/snmp's UDP counters add "a datagram moved in the last few ms".
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
INET_DIAG_INFO = 2
TCP_ESTABLISHED, TCP_SYN_SENT, TCP_SYN_RECV, TCP_LISTEN = 1, 2, 3, 10
RECENT_MS = 1000
_MSG = struct.Struct("=BBBB HH 16s16s I 8s IIIII")  # inet_diag_msg (ports big-endian, fixed below)
_TCPI_LAST = struct.Struct("=IIII")  # tcpi_last_data_sent, last_ack_sent, last_data_recv, last_ack_recv at 44


@dataclass(frozen=True)
class SockInfo:
    proto: str
    state: int
    sport: int
    dport: int
    rqueue: int
    wqueue: int
    cookie: bytes
    last_sent_ms: int | None = None
    last_recv_ms: int | None = None


@dataclass
class InFlight:
    reasons: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.reasons)


def _request(family: int, proto: int, ext: int, seq: int) -> bytes:
    req = struct.pack("=BBBBI", family, proto, ext, 0, 0xFFFFFFFF) + b"\0" * 48
    return struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + req


def _parse(buf: bytes, proto: str, out: list[SockInfo]) -> bool:
    """Parse one recv() of netlink messages; True when the dump is done."""
    off = 0
    while off + 16 <= len(buf):
        length, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", buf, off)
        if length < 16:
            return True
        if mtype == NLMSG_DONE:
            return True
        if mtype == NLMSG_ERROR:
            return True
        body = buf[off + 16: off + length]
        if len(body) >= _MSG.size:
            (_fam, state, _timer, _retrans, sport, dport, _src, _dst, _if, cookie,
             _expires, rqueue, wqueue, _uid, _inode) = _MSG.unpack_from(body, 0)
            sport, dport = socket.ntohs(sport), socket.ntohs(dport)
            sent = recv = None
            a = _MSG.size
            while a + 4 <= len(body):
                alen, atype = struct.unpack_from("=HH", body, a)
                if alen < 4:
                    break
                if atype == INET_DIAG_INFO and alen - 4 >= 60:
                    sent, _ack_sent, recv, _ack_recv = _TCPI_LAST.unpack_from(body, a + 4 + 44)
                a += (alen + 3) & ~3
            out.append(SockInfo(proto, state, sport, dport, rqueue, wqueue, cookie, sent, recv))
        off += (length + 3) & ~3
    return False


class NetDiag:
    """One netlink socket, queried at every idle decision."""

    def __init__(self, exclude_ports: frozenset[int], cap_s: float = 30.0, udp_window_s: float = 0.01) -> None:
        self._exclude = exclude_ports
        self._cap = cap_s
        self._udp_window = udp_window_s
        self._sock: socket.socket | None = None
        self._seq = 0
        self._first_seen: dict[bytes, float] = {}
        self._udp_counts: tuple[int, int] | None = None
        self._udp_changed = 0.0

    def _dump(self, family: int, proto: int, name: str, ext: int) -> list[SockInfo]:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self._seq += 1
        self._sock.send(_request(family, proto, ext, self._seq))
        out: list[SockInfo] = []
        while True:
            if _parse(self._sock.recv(65536), name, out):
                return out

    def sockets(self) -> list[SockInfo]:
        socks: list[SockInfo] = []
        for fam in (socket.AF_INET, socket.AF_INET6):
            socks += self._dump(fam, socket.IPPROTO_TCP, "tcp", 1 << (INET_DIAG_INFO - 1))
            socks += self._dump(fam, socket.IPPROTO_UDP, "udp", 0)
        return [s for s in socks if s.sport not in self._exclude and s.dport not in self._exclude]

    def _udp_moved(self, now: float) -> bool:
        try:
            with open("/proc/net/snmp", encoding="ascii") as f:
                lines = [ln.split() for ln in f if ln.startswith("Udp:")]
            head, vals = lines[0], lines[1]
            counts = (int(vals[head.index("InDatagrams")]), int(vals[head.index("OutDatagrams")]))
        except (OSError, IndexError, ValueError):
            return False
        if counts != self._udp_counts:
            self._udp_counts = counts
            self._udp_changed = now
        return now - self._udp_changed < self._udp_window

    def in_flight(self) -> InFlight:
        now = time.monotonic()
        res = InFlight()
        seen: set[bytes] = set()
        for s in self.sockets():
            why = classify(s)
            if why is None:
                continue
            seen.add(s.cookie)
            first = self._first_seen.setdefault(s.cookie, now)
            label = f"{s.proto} :{s.sport}->:{s.dport} {why}"
            if now - first > self._cap:
                res.stalled.append(label)
            else:
                res.reasons.append(label)
        for gone in set(self._first_seen) - seen:
            del self._first_seen[gone]
        if self._udp_moved(now):
            res.reasons.append("udp datagram just moved")
        return res


def classify(s: SockInfo) -> str | None:
    """Why this socket is an exchange in flight, or None."""
    if s.proto == "udp":
        if s.dport == 53:
            return "name lookup"
        return "unread datagram" if s.rqueue > 0 else None
    if s.state in (TCP_SYN_SENT, TCP_SYN_RECV):
        return "connecting"
    if s.state == TCP_LISTEN:
        return "connection waiting to be accepted" if s.rqueue > 0 else None
    if s.wqueue > 0:
        return "data not yet acknowledged"
    if s.rqueue > 0:
        return "data not yet read"
    # Data moved within the last RECENT_MS: an exchange is under way.  This
    # covers a TLS 1.3 client whose request is out and whose only data back
    # so far are the server's session tickets (they arrive after the
    # request, so "sent after the last receive" no longer holds).  An idle
    # keep-alive or push connection costs at most this much real time.
    if s.state == TCP_ESTABLISHED and any(v is not None and v < RECENT_MS for v in (s.last_sent_ms, s.last_recv_ms)):
        return "data moved just now"
    # "ms ago" counters: sent at or after the last receive.  A tie (both in
    # the same millisecond, as when a TLS client answers the server's flight
    # at once) counts as awaiting: taking it for idle would let the clock
    # jump straight to the client's timeout.
    if (s.state == TCP_ESTABLISHED and s.last_sent_ms is not None and s.last_recv_ms is not None
            and s.last_sent_ms <= s.last_recv_ms):
        return "awaiting an answer"
    return None


__all__ = ["NetDiag", "InFlight", "SockInfo", "classify"]
