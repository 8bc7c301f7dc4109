"""Build and run the orchestrator's gRPC server: Sandbox + Fleet + health + reflection.

Loopback is the default and needs nothing.  Any other address must be
protected: TLS (certificate and key) plus either a bearer token or client
certificates (mTLS); otherwise the server refuses to start and says why.
Every method runs behind ``guard.RequestGuardInterceptor``: undecodable
requests are INVALID_ARGUMENT, request streams have an idle timeout and a cap.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sandbox.errors import EnvironmentProblem
from sandbox.orchestrator.runtime import Orchestrator
from sandbox.settings import FleetSettings

from . import fleet_servicer, sandbox_servicer
from .auth import BearerTokenInterceptor
from .guard import RequestGuardInterceptor
from .gen.honeyphone.v1 import fleet_pb2, sandbox_pb2

SERVICES = (
    sandbox_pb2.DESCRIPTOR.services_by_name["Sandbox"].full_name,
    fleet_pb2.DESCRIPTOR.services_by_name["Fleet"].full_name,
)


@dataclass(frozen=True)
class Security:
    """Secrets and certificates, as bytes already read from their files."""

    token: str | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    client_ca: bytes | None = None  # set: require client certificates (mTLS)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @classmethod
    def from_files(
        cls, token_file: Path | None, cert: Path | None, key: Path | None, client_ca: Path | None
    ) -> Security:
        def read(p: Path | None) -> bytes | None:
            if p is None:
                return None
            try:
                return p.read_bytes()
            except OSError as exc:
                raise EnvironmentProblem(f"cannot read {p}: {exc.strerror}") from None

        if (cert is None) != (key is None):
            raise EnvironmentProblem("--tls-cert and --tls-key go together", fix="pass both or neither")
        raw = read(token_file)
        token = raw.decode().strip() if raw is not None else None
        if token_file is not None and not token:
            raise EnvironmentProblem(f"token file {token_file} is empty")
        return cls(token, read(cert), read(key), read(client_ca))


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise EnvironmentProblem(f"bad address {address!r}", fix="use HOST:PORT, e.g. 127.0.0.1:50551 or [::1]:50551")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen_security(address: str, security: Security) -> None:
    host, _ = split_address(address)
    if is_loopback(host):
        return
    if not security.tls:
        raise EnvironmentProblem(
            f"refusing to listen on non-loopback address {address} without TLS",
            fix="pass --tls-cert and --tls-key plus --token-file (or --tls-client-ca for mTLS), or listen on 127.0.0.1",
        )
    if not security.token and security.client_ca is None:
        raise EnvironmentProblem(
            f"refusing to listen on non-loopback address {address} without authentication",
            fix="pass --token-file (bearer token) or --tls-client-ca (client certificates)",
        )


@dataclass
class RunningServer:
    server: Any
    port: int
    health: health.HealthServicer

    def stop(self, grace: float | None = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def start_server(orch: Orchestrator, settings: FleetSettings, address: str, security: Security) -> RunningServer:
    """Start serving (the orchestrator must already be started); ``address`` may use port 0."""
    check_listen_security(address, security)
    max_msg = settings.max_report_bytes + 1024 * 1024
    options = [
        ("grpc.max_receive_message_length", max_msg),
        ("grpc.max_send_message_length", max_msg),
        ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]
    guard = RequestGuardInterceptor(
        settings.upload_idle_timeout_s, min(settings.max_concurrent_uploads, max(1, settings.server_threads // 2))
    )
    # The token check runs first: without the token, nothing else is looked at.
    interceptors: list[Any] = [BearerTokenInterceptor(security.token)] if security.token else []
    interceptors.append(guard)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=settings.server_threads, thread_name_prefix="rpc"),
        interceptors=interceptors, options=options, maximum_concurrent_rpcs=settings.server_threads,
    )
    sandbox_servicer.add_to_server(orch.service, server)
    fleet_servicer.add_to_server(orch.scheduler, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    def store_health(available: bool) -> None:
        """NOT_SERVING while the (shared) store is unreachable: readiness, not liveness."""
        status = health_pb2.HealthCheckResponse.SERVING if available else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *SERVICES):
            health_servicer.set(name, status)

    orch.on_store_availability(store_health)
    reflection.enable_server_reflection((*SERVICES, reflection.SERVICE_NAME, health.SERVICE_NAME), server)
    try:
        if security.tls:
            assert security.tls_cert is not None and security.tls_key is not None
            creds = grpc.ssl_server_credentials(
                [(security.tls_key, security.tls_cert)], root_certificates=security.client_ca,
                require_client_auth=security.client_ca is not None,
            )
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if not port:
        raise EnvironmentProblem(f"cannot listen on {address}", fix="is another server using that port?")
    server.start()
    return RunningServer(server, port, health_servicer)
