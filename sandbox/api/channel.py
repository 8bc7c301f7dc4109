"""Open a client channel to the orchestrator, with the token and TLS the server needs.

Shared by the CLI and the worker agent so that both speak to a protected
server the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from sandbox.errors import EnvironmentProblem

from .auth import TokenClientInterceptor

MAX_MESSAGE = 64 * 1024 * 1024


@dataclass(frozen=True)
class ClientSecurity:
    token: str | None = None
    tls_ca: bytes | None = None  # set: connect with TLS, trusting this CA
    tls: bool = False  # TLS with the system's trust store
    client_cert: bytes | None = None
    client_key: bytes | None = None

    @classmethod
    def from_files(
        cls, token_file: Path | None, tls_ca: Path | None, tls: bool = False,
        client_cert: Path | None = None, client_key: Path | None = None,
    ) -> ClientSecurity:
        def read(p: Path | None) -> bytes | None:
            if p is None:
                return None
            try:
                return p.read_bytes()
            except OSError as exc:
                raise EnvironmentProblem(f"cannot read {p}: {exc.strerror}") from None

        raw = read(token_file)
        return cls(
            raw.decode().strip() if raw is not None else None, read(tls_ca), tls, read(client_cert), read(client_key)
        )


def tls_name(address: str) -> str | None:
    """The host a server certificate is checked against for a multi-address target, else None.

    ``ipv4:10.0.0.1:50551,10.0.0.2:50551`` (or ``ipv6:[::1]:1,[::2]:1``) lets a
    client or worker fail over between orchestrators that share one store:
    gRPC connects to the first that answers and moves on when it goes away.
    gRPC would check TLS certificates against the whole address list as a host
    name, which no certificate holds, so the first address' host is used; the
    orchestrators of one farm share a certificate naming all their addresses.
    """
    scheme, sep, rest = address.partition(":")
    if not sep or scheme not in ("ipv4", "ipv6") or "," not in rest:
        return None
    first = rest.split(",", 1)[0]
    host = first.rsplit(":", 1)[0] if first.count(":") == 1 or first.startswith("[") else first
    return host.strip("[]") or None


def open_channel(address: str, security: ClientSecurity = ClientSecurity()) -> Any:
    """A channel to ``address``: ``HOST:PORT``, or any gRPC target such as a list of orchestrators."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.enable_retries", 1),
    ]
    if security.tls or security.tls_ca is not None:
        if (name := tls_name(address)) is not None:
            options.append(("grpc.ssl_target_name_override", name))
        creds = grpc.ssl_channel_credentials(security.tls_ca, security.client_key, security.client_cert)
        channel = grpc.secure_channel(address, creds, options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    if security.token:
        channel = grpc.intercept_channel(channel, TokenClientInterceptor(security.token))
    return channel
