"""Everything the device sent, as :class:`Payload` units ready for the scanner.

Sources, in the order :func:`iter_payloads` yields them:

1. Decrypted HTTP(S) from the fakenet (``flows.jsonl``, and ``mitm_errors.jsonl``
   for exchanges that broke off): request line + headers + raw body.  The
   fakenet's answers are never included: only what the device *sent* can be
   a leak.  When the fakenet undid a Content-Encoding the scanner cannot
   (zstd ...), the decoded body is a second payload whose ``pre_chain`` names
   that encoding.
2. The bridge pcap, device-sent packets only (source IP == the device):
   TCP streams reassembled by sequence number (``reassembly.py``: out of
   order, retransmitted, overlapping and split segments), UDP datagrams
   (IPv4 fragments reassembled), and DNS queries (UDP or TCP to port 53) as
   their query names, dotted *and* with the labels joined, so a value split
   across labels is whole in one of them.  TLS streams are ciphertext; they
   are still scanned (cheap, and a ClientHello is clear text).
3. The fakenet's raw records (``tcp.jsonl`` / ``udp.jsonl`` heads, ``dns.jsonl``
   names): redundant with the pcap when it is complete, kept so a capture
   that lost packets or failed still leaves evidence.  The detector merges
   the same leak seen twice.

Channels: ``dns`` for DNS queries; ``udp`` for other datagrams; for TCP,
``https`` when the stream starts with a TLS record, ``http`` when it starts
with an HTTP method, else by port (80 -> http, 443 -> https; a stream whose
start was not captured), else ``tcp``.  Decrypted flows are ``https`` when
TLS was intercepted, else ``http``.

Destination names (``host`` / ``host_source``), best first:
``http-host`` (the request's Host header) or ``sni`` (the ClientHello's server
name) from the bytes themselves; ``flow`` (the decrypted flow for the same
client socket and destination); ``query`` for a DNS payload (the queried
name itself); else ``dns``, a *guess*: every name resolves to the fakenet,
so the address alone cannot tell which name a connection was for.  We take
the most recent A/ANY query by the same device IP, at most
``dns_max_age_s`` before the connection (plus a 0.5 s clock slack), whose
answer was the destination address (answers from the pcap's DNS responses;
for names known only from ``dns.jsonl``, the fakenet's ``answer_ip`` from its
``ready`` file, or any address when that is unknown).  It is right for the
usual resolve-then-connect pattern and wrong when an app reuses a cached
address after resolving another name; reports label it ``dns`` so readers
know it is inferred.

Every buffer is bounded (see :class:`SourceLimits`); parsing never raises on
hostile input: malformed packets and records are counted in
:class:`SourceStats` and skipped.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import logging
import re
import socket
import struct
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeAlias

from sandbox.detect.reassembly import (
    FIN,
    RST,
    SYN,
    Defragmenter,
    StreamChunk,
    TcpLimits,
    TcpReassembler,
    TcpStats,
)
from sandbox.network.logs import HttpFlow, b64_field, split_hostport

__all__ = [
    "Channel",
    "HostIndex",
    "Payload",
    "SourceLimits",
    "SourceStats",
    "UdpIndex",
    "dns_log_payloads",
    "flow_payloads",
    "iter_payloads",
    "pcap_payloads",
    "tcp_log_payloads",
    "udp_log_payloads",
]

Channel: TypeAlias = Literal["http", "https", "dns", "tcp", "udp"]
HostSource: TypeAlias = Literal["http-host", "sni", "flow", "query", "dns"]

_HTTP_METHODS = (
    b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"TRACE ", b"CONNECT ",
    b"PROPFIND ", b"PROPPATCH ", b"MKCOL ", b"COPY ", b"MOVE ", b"LOCK ", b"UNLOCK ", b"PRI ",
)
_HOST_HEADER = re.compile(rb"\r\nhost:[ \t]*([^\r\n]{1,255})", re.IGNORECASE)
_SCANNER_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate", "br", "identity", ""})
_DNS_PORT = 53
_SLACK_S = 0.5
_MAX_LOOKBACK = 256
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Payload:
    """One unit of device-sent bytes with where and when it went.

    ``base_offset`` is the offset of ``data[0]`` in what ``locator`` names (a
    TCP stream, a request), so ``base_offset + hit offset`` points into the
    artifact.  ``times`` maps offsets in ``data`` to capture times (see
    :meth:`ts_at`); ``connect_ts`` is when the connection was opened (SYN,
    catch-all accept), the best time to ask the syscall summary who opened
    it.  ``pre_chain`` names decodings already undone before scanning.
    """

    channel: Channel
    data: bytes = field(repr=False)
    host: str | None
    ip: str
    port: int
    ts: float
    artifact: str
    locator: str
    base_offset: int = 0
    client: str | None = None
    host_source: HostSource | None = None
    connect_ts: float | None = None
    times: tuple[tuple[int, float], ...] = field(default=(), repr=False)
    pre_chain: tuple[str, ...] = ()

    def ts_at(self, offset: int) -> float:
        """Capture time of ``data[offset]`` (``ts`` when unknown)."""
        if not self.times:
            return self.ts
        i = bisect.bisect_right(self.times, (offset, float("inf"))) - 1
        return self.times[max(i, 0)][1]


@dataclass(frozen=True)
class SourceLimits:
    """Bounds on memory and on how far the DNS name heuristic looks back."""

    tcp: TcpLimits = field(default_factory=TcpLimits)
    max_dns_records: int = 200_000
    dns_max_age_s: float = 3600.0
    max_udp_index: int = 200_000
    max_fragment_datagrams: int = 1024
    max_fragment_bytes: int = 16 << 20


@dataclass
class SourceStats:
    """What was read and what was skipped (a mutable accumulator for reports)."""

    frames: int = 0
    device_frames: int = 0
    unsupported_frames: int = 0
    malformed_frames: int = 0
    capture_error: str | None = None
    udp_datagrams: int = 0
    dns_queries: int = 0
    fragments_dropped: int = 0
    flows: int = 0
    malformed_records: int = 0
    internal_errors: int = 0
    tcp: TcpStats = field(default_factory=TcpStats)


# ---------------------------------------------------------------------------
# Destination names


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


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


# ---------------------------------------------------------------------------
# Protocol sniffing


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


def _stream_channel(head: bytes, port: int, start_known: bool = True) -> Channel:
    """By the stream's first bytes; by port only when its start was not captured."""
    if head[:1] == b"\x16" and head[1:2] == b"\x03":
        return "https"
    if head.startswith(_HTTP_METHODS):
        return "http"
    if not start_known or not head:
        return "http" if port == 80 else "https" if port == 443 else "tcp"
    return "tcp"


