"""The daemon's configuration, read once from the environment.

The host passes everything as ``HONEYPHONE_FAKENET_*`` variables when it
creates the container, so one image serves every analysis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path("/data/fakenet")
RUN_DIR = Path("/run/fakenet")  # mitmproxy's confdir (the CA key) lives here, never in DATA_DIR


@dataclass(frozen=True)
class Config:
    iface: str = "eth0"
    answer_ip: str | None = None  # None: this container's address on ``iface``
    data_dir: Path = DATA_DIR
    run_dir: Path = RUN_DIR
    dns_port: int = 5353
    catchall_port: int = 15000
    udp_sink_port: int = 15001
    mitm_port: int = 15080
    txt_answer: str = "honeyphone-fakenet"
    dns_ttl: int = 60
    http_status: int = 200
    http_body: str = "{}"
    http_content_type: str = "application/json"
    peek_timeout_s: float = 1.0
    tcp_idle_timeout_s: float = 600.0
    tcp_keep_bytes: int = 4096
    udp_keep_bytes: int = 1024
    mitm_start_timeout_s: float = 90.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Config":
        e = dict(os.environ if env is None else env)
        p = "HONEYPHONE_FAKENET_"
        base = cls()

        def get(name: str, default: str) -> str:
            return e.get(p + name) or default

        return cls(
            iface=get("IFACE", base.iface),
            answer_ip=e.get(p + "ANSWER_IP") or None,
            data_dir=Path(get("DATA_DIR", str(base.data_dir))),
            run_dir=Path(get("RUN_DIR", str(base.run_dir))),
            txt_answer=get("TXT", base.txt_answer),
            dns_ttl=int(get("DNS_TTL", str(base.dns_ttl))),
            http_status=int(get("HTTP_STATUS", str(base.http_status))),
            http_body=e.get(p + "HTTP_BODY", base.http_body),
            http_content_type=get("HTTP_CONTENT_TYPE", base.http_content_type),
            peek_timeout_s=float(get("PEEK_TIMEOUT", str(base.peek_timeout_s))),
            tcp_idle_timeout_s=float(get("TCP_IDLE_TIMEOUT", str(base.tcp_idle_timeout_s))),
        )
