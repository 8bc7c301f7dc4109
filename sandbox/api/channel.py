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


def open_channel(address: str, security: ClientSecurity = ClientSecurity()) -> Any:
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.enable_retries", 1),
    ]
    if security.tls or security.tls_ca is not None:
        creds = grpc.ssl_channel_credentials(security.tls_ca, security.client_key, security.client_cert)
        channel = grpc.secure_channel(address, creds, options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    if security.token:
        channel = grpc.intercept_channel(channel, TokenClientInterceptor(security.token))
    return channel