def _head_host(head: bytes) -> tuple[str | None, HostSource | None]:
    sni = client_hello_sni(head)
    if sni:
        return sni, "sni"
    if head.startswith(_HTTP_METHODS):
        end = head.find(b"\r\n\r\n")
        m = _HOST_HEADER.search(head, 0, end if end >= 0 else len(head))
        if m is not None:
            host = _strip_port(m.group(1).decode("latin-1").strip())
            if host and not _is_ip(host):
                return host, "http-host"
    return None, None


# ---------------------------------------------------------------------------
# DNS messages


def _dns_query(msg: bytes) -> tuple[list[tuple[bytes, ...]], bool] | None:
    """``(question label tuples, is_query)`` of a DNS message, None if it is not one."""
    from dnslib import DNSRecord

    try:
        record = DNSRecord.parse(msg)
    except Exception:  # dnslib raises assorted errors on garbage
        return None
    return [tuple(q.qname.label) for q in record.questions], record.header.qr == 0


def _dns_answers(msg: bytes) -> list[tuple[str, str]]:
    """``(question name, A address)`` pairs of a DNS response."""
    from dnslib import QTYPE, DNSRecord

    try:
        record = DNSRecord.parse(msg)
        if record.header.qr != 1 or not record.questions:
            return []
        name = _name(tuple(record.questions[0].qname.label))
        return [(name, str(rr.rdata)) for rr in record.rr if rr.rtype == QTYPE.A]
    except Exception:
        return []


