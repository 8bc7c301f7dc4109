"""Builders for synthetic detector inputs: Ethernet pcaps (with dpkt, in
memory) and fakenet JSON-lines logs, shaped like the real artifacts."""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dpkt

DEVICE = "10.88.0.3"
FAKENET = "10.88.0.2"
DEV_MAC = b"\x02\x00\x00\x00\x00\x03"
NET_MAC = b"\x02\x00\x00\x00\x00\x02"
SYN, FIN, ACK, PSH, RST = dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_PUSH, dpkt.tcp.TH_RST


def _eth(src: str, dst: str, ip: dpkt.ip.IP) -> bytes:
    s, d = (DEV_MAC, NET_MAC) if src == DEVICE else (NET_MAC, DEV_MAC)
    return bytes(dpkt.ethernet.Ethernet(src=s, dst=d, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def tcp_frame(src: str, sport: int, dst: str, dport: int, seq: int, flags: int, data: bytes = b"") -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq % (1 << 32), ack=1, flags=flags, win=65535, data=data)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=tcp)
    ip.len = 20 + len(bytes(tcp))
    return _eth(src, dst, ip)


def udp_frame(src: str, sport: int, dst: str, dport: int, data: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=data)
    udp.ulen = 8 + len(data)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=dpkt.ip.IP_PROTO_UDP, ttl=64, data=udp)
    ip.len = 20 + udp.ulen
    return _eth(src, dst, ip)


def udp_fragments(src: str, sport: int, dst: str, dport: int, data: bytes, size: int, ident: int = 7) -> list[bytes]:
    """An IPv4 datagram cut into fragments of ``size`` bytes (a multiple of 8)."""
    udp = bytes(dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(data), data=data))
    frames = []
    for off in range(0, len(udp), size):
        piece = udp[off:off + size]
        more = off + size < len(udp)
        ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=dpkt.ip.IP_PROTO_UDP, ttl=64,
                        id=ident, data=piece)
        ip._flags_offset = (dpkt.ip.IP_MF if more else 0) | (off // 8)
        ip.len = 20 + len(piece)
        frames.append(_eth(src, dst, ip))
    return frames


def dns_query(name: str, qtype: str = "A") -> bytes:
    from dnslib import DNSRecord

    return bytes(DNSRecord.question(name, qtype).pack())


def dns_answer(name: str, address: str) -> bytes:
    from dnslib import QTYPE, RR, A, DNSRecord

    q = DNSRecord.question(name, "A")
    reply = q.reply()
    reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(address), ttl=60))
    return bytes(reply.pack())


def pcap_bytes(frames: Iterable[tuple[float, bytes]]) -> io.BytesIO:
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB)
    for ts, frame in frames:
        writer.writepkt(frame, ts=ts)
    out.seek(0)
    return out


@dataclass
class Conversation:
    """A device TCP connection to script segment by segment."""

    sport: int
    dst: str
    dport: int
    isn: int = 1000
    frames: list[bytes] = field(default_factory=list)

    def syn(self) -> Conversation:
        self.frames.append(tcp_frame(DEVICE, self.sport, self.dst, self.dport, self.isn, SYN))
        self.frames.append(tcp_frame(self.dst, self.dport, DEVICE, self.sport, 5000, SYN | ACK))
        return self

    def send(self, offset: int, data: bytes, flags: int = ACK | PSH) -> Conversation:
        self.frames.append(tcp_frame(DEVICE, self.sport, self.dst, self.dport, self.isn + 1 + offset, flags, data))
        return self

    def answer(self, data: bytes) -> Conversation:
        self.frames.append(tcp_frame(self.dst, self.dport, DEVICE, self.sport, 5001, ACK | PSH, data))
        return self

    def fin(self, offset: int) -> Conversation:
        self.frames.append(tcp_frame(DEVICE, self.sport, self.dst, self.dport, self.isn + 1 + offset, FIN | ACK))
        return self

    def stream(self, data: bytes, *, segment: int = 1460) -> Conversation:
        """SYN, ``data`` in order in segments, FIN."""
        self.syn()
        for off in range(0, len(data), segment):
            self.send(off, data[off:off + segment])
        return self.fin(len(data))


def timed(frames: Iterable[bytes], start: float = 1_700_000_000.0, step: float = 0.01) -> list[tuple[float, bytes]]:
    return [(start + i * step, f) for i, f in enumerate(frames)]


# ---------------------------------------------------------------------------
# fakenet logs


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def flow_record(
    flow_id: str,
    ts: float,
    *,
    host: str,
    path: str,
    method: str = "POST",
    body: bytes = b"",
    headers: list[list[str]] | None = None,
    tls: bool = False,
    client: str = f"{DEVICE}:40000",
    orig_dst: str | None = None,
    conn: str | None = None,
    response_body: bytes = b"{}",
) -> dict[str, Any]:
    port = 443 if tls else 80
    return {
        "id": flow_id, "ts_request": ts, "client": client, "conn": conn,
        "orig_dst": orig_dst or f"{FAKENET}:{port}", "sni": host if tls else None, "tls": tls,
        "tls_version": "TLSv1.3" if tls else None, "alpn": None, "scheme": "https" if tls else "http",
        "host": host, "port": port, "method": method, "path": path, "http_version": "HTTP/1.1",
        "request_headers": [["Host", host], *(headers or [])], "request_body_b64": b64(body),
        "request_body_decoded_b64": None, "response_status": 200,
        "response_headers": [["Content-Type", "application/json"]], "response_body_b64": b64(response_body),
    }


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path
