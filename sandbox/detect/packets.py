"""Parsing captured packets: link layer, IPv4/IPv6, pcap frames and DNS wire format.

Why a module: the byte-level parsers the pcap source needs, each bounded and
never raising on hostile input (malformed packets return None and are
counted by the caller).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from sandbox.detect.payloads import SourceStats


DNS_PORT = 53


def parse_dns_query(msg: bytes) -> tuple[list[tuple[bytes, ...]], bool] | None:
    """``(question label tuples, is_query)`` of a DNS message, None if it is not one."""
    from dnslib import DNSRecord

    try:
        record = DNSRecord.parse(msg)
    except Exception:  # dnslib raises assorted errors on garbage
        return None
    return [tuple(q.qname.label) for q in record.questions], record.header.qr == 0


def parse_dns_answers(msg: bytes) -> list[tuple[str, str]]:
    """``(question name, A address)`` pairs of a DNS response."""
    from dnslib import QTYPE, DNSRecord

    try:
        record = DNSRecord.parse(msg)
        if record.header.qr != 1 or not record.questions:
            return []
        name = dns_name(tuple(record.questions[0].qname.label))
        return [(name, str(rr.rdata)) for rr in record.rr if rr.rtype == QTYPE.A]
    except Exception:
        return []


def dns_name(labels: tuple[bytes, ...]) -> str:
    return b".".join(labels).decode("utf-8", "replace")


def dns_data(names: list[tuple[bytes, ...]], raw: bytes = b"") -> bytes:
    """Names dotted, then with labels joined, then the raw message (EDNS and
    extra records can carry data too); newline-separated."""
    parts = [b".".join(n) for n in names] + [b"".join(n) for n in names]
    if raw:
        parts.append(raw)
    return b"\n".join(parts)


_ETHER_IP = {0x0800: 4, 0x86DD: 6}

_VLAN = (0x8100, 0x88A8, 0x9100)

_V6_EXT = {0, 43, 60}


def link_ip(linktype: int, buf: bytes) -> bytes | None:
    """The IP datagram inside one captured frame, None for anything else."""
    if linktype == 1:  # Ethernet
        off = 12
        etype = int.from_bytes(buf[off:off + 2], "big")
        while etype in _VLAN:
            off += 4
            etype = int.from_bytes(buf[off:off + 2], "big")
        return buf[off + 2:] if etype in _ETHER_IP else None
    if linktype == 113:  # Linux cooked v1
        return buf[16:] if int.from_bytes(buf[14:16], "big") in _ETHER_IP else None
    if linktype == 276:  # Linux cooked v2
        return buf[20:] if int.from_bytes(buf[0:2], "big") in _ETHER_IP else None
    if linktype in (101, 12, 14, 228, 229):  # raw IP
        return buf
    if linktype in (0, 108):  # BSD loopback
        return buf[4:]
    return None


@dataclass(frozen=True)
class IpPacket:
    src: str
    dst: str
    proto: int
    payload: bytes
    frag: tuple[int, int, bool] | None  # (ident, byte offset, more fragments) for IPv4 fragments


def parse_ip(raw: bytes) -> IpPacket | None:
    """Addresses, protocol and payload of an IPv4/IPv6 datagram (hand-parsed:
    fragments need the raw payload, which dpkt would try to parse)."""
    if not raw:
        return None
    version = raw[0] >> 4
    if version == 4:
        hl = (raw[0] & 0x0F) * 4
        if hl < 20 or len(raw) < hl:
            return None
        total = int.from_bytes(raw[2:4], "big")
        if total < hl or total > len(raw):
            total = len(raw)  # 0 with segmentation offload; clamp truncated frames
        off = int.from_bytes(raw[6:8], "big")
        more, frag_off = bool(off & 0x2000), (off & 0x1FFF) * 8
        frag = (int.from_bytes(raw[4:6], "big"), frag_off, more) if more or frag_off else None
        return IpPacket(socket.inet_ntoa(raw[12:16]), socket.inet_ntoa(raw[16:20]), raw[9], raw[hl:total], frag)
    if version == 6 and len(raw) >= 40:
        nxt, pos = raw[6], 40
        end = min(len(raw), 40 + int.from_bytes(raw[4:6], "big")) if raw[4:6] != b"\0\0" else len(raw)
        while nxt in _V6_EXT or nxt == 51:
            if pos + 2 > end:
                return None
            size = (raw[pos + 1] + 2) * 4 if nxt == 51 else (raw[pos + 1] + 1) * 8
            nxt, pos = raw[pos], pos + size
        if nxt == 44:  # IPv6 fragments: not reassembled (the analysis network has no IPv6)
            return None
        src = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, raw[24:40])
        return IpPacket(src, dst, nxt, raw[pos:end], None)
    return None


def pcap_frames(f: BinaryIO, stats: SourceStats) -> Iterator[tuple[int, float, int, bytes]]:
    """``(frame number, ts, linktype, frame bytes)``; a torn or corrupt end stops
    the iteration and is noted in ``stats.capture_error``."""
    import dpkt

    magic = f.read(4)
    f.seek(-len(magic), 1)
    try:
        reader: Any = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        linktype = int(reader.datalink())
    except (ValueError, dpkt.UnpackError, struct.error) as exc:
        stats.capture_error = f"not a readable pcap: {exc}"
        return
    n = 0
    it = iter(reader)
    while True:
        try:
            ts, buf = next(it)
        except StopIteration:
            return
        except (ValueError, dpkt.UnpackError, struct.error) as exc:
            stats.capture_error = f"capture ends in a damaged record after frame {n}: {exc!r}"
            return
        n += 1
        yield n, float(ts), linktype, bytes(buf)


def tcp_dns_messages(data: bytes) -> list[tuple[list[tuple[bytes, ...]], bytes]]:
    """Length-prefixed DNS queries of a DNS-over-TCP stream; [] if it is not one."""
    out = []
    pos = 0
    while pos + 2 <= len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        msg = data[pos + 2:pos + 2 + n]
        parsed = parse_dns_query(msg) if len(msg) == n else None
        if parsed is None or not parsed[1] or not parsed[0]:
            return []
        out.append((parsed[0], msg))
        pos += 2 + n
    return out if pos == len(data) else []