def _name(labels: tuple[bytes, ...]) -> str:
    return b".".join(labels).decode("utf-8", "replace")


def _dns_data(names: list[tuple[bytes, ...]], raw: bytes = b"") -> bytes:
    """Names dotted, then with labels joined, then the raw message (EDNS and
    extra records can carry data too); newline-separated."""
    parts = [b".".join(n) for n in names] + [b"".join(n) for n in names]
    if raw:
        parts.append(raw)
    return b"\n".join(parts)


# ---------------------------------------------------------------------------
# pcap


_ETHER_IP = {0x0800: 4, 0x86DD: 6}
_VLAN = (0x8100, 0x88A8, 0x9100)
_V6_EXT = {0, 43, 60}


def _link_ip(linktype: int, buf: bytes) -> bytes | None:
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
class _Ip:
    src: str
    dst: str
    proto: int
    payload: bytes
    frag: tuple[int, int, bool] | None  # (ident, byte offset, more fragments) for IPv4 fragments


def _ip(raw: bytes) -> _Ip | None:
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
        return _Ip(socket.inet_ntoa(raw[12:16]), socket.inet_ntoa(raw[16:20]), raw[9], raw[hl:total], frag)
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
        return _Ip(src, dst, nxt, raw[pos:end], None)
    return None


def _frames(f: BinaryIO, stats: SourceStats) -> Iterator[tuple[int, float, int, bytes]]:
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


def pcap_payloads(
    source: Path | BinaryIO,
    device_ip: str,
    *,
    hosts: HostIndex | None = None,
    flow_hosts: Mapping[tuple[str, str], str] | None = None,
    limits: SourceLimits | None = None,
    stats: SourceStats | None = None,
    udp_index: UdpIndex | None = None,
) -> Iterator[Payload]:
    """Device-sent TCP streams, UDP datagrams and DNS queries of a capture.

    ``hosts`` learns from the capture's DNS answers as it goes; ``flow_hosts``
    maps ``(client "ip:port", destination "ip:port")`` to a decrypted flow's host.
    """
    limits = limits or SourceLimits()
    stats = stats if stats is not None else SourceStats()
    hosts = hosts if hosts is not None else HostIndex(max_records=limits.max_dns_records,
                                                      max_age_s=limits.dns_max_age_s)
    reader = _PcapReader(device_ip, hosts, flow_hosts or {}, limits, stats, udp_index)
    if isinstance(source, Path):
        try:
            f = open(source, "rb")
        except OSError as exc:
            stats.capture_error = f"cannot open {source}: {exc}"
            return
        with f:
            yield from reader.run(f)
    else:
        yield from reader.run(source)


