"""Bearer-token authentication for the server, and the matching client interceptor.

Every RPC except the standard health service must carry
``authorization: Bearer <token>``; the comparison is constant-time.  The health
service stays open so that probes need no secret.  A token only means
something over TLS or loopback, which ``server.check_listen_security`` enforces.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import grpc

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


def _deny(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token (metadata 'authorization: Bearer …')")


def _deny_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
    _deny(request, context)
    yield from ()


class BearerTokenInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("empty token")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = str(handler_call_details.method)
        if method.startswith(EXEMPT_PREFIXES):
            return continuation(handler_call_details)
        metadata = handler_call_details.invocation_metadata or ()
        given = next((str(v) for k, v in metadata if k == "authorization"), "")
        handler = continuation(handler_call_details)
        if handler is None or hmac.compare_digest(given.encode(), self._expected):
            return handler
        return _denying(handler)


def _denying(h: Any) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``h`` that rejects the call."""
    de, ser = h.request_deserializer, h.response_serializer
    if h.request_streaming and h.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_deny_stream, de, ser)
    if h.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_deny, de, ser)
    if h.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_deny_stream, de, ser)
    return grpc.unary_unary_rpc_method_handler(_deny, de, ser)


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class TokenClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds the bearer token to every call of a channel."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, d: Any) -> _Details:
        metadata = list(d.metadata or ()) + [self._header]
        return _Details(
            d.method, d.timeout, metadata, d.credentials, getattr(d, "wait_for_ready", None),
            getattr(d, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)
