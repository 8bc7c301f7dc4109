"""Reading the fakenet's JSON-lines logs into typed, immutable records.

The fakenet writes one JSON object per line and flushes each; a fakenet
killed mid-write can leave a torn last line, which is skipped (and counted)
rather than failing the whole analysis.  Payload fields stay bytes here; the
detectors decide how to decode them.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Headers = tuple[tuple[str, str], ...]


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed JSON object in ``path``; a missing file is empty."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


def count_torn_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    json.loads(line)
                except ValueError:
                    bad += 1
    return bad


def b64_field(value: object) -> bytes:
    """A base64 field of a fakenet log record; anything malformed reads as no bytes."""
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value, validate=False)
    except ValueError:
        return b""


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _headers(value: object) -> Headers:
    if not isinstance(value, list):
        return ()
    return tuple((str(p[0]), str(p[1])) for p in value if isinstance(p, list) and len(p) == 2)


def split_hostport(value: str | None) -> tuple[str, int] | None:
    """``"10.0.0.3:4711"`` -> ``("10.0.0.3", 4711)``; None for anything else."""
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host, int(port)


@dataclass(frozen=True)
class DnsQuery:
    ts: float
    client: str
    name: str
    type: str
    proto: str

    @classmethod
    def parse(cls, d: dict[str, Any]) -> "DnsQuery":
        return cls(float(d["ts"]), str(d["client"]), str(d["name"]), str(d["type"]), str(d.get("proto", "udp")))


@dataclass(frozen=True)
class Connection:
    """One TCP connection the catch-all accepted (every kind)."""

    ts: float
    id: str
    client: str
    orig_dst: str
    kind: str  # tls | http | tcp
    local_port_to_mitm: int | None
    sni: str | None = None  # parsed by the catch-all from the ClientHello, when it was whole

    @classmethod
    def parse(cls, d: dict[str, Any]) -> "Connection":
        port = d.get("local_port_to_mitm")
        return cls(float(d["ts"]), str(d["id"]), str(d["client"]), str(d["orig_dst"]), str(d["kind"]),
                   int(port) if port is not None else None, _opt_str(d.get("sni")))


@dataclass(frozen=True)
class HttpFlow:
    """One decrypted HTTP(S) exchange, answered by the fakenet itself."""

    id: str
    ts_request: float
    client: str | None
    conn: str | None
    orig_dst: str | None
    sni: str | None
    tls: bool
    scheme: str
    host: str
    port: int
    method: str
    path: str
    http_version: str
    request_headers: Headers
    request_body: bytes
    request_body_decoded: bytes | None
    response_status: int | None
    response_headers: Headers
    response_body: bytes

    @property
    def body(self) -> bytes:
        """The request body with any Content-Encoding undone."""
        return self.request_body_decoded if self.request_body_decoded is not None else self.request_body

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.request_headers if k.lower() == low), None)

    @classmethod
    def parse(cls, d: dict[str, Any]) -> "HttpFlow":
        decoded = d.get("request_body_decoded_b64")
        status = d.get("response_status")
        return cls(
            id=str(d["id"]),
            ts_request=float(d.get("ts_request") or 0.0),
            client=_opt_str(d.get("client")),
            conn=_opt_str(d.get("conn")),
            orig_dst=_opt_str(d.get("orig_dst")),
            sni=_opt_str(d.get("sni")),
            tls=bool(d.get("tls")),
            scheme=str(d.get("scheme", "")),
            host=str(d.get("host", "")),
            port=int(d.get("port") or 0),
            method=str(d.get("method", "")),
            path=str(d.get("path", "")),
            http_version=str(d.get("http_version", "")),
            request_headers=_headers(d.get("request_headers")),
            request_body=b64_field(d.get("request_body_b64")),
            request_body_decoded=b64_field(decoded) if isinstance(decoded, str) else None,
            response_status=int(status) if status is not None else None,
            response_headers=_headers(d.get("response_headers")),
            response_body=b64_field(d.get("response_body_b64")),
        )


@dataclass(frozen=True)
class TcpStream:
    """A non-HTTP, non-TLS TCP connection, recorded raw."""

    ts: float
    ts_end: float
    id: str
    client: str
    orig_dst: str
    size: int  # "bytes" in the log
    sha256: str
    head: bytes
    head_truncated: bool
    closed_by: str

    @classmethod
    def parse(cls, d: dict[str, Any]) -> "TcpStream":
        return cls(float(d["ts"]), float(d.get("ts_end", d["ts"])), str(d["id"]), str(d["client"]),
                   str(d["orig_dst"]), int(d["bytes"]), str(d["sha256"]), b64_field(d.get("head_b64")),
                   bool(d.get("head_truncated")), str(d.get("closed_by", "")))


@dataclass(frozen=True)
class UdpDatagram:
    ts: float
    client: str
    orig_dst: str | None  # None when the fakenet fell back from TPROXY to REDIRECT
    size: int  # "bytes" in the log
    sha256: str
    head: bytes

    @classmethod
    def parse(cls, d: dict[str, Any]) -> "UdpDatagram":
        return cls(float(d["ts"]), str(d["client"]), _opt_str(d.get("orig_dst")), int(d["bytes"]),
                   str(d["sha256"]), b64_field(d.get("head_b64")))


# TLS alerts (RFC 8446 6.2) by which a client says it does not accept the
# server's certificate: a pinned client, or one that does not trust the CA.
CERTIFICATE_ALERTS = frozenset({"bad_certificate", "unsupported_certificate", "certificate_revoked",
                                "certificate_expired", "certificate_unknown", "unknown_ca"})
# OpenSSL names a received alert "sslv3 alert bad certificate", "tlsv1 alert unknown ca", ...
_ALERT_RE = re.compile(r"\b(?:sslv3|tlsv1(?:\.[0-3])?|tls13?) alert ([a-z][a-z ]*[a-z])")


def tls_alert(error: str) -> str | None:
    """The TLS alert the client sent, from mitmproxy's error text (``unknown_ca``), or None."""
    m = _ALERT_RE.search(error.lower())
    return m.group(1).replace(" ", "_") if m else None