class _PcapReader:
    def __init__(self, device_ip: str, hosts: HostIndex, flow_hosts: Mapping[tuple[str, str], str],
                 limits: SourceLimits, stats: SourceStats, udp_index: UdpIndex | None) -> None:
        try:
            self.device_ip = str(ipaddress.ip_address(device_ip))  # the form inet_ntop prints
        except ValueError:
            self.device_ip = device_ip
        self.hosts = hosts
        self.flow_hosts = flow_hosts
        self.stats = stats
        self.udp_index = udp_index
        self.tcp = TcpReassembler(limits.tcp)
        stats.tcp = self.tcp.stats
        self.defrag = Defragmenter(limits.max_fragment_datagrams, limits.max_fragment_bytes)

    def run(self, f: BinaryIO) -> Iterator[Payload]:
        for frame, ts, linktype, buf in _frames(f, self.stats):
            self.stats.frames += 1
            try:
                yield from self._frame(frame, ts, linktype, buf)
            except (ValueError, IndexError, struct.error, OSError):
                self.stats.malformed_frames += 1
            except Exception:  # a bug must cost one frame, not the whole analysis
                self.stats.internal_errors += 1
                if self.stats.internal_errors == 1:
                    _log.exception("detect: frame %d could not be processed", frame)
        for chunk in self.tcp.flush():
            yield from self._chunk(chunk)
        self.stats.fragments_dropped = self.defrag.dropped

    def _frame(self, frame: int, ts: float, linktype: int, buf: bytes) -> Iterator[Payload]:
        raw = _link_ip(linktype, buf)
        ip = _ip(raw) if raw is not None else None
        if ip is None:
            self.stats.unsupported_frames += 1
            return
        if ip.src != self.device_ip:
            if ip.dst == self.device_ip and ip.proto == 17 and ip.frag is None:
                self._learn_answers(ts, ip.payload)
            return
        self.stats.device_frames += 1
        payload, first_frame = ip.payload, frame
        if ip.frag is not None:
            ident, offset, more = ip.frag
            done = self.defrag.add((ip.src, ip.dst, ip.proto, ident), offset, more, payload, ts, frame)
            if done is None:
                return
            payload, ts, first_frame = done
        if ip.proto == 6:
            yield from self._tcp(ip, payload, ts, first_frame)
        elif ip.proto == 17:
            yield from self._udp(ip, payload, ts, first_frame)

    def _learn_answers(self, ts: float, udp: bytes) -> None:
        if len(udp) < 8 or int.from_bytes(udp[0:2], "big") != _DNS_PORT:
            return
        for name, address in _dns_answers(udp[8:]):
            self.hosts.add(ts, self.device_ip, name, address)

    def _tcp(self, ip: _Ip, seg: bytes, ts: float, frame: int) -> Iterator[Payload]:
        import dpkt

        try:
            tcp = dpkt.tcp.TCP(seg)
        except (dpkt.UnpackError, struct.error):
            self.stats.malformed_frames += 1
            return
        key = (ip.src, int(tcp.sport), ip.dst, int(tcp.dport))
        flags = int(tcp.flags) & (FIN | SYN | RST)
        for chunk in self.tcp.add(key, int(tcp.seq), flags, bytes(tcp.data), ts, frame):
            yield from self._chunk(chunk)

    def _udp(self, ip: _Ip, dgram: bytes, ts: float, frame: int) -> Iterator[Payload]:
        if len(dgram) < 8:
            self.stats.malformed_frames += 1
            return
        sport, dport, ulen = struct.unpack_from("!HHH", dgram, 0)
        data = dgram[8:ulen] if 8 <= ulen <= len(dgram) else dgram[8:]
        client = f"{ip.src}:{sport}"
        if self.udp_index is not None:
            self.udp_index.add(client, ts, ip.dst, dport)
        if not data:
            return
        self.stats.udp_datagrams += 1
        where = f"{ip.src}:{sport}->{ip.dst}:{dport}"
        if dport == _DNS_PORT:
            parsed = _dns_query(data)
            if parsed is not None and parsed[1] and parsed[0]:
                yield self._dns_payload(parsed[0], data, ip.dst, ts, f"frame {frame} dns {where}", client)
                return
        host = self.hosts.lookup(ip.src, ip.dst, ts)
        yield Payload("udp", data, host, ip.dst, dport, ts, "pcap", f"frame {frame} udp {where}",
                      client=client, host_source="dns" if host else None, connect_ts=ts)

    def _dns_payload(self, names: list[tuple[bytes, ...]], raw: bytes, server: str, ts: float,
                     locator: str, client: str) -> Payload:
        self.stats.dns_queries += 1
        return Payload("dns", _dns_data(names, raw), _name(names[0]), server, _DNS_PORT, ts, "pcap", locator,
                       client=client, host_source="query", connect_ts=ts)

    def _chunk(self, chunk: StreamChunk) -> Iterator[Payload]:
        src, sport, dst, dport = chunk.key
        client, dest = f"{src}:{sport}", f"{dst}:{dport}"
        locator = f"tcp {client}->{dest} from frame {chunk.first_frame}"
        if chunk.generation > 1:
            locator += f" (connection #{chunk.generation} on this port pair)"
        if chunk.variant:
            locator += " [alternate bytes: last copy of conflicting retransmissions]"
        ts = chunk.times[0][1] if chunk.times else chunk.first_ts
        connect_ts = chunk.syn_ts if chunk.syn_ts is not None else chunk.first_ts
        if dport == _DNS_PORT and chunk.offset == 0:
            msgs = _tcp_dns_messages(chunk.data)
            if msgs:
                for names, raw in msgs:
                    yield self._dns_payload(names, raw, dst, ts, locator, client)
                return
        host, source = _head_host(chunk.head)
        if host is None and (client, dest) in self.flow_hosts:
            host, source = self.flow_hosts[(client, dest)], "flow"
        if host is None:
            host = self.hosts.lookup(src, dst, connect_ts)
            source = "dns" if host else None
        channel = _stream_channel(chunk.head, dport, start_known=chunk.syn_ts is not None)
        yield Payload(channel, chunk.data, host, dst, dport, ts, "pcap", locator,
                      base_offset=chunk.offset, client=client, host_source=source, connect_ts=connect_ts,
                      times=chunk.times)


