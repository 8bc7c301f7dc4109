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

Modules: ``payloads.py`` (the :class:`Payload` unit, limits, counters),
``fakenet_source.py`` (1 and 3), ``pcap_source.py`` (2) with
``packets.py`` (frame, IP and DNS parsing) and ``reassembly.py`` (TCP,
IPv4 fragments), ``destinations.py`` (channels and destination names).
This module puts them together in :func:`iter_payloads`.
"""


from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandbox.detect.destinations import HostIndex, UdpIndex
from sandbox.detect.fakenet_source import (
    read_connect_times,
    read_ready,
    dns_log_payloads,
    flow_hosts,
    flow_payloads,
    load_dns_log,
    tcp_log_payloads,
    udp_log_payloads,
)
from sandbox.detect.payloads import Payload, SourceLimits, SourceStats
from sandbox.detect.pcap_source import pcap_payloads

__all__ = ["iter_payloads"]


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
        ready = read_ready(fakenet_dir)
        if isinstance(ready.get("answer_ip"), str):
            hosts.answer_ips.add(ready["answer_ip"])
        load_dns_log(fakenet_dir / "dns.jsonl", hosts, stats)
        names = flow_hosts(fakenet_dir / "flows.jsonl")  # its torn lines are counted by flow_payloads
        conns = read_connect_times(fakenet_dir / "connections.jsonl", stats)
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
