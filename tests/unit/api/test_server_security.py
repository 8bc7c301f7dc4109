"""Bearer tokens, TLS, and refusing to listen unprotected beyond loopback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from api_harness import close_api, open_api, rpc_error
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox.api.channel import ClientSecurity, open_channel
from sandbox.api.client import SandboxClient
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb
from sandbox.api.server import Security, check_listen_security
from sandbox.errors import EnvironmentProblem


@pytest.mark.parametrize("address", ["127.0.0.1:1", "localhost:1", "[::1]:1", "127.0.0.2:50551"])
def test_loopback_needs_nothing(address: str) -> None:
    check_listen_security(address, Security())


@pytest.mark.parametrize(
    ("security", "text"),
    [
        (Security(), "without TLS"),
        (Security(token="t"), "without TLS"),
        (Security(tls_cert=b"c", tls_key=b"k"), "without authentication"),
    ],
)
def test_non_loopback_refused_unprotected(security: Security, text: str) -> None:
    with pytest.raises(EnvironmentProblem, match=text):
        check_listen_security("0.0.0.0:50551", security)


def test_non_loopback_allowed_with_tls_and_token_or_mtls() -> None:
    check_listen_security("0.0.0.0:1", Security(token="t", tls_cert=b"c", tls_key=b"k"))
    check_listen_security("[::]:1", Security(tls_cert=b"c", tls_key=b"k", client_ca=b"ca"))


def test_bearer_token_required_except_health(tmp_path: Path) -> None:
    api = open_api(tmp_path, Security(token="s3cret"))
    try:
        err = rpc_error(api.sandbox.ListAnalyses, pb.ListAnalysesRequest())
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        err = rpc_error(api.sandbox.UploadFirmware, iter([pb.FirmwareChunk(data=b"x")]))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        err = rpc_error(api.sandbox.WatchAnalysis, pb.WatchAnalysisRequest(id="0" * 16))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(api.channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        wrong = SandboxClient(open_channel(api.address, ClientSecurity(token="nope")))
        with pytest.raises(grpc.RpcError) as info:
            wrong.list()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        right = SandboxClient(open_channel(api.address, ClientSecurity(token="s3cret")))
        assert right.list() == ([], "")
    finally:
        close_api(api)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls_with_token(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    api = open_api(tmp_path, Security(token="t0k", tls_cert=cert.read_bytes(), tls_key=key.read_bytes()))
    try:
        client = SandboxClient(open_channel(f"localhost:{api.server.port}", ClientSecurity(token="t0k", tls_ca=cert.read_bytes())))
        assert client.list() == ([], "")
        plain = SandboxClient(open_channel(f"localhost:{api.server.port}", ClientSecurity(token="t0k")), timeout=3)
        with pytest.raises(grpc.RpcError):
            plain.list()
    finally:
        close_api(api)


@pytest.mark.parametrize(("address", "name"), [
    ("localhost:50551", None), ("ipv4:10.0.0.1:50551", None), ("dns:///farm:50551", None),
    ("ipv4:10.0.0.1:50551,10.0.0.2:50551", "10.0.0.1"), ("ipv6:[::1]:50551,[::2]:50551", "::1"),
])
def test_tls_name_of_a_list_of_orchestrators(address: str, name: str | None) -> None:
    from sandbox.api.channel import tls_name

    assert tls_name(address) == name


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls_client_fails_over_along_a_list_of_orchestrators(tmp_path: Path) -> None:
    """Workers and clients of a farm with two orchestrators (deploy/compose.yaml) name both; the first is down."""
    import socket

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    api = open_api(tmp_path, Security(token="t0k", tls_cert=cert.read_bytes(), tls_key=key.read_bytes()))
    try:
        target = f"ipv4:127.0.0.1:{dead},127.0.0.1:{api.server.port}"
        client = SandboxClient(open_channel(target, ClientSecurity(token="t0k", tls_ca=cert.read_bytes())))
        assert client.list() == ([], "")
    finally:
        close_api(api)