def _tcp_dns_messages(data: bytes) -> list[tuple[list[tuple[bytes, ...]], bytes]]:
    """Length-prefixed DNS queries of a DNS-over-TCP stream; [] if it is not one."""
    out = []
    pos = 0
    while pos + 2 <= len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        msg = data[pos + 2:pos + 2 + n]
        parsed = _dns_query(msg) if len(msg) == n else None
        if parsed is None or not parsed[1] or not parsed[0]:
            return []
        out.append((parsed[0], msg))
        pos += 2 + n
    return out if pos == len(data) else []


# ---------------------------------------------------------------------------
# fakenet logs


def _jsonl(path: Path, stats: SourceStats) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of a JSON-lines file; torn lines are counted."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                stats.malformed_records += 1
                continue
            if isinstance(obj, dict):
                yield n, obj


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _request_bytes(flow: HttpFlow) -> bytes:
    """The request as the device sent it (HTTP/2 rendered in HTTP/1 syntax)."""
    lines = [f"{flow.method} {flow.path} {flow.http_version}"]
    lines += [f"{k}: {v}" for k, v in flow.request_headers]
    return b"\r\n".join(_safe(line) for line in lines) + b"\r\n\r\n" + flow.request_body


def _safe(text: str) -> bytes:
    try:
        return _enc(text)
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def flow_hosts(path: Path, stats: SourceStats | None = None) -> dict[tuple[str, str], str]:
    """``(client, orig_dst) -> host`` of the decrypted flows, for naming pcap streams."""
    out: dict[tuple[str, str], str] = {}
    for _, obj in _jsonl(path, stats or SourceStats()):
        client, dst, host = obj.get("client"), obj.get("orig_dst"), obj.get("host")
        name = host if isinstance(host, str) and host and not _is_ip(host) else obj.get("sni")
        if isinstance(client, str) and isinstance(dst, str) and isinstance(name, str) and name:
            out[(client, dst)] = name
    return out


def flow_payloads(
    path: Path,
    *,
    artifact: str = "flows",
    hosts: HostIndex | None = None,
    connect_times: Mapping[str, float] | None = None,
    stats: SourceStats | None = None,
) -> Iterator[Payload]:
    """Requests of the fakenet's decrypted flows; responses never."""
    stats = stats if stats is not None else SourceStats()
    for _, obj in _jsonl(path, stats):
        try:
            flow = HttpFlow.parse(obj)
        except (KeyError, TypeError, ValueError):
            stats.malformed_records += 1
            continue
        stats.flows += 1
        yield from _flow(flow, artifact, hosts, connect_times or {})


