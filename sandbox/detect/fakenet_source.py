"""Payloads out of the fakenet's records: decrypted HTTP(S) flows and the raw
TCP/UDP/DNS logs (see ``sources.py`` for their role and order).

Why a module: these are JSON-lines records, read tolerantly (torn lines
are counted, not fatal), with their own notion of time (connect times,
request times) and naming (the flow's Host).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sandbox.detect.destinations import HostIndex, UdpIndex, head_host, is_ip, stream_channel, strip_port
from sandbox.detect.packets import DNS_PORT, dns_data
from sandbox.detect.payloads import Channel, HostSource, Payload, SourceStats
from sandbox.network.logs import HttpFlow, b64_field, split_hostport

__all__ = ["flow_hosts", "flow_payloads", "tcp_log_payloads", "udp_log_payloads", "load_dns_log", "dns_log_payloads"]

_SCANNER_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate", "br", "identity", ""})


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
        name = host if isinstance(host, str) and host and not is_ip(host) else obj.get("sni")
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
    bare = strip_port(flow.host)
    ip, port = dst if dst else (bare if is_ip(bare) else "", flow.port)
    client_ip = (split_hostport(flow.client) or ("", 0))[0]
    host: str | None
    source: HostSource | None
    if flow.host and not is_ip(flow.host):
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
        host, source = head_host(data)
        if host is None and hosts is not None:
            host = hosts.lookup(client_ip, dst[0], ts)
            source = "dns" if host else None
        yield Payload(stream_channel(data, dst[1]), data, host, dst[0], dst[1], ts, "tcp",
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
        yield Payload("dns", dns_data([labels]), name, server, DNS_PORT, ts, "dns",
                      f"line {n} ({kind} query)", client=client, host_source="query", connect_ts=ts)


def read_ready(fakenet_dir: Path) -> dict[str, Any]:
    try:
        obj = json.loads((fakenet_dir / "ready").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def read_connect_times(path: Path, stats: SourceStats) -> dict[str, float]:
    out: dict[str, float] = {}
    for _, obj in _jsonl(path, stats):
        ts, conn = _float(obj.get("ts")), obj.get("id")
        if ts is not None and isinstance(conn, str):
            out[conn] = ts
    return out
