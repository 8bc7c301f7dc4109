"""Payloads out of the bridge pcap: device-sent TCP streams (reassembled),
UDP datagrams and DNS queries (see ``sources.py`` for how they are named).

Why a module: the capture is the complete, lowest-level view; it has its
own reader state (TCP reassembly, IPv4 defragmentation, DNS answers learnt
on the way) that no other source shares.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from sandbox.detect.destinations import HostIndex, UdpIndex, head_host, stream_channel
from sandbox.detect.packets import (
    DNS_PORT,
    parse_dns_answers,
    dns_data,
    parse_dns_query,
    pcap_frames,
    IpPacket,
    parse_ip,
    link_ip,
    dns_name,
    tcp_dns_messages,
)
from sandbox.detect.payloads import Payload, SourceLimits, SourceStats
from sandbox.detect.reassembly import FIN, RST, SYN, Defragmenter, StreamChunk, TcpReassembler

__all__ = ["pcap_payloads"]

_log = logging.getLogger(__name__)


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
        for frame, ts, linktype, buf in pcap_frames(f, self.stats):
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
        raw = link_ip(linktype, buf)
        ip = parse_ip(raw) if raw is not None else None
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
        if len(udp) < 8 or int.from_bytes(udp[0:2], "big") != DNS_PORT:
            return
        for name, address in parse_dns_answers(udp[8:]):
            self.hosts.add(ts, self.device_ip, name, address)

    def _tcp(self, ip: IpPacket, seg: bytes, ts: float, frame: int) -> Iterator[Payload]:
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

    def _udp(self, ip: IpPacket, dgram: bytes, ts: float, frame: int) -> Iterator[Payload]:
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
        if dport == DNS_PORT:
            parsed = parse_dns_query(data)
            if parsed is not None and parsed[1] and parsed[0]:
                yield self._dns_payload(parsed[0], data, ip.dst, ts, f"frame {frame} dns {where}", client)
                return
        host = self.hosts.lookup(ip.src, ip.dst, ts)
        yield Payload("udp", data, host, ip.dst, dport, ts, "pcap", f"frame {frame} udp {where}",
                      client=client, host_source="dns" if host else None, connect_ts=ts)

    def _dns_payload(self, names: list[tuple[bytes, ...]], raw: bytes, server: str, ts: float,
                     locator: str, client: str) -> Payload:
        self.stats.dns_queries += 1
        return Payload("dns", dns_data(names, raw), dns_name(names[0]), server, DNS_PORT, ts, "pcap", locator,
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
        if dport == DNS_PORT and chunk.offset == 0:
            msgs = tcp_dns_messages(chunk.data)
            if msgs:
                for names, raw in msgs:
                    yield self._dns_payload(names, raw, dst, ts, locator, client)
                return
        host, source = head_host(chunk.head)
        if host is None and (client, dest) in self.flow_hosts:
            host, source = self.flow_hosts[(client, dest)], "flow"
        if host is None:
            host = self.hosts.lookup(src, dst, connect_ts)
            source = "dns" if host else None
        channel = stream_channel(chunk.head, dport, start_known=chunk.syn_ts is not None)
        yield Payload(channel, chunk.data, host, dst, dport, ts, "pcap", locator,
                      base_offset=chunk.offset, client=client, host_source=source, connect_ts=connect_ts,
                      times=chunk.times)