@dataclass(frozen=True)
class TlsFailure:
    """A TLS handshake with the fakenet that failed.  Only an alert from the
    client says why (``rejected_certificate``); a client that just closed may
    have timed out, crashed or been pinned, and is reported as what it did."""

    ts: float
    client: str | None
    orig_dst: str | None
    sni: str | None
    error: str
    handshake_ms: float | None = None

    @classmethod
    def parse(cls, d: dict[str, Any]) -> "TlsFailure":
        ms = d.get("handshake_ms")
        return cls(float(d["ts"]), _opt_str(d.get("client")), _opt_str(d.get("orig_dst")),
                   _opt_str(d.get("sni")), str(d.get("error", "")), None if ms is None else float(ms))

    @property
    def alert(self) -> str | None:
        return tls_alert(self.error)

    @property
    def rejected_certificate(self) -> bool:
        """The client said it rejects the certificate (a TLS alert), not merely closed."""
        return self.alert in CERTIFICATE_ALERTS

    def what_happened(self) -> str:
        """One phrase for reports: what the client did, never more than the evidence says."""
        after = f" after {self.handshake_ms:.0f} ms" if self.handshake_ms is not None else ""
        alert = self.alert
        if alert in CERTIFICATE_ALERTS:
            return f"rejected the fakenet's certificate with TLS alert {alert} (pinned, or not trusting the CA)"
        if alert is not None:
            return f"ended the handshake with TLS alert {alert}{after}"
        return f"closed during the handshake{after}, no alert"


def parse_all(path: Path, parse: Callable[[dict[str, Any]], T]) -> list[T]:
    """Parse every record of ``path``; records missing required fields are skipped."""
    out: list[T] = []
    for obj in read_jsonl(path):
        try:
            out.append(parse(obj))
        except (KeyError, TypeError, ValueError):
            continue
    return out


@dataclass(frozen=True)
class FakenetLogs:
    """Where one analysis' fakenet logs were copied to on the host."""

    dir: Path

    @property
    def dns(self) -> Path:
        return self.dir / "dns.jsonl"

    @property
    def flows(self) -> Path:
        return self.dir / "flows.jsonl"

    @property
    def tcp(self) -> Path:
        return self.dir / "tcp.jsonl"

    @property
    def udp(self) -> Path:
        return self.dir / "udp.jsonl"

    @property
    def connections(self) -> Path:
        return self.dir / "connections.jsonl"

    @property
    def tls_failures(self) -> Path:
        return self.dir / "tls_failures.jsonl"

    @property
    def flows_mitm(self) -> Path:
        """mitmproxy's own flow file, for analysts (``mitmproxy -r``)."""
        return self.dir / "flows.mitm"

    @property
    def ca_pem(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def mitm_errors(self) -> Path:
        """HTTP exchanges mitmproxy could not complete (client vanished, protocol errors)."""
        return self.dir / "mitm_errors.jsonl"

    @property
    def daemon_events(self) -> Path:
        return self.dir / "fakenetd.jsonl"

    def dns_queries(self) -> list[DnsQuery]:
        return parse_all(self.dns, DnsQuery.parse)

    def http_flows(self) -> list[HttpFlow]:
        return parse_all(self.flows, HttpFlow.parse)

    def tcp_streams(self) -> list[TcpStream]:
        return parse_all(self.tcp, TcpStream.parse)

    def udp_datagrams(self) -> list[UdpDatagram]:
        return parse_all(self.udp, UdpDatagram.parse)

    def tcp_connections(self) -> list[Connection]:
        return parse_all(self.connections, Connection.parse)

    def tls_failure_records(self) -> list[TlsFailure]:
        return parse_all(self.tls_failures, TlsFailure.parse)