def _flow(flow: HttpFlow, artifact: str, hosts: HostIndex | None,
          connect_times: Mapping[str, float]) -> Iterator[Payload]:
    dst = split_hostport(flow.orig_dst)
    bare = _strip_port(flow.host)
    ip, port = dst if dst else (bare if _is_ip(bare) else "", flow.port)
    client_ip = (split_hostport(flow.client) or ("", 0))[0]
    host: str | None
    source: HostSource | None
    if flow.host and not _is_ip(flow.host):
        host, source = flow.host, "http-host"
    elif flow.sni:
        host, source = flow.sni, "sni"
    else:
        host = hosts.lookup(client_ip, ip, flow.ts_request) if hosts is not None else None
        source = "dns" if host else None
    channel: Channel = "https" if flow.tls or flow.scheme == "https" else "http"
    connect_ts = connect_times.get(flow.conn) if flow.conn else None
    common: dict[str, Any] = dict(host=host, ip=ip, port=port, ts=flow.ts_request, artifact=artifact,
                                  client=flow.client, host_source=source, connect_ts=connect_ts)
    yield Payload(channel, _request_bytes(flow), locator=flow.id, **common)
    encoding = (flow.header("content-encoding") or "").lower()
    tokens = tuple(t.strip() for t in encoding.split(",") if t.strip())
    if flow.request_body_decoded is not None and not set(tokens) <= _SCANNER_ENCODINGS:
        yield Payload(channel, flow.request_body_decoded, locator=f"{flow.id} (body, {encoding} undone)",
                      pre_chain=tuple(reversed(tokens)), **common)


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def tcp_log_payloads(path: Path, *, hosts: HostIndex | None = None,
                     stats: SourceStats | None = None) -> Iterator[Payload]:
    """Heads of the raw (non-HTTP, non-TLS) TCP connections the catch-all recorded."""
    stats = stats if stats is not None else SourceStats()
    for _, obj in _jsonl(path, stats):
        ts, dst, data = _float(obj.get("ts")), split_hostport(obj.get("orig_dst")), b64_field(obj.get("head_b64"))
        client = obj.get("client") if isinstance(obj.get("client"), str) else None
        if ts is None or dst is None:
            stats.malformed_records += 1
            continue
        if not data:
            continue
        client_ip = (split_hostport(client) or ("", 0))[0]
        host, source = _head_host(data)
        if host is None and hosts is not None:
            host = hosts.lookup(client_ip, dst[0], ts)
            source = "dns" if host else None
        yield Payload(_stream_channel(data, dst[1]), data, host, dst[0], dst[1], ts, "tcp",
                      f"connection {obj.get('id')}", client=client, host_source=source, connect_ts=ts)


def udp_log_payloads(path: Path, *, hosts: HostIndex | None = None, udp_index: UdpIndex | None = None,
                     stats: SourceStats | None = None) -> Iterator[Payload]:
    """Heads of the datagrams the UDP sink swallowed."""
    stats = stats if stats is not None else SourceStats()
    for n, obj in _jsonl(path, stats):
        ts, data = _float(obj.get("ts")), b64_field(obj.get("head_b64"))
        client = obj.get("client") if isinstance(obj.get("client"), str) else None
        if ts is None:
            stats.malformed_records += 1
            continue
        if not data:
            continue
        dst = split_hostport(obj.get("orig_dst"))
        if dst is None and udp_index is not None and client:
            dst = udp_index.find(client, ts)
        ip, port = dst or ("", 0)
        client_ip = (split_hostport(client) or ("", 0))[0]
        host = hosts.lookup(client_ip, ip, ts) if hosts is not None and ip else None
        yield Payload("udp", data, host, ip, port, ts, "udp", f"line {n}", client=client,
                      host_source="dns" if host else None, connect_ts=ts)


def _dns_log_rows(path: Path, stats: SourceStats) -> Iterator[tuple[int, float, str, str, str | None]]:
    for n, obj in _jsonl(path, stats):
        ts, name, kind = _float(obj.get("ts")), obj.get("name"), obj.get("type")
        if ts is None or not isinstance(name, str):
            stats.malformed_records += 1
            continue
        client = obj.get("client") if isinstance(obj.get("client"), str) else None
        yield n, ts, name, str(kind), client


