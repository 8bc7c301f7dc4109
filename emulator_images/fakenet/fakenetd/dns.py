"""The fake DNS server: every name exists and points at the fakenet.

A records answer with the fakenet's address so the device's next connection
comes to us; AAAA is an empty NOERROR so clients fall back to IPv4 (the
analysis network has no IPv6); TXT answers a fixed text so TXT-based C2 and
exfiltration channels see a live resolver; everything else is an empty
NOERROR.  Every query is logged, because names alone often leak data
(``<imei>.evil.example``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dnslib import QTYPE, RR, A, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

Record = Callable[[dict[str, Any]], None]


def _txt_chunks(text: str) -> list[bytes]:
    raw = text.encode("utf-8")
    return [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]


class CatchAllResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, answer_ip: str, txt: str, ttl: int, record: Record):
        self.answer_ip = answer_ip
        self.txt = txt
        self.ttl = ttl
        self._record = record

    def answer(self, request: DNSRecord) -> DNSRecord:
        """The reply for one query; pure, so unit tests need no sockets."""
        reply = request.reply()
        if not request.questions:
            return reply
        q = request.q
        qtype = q.qtype
        if qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(self.answer_ip), ttl=self.ttl))
        elif qtype == QTYPE.TXT:
            reply.add_answer(RR(q.qname, QTYPE.TXT, rdata=TXT(_txt_chunks(self.txt)), ttl=self.ttl))
        return reply

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        client = "?"
        try:
            host, port = handler.client_address[:2]
            client = f"{host}:{port}"
        except (AttributeError, TypeError, ValueError):
            pass
        proto = "tcp" if getattr(handler, "protocol", "udp") == "tcp" else "udp"
        for q in request.questions:
            self._record({
                "ts": time.time(),
                "client": client,
                "proto": proto,
                "name": str(q.qname).rstrip(".") or ".",
                "type": QTYPE.get(q.qtype, str(q.qtype)),
                "id": request.header.id,
            })
        return self.answer(request)


def start_dns(resolver: CatchAllResolver, port: int, address: str = "0.0.0.0") -> list[DNSServer]:
    """UDP and TCP servers on ``port``, each in a daemon thread."""
    quiet = DNSLogger(logf=lambda _s: None)
    servers = [
        DNSServer(resolver, port=port, address=address, tcp=False, logger=quiet),
        DNSServer(resolver, port=port, address=address, tcp=True, logger=quiet),
    ]
    for s in servers:
        s.start_thread()
    return servers