def load_dns_log(path: Path, hosts: HostIndex, stats: SourceStats | None = None) -> None:
    """Teach ``hosts`` the A/ANY queries of ``dns.jsonl`` (answers are not logged)."""
    for _, ts, name, kind, client in _dns_log_rows(path, stats or SourceStats()):
        if kind in ("A", "ANY") and client:
            hosts.add(ts, (split_hostport(client) or (client, 0))[0], name, None)


def dns_log_payloads(path: Path, *, resolver_ip: str = "", udp_index: UdpIndex | None = None,
                     stats: SourceStats | None = None) -> Iterator[Payload]:
    """Every name the fakenet's DNS server was asked, as a DNS payload."""
    stats = stats if stats is not None else SourceStats()
    for n, ts, name, kind, client in _dns_log_rows(path, stats):
        labels = tuple(_enc(label) for label in name.split(".")) if name != "." else ()
        if not labels:
            continue
        found = udp_index.find(client, ts) if udp_index is not None and client else None
        server = found[0] if found else resolver_ip
        yield Payload("dns", _dns_data([labels]), name, server, _DNS_PORT, ts, "dns",
                      f"line {n} ({kind} query)", client=client, host_source="query", connect_ts=ts)


# ---------------------------------------------------------------------------
# Everything


def _ready(fakenet_dir: Path) -> dict[str, Any]:
    try:
        obj = json.loads((fakenet_dir / "ready").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _connect_times(path: Path, stats: SourceStats) -> dict[str, float]:
    out: dict[str, float] = {}
    for _, obj in _jsonl(path, stats):
        ts, conn = _float(obj.get("ts")), obj.get("id")
        if ts is not None and isinstance(conn, str):
            out[conn] = ts
    return out


def iter_payloads(
    device_ip: str,
    *,
    pcap: Path | None = None,
    fakenet_dir: Path | None = None,
    limits: SourceLimits | None = None,
    stats: SourceStats | None = None,
) -> Iterator[Payload]:
    """Every device-sent payload of one analysis' artifacts (see the module
    docstring for the sources, channels and naming heuristic).  Missing
    artifacts are simply absent sources."""
    limits = limits or SourceLimits()
    stats = stats if stats is not None else SourceStats()
    hosts = HostIndex(max_records=limits.max_dns_records, max_age_s=limits.dns_max_age_s)
    udp_index = UdpIndex(limits.max_udp_index)
    ready: dict[str, Any] = {}
    names: dict[tuple[str, str], str] = {}
    if fakenet_dir is not None:
        ready = _ready(fakenet_dir)
        if isinstance(ready.get("answer_ip"), str):
            hosts.answer_ips.add(ready["answer_ip"])
        load_dns_log(fakenet_dir / "dns.jsonl", hosts, stats)
        names = flow_hosts(fakenet_dir / "flows.jsonl")  # its torn lines are counted by flow_payloads
        conns = _connect_times(fakenet_dir / "connections.jsonl", stats)
        for name in ("flows", "mitm_errors"):
            yield from flow_payloads(fakenet_dir / f"{name}.jsonl", artifact=name, hosts=hosts,
                                     connect_times=conns, stats=stats)
    if pcap is not None:
        yield from pcap_payloads(pcap, device_ip, hosts=hosts, flow_hosts=names, limits=limits, stats=stats,
                                 udp_index=udp_index)
    if fakenet_dir is not None:
        resolver = ready.get("ip") if isinstance(ready.get("ip"), str) else ""
        yield from dns_log_payloads(fakenet_dir / "dns.jsonl", resolver_ip=str(resolver), udp_index=udp_index,
                                    stats=stats)
        yield from tcp_log_payloads(fakenet_dir / "tcp.jsonl", hosts=hosts, stats=stats)
        yield from udp_log_payloads(fakenet_dir / "udp.jsonl", hosts=hosts, udp_index=udp_index, stats=stats)
