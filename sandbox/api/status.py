"""Map orchestrator errors to gRPC status codes, in one decorator per call shape.

Expected errors keep their message (which names the field or object and, where
there is one, the fix); a client that cancels while streaming its request ends
as CANCELLED; anything else is logged with its traceback and reaches the
client as INTERNAL without internals.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import grpc

from sandbox.errors import HoneyphoneError
from sandbox.orchestrator.errors import (
    InvalidArgument,
    LimitExceeded,
    NotFound,
    PreconditionFailed,
    StoreUnavailable,
)

_log = logging.getLogger(__name__)
S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")

_CODES: tuple[tuple[type[HoneyphoneError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (PreconditionFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),  # the database is down: clients retry
)


def code_for(exc: HoneyphoneError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def _abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    if isinstance(exc, HoneyphoneError):
        context.abort(code_for(exc), str(exc))
    if isinstance(exc, grpc.RpcError):  # reading the request stream failed: the client went away
        context.abort(grpc.StatusCode.CANCELLED, "the client cancelled the call while sending")
    _log.exception("internal error in RPC", exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log")
    raise AssertionError("context.abort returned")  # pragma: no cover


def unary(fn: Callable[[S, Req, grpc.ServicerContext], Resp]) -> Callable[[S, Req, grpc.ServicerContext], Resp]:
    """For unary responses (the request may be a stream)."""

    @functools.wraps(fn)
    def wrapper(self: S, request: Req, context: grpc.ServicerContext) -> Resp:
        try:
            return fn(self, request, context)
        except Exception as exc:
            if _is_abort(exc):
                raise
            _abort(context, exc)

    return wrapper


def streaming(
    fn: Callable[[S, Req, grpc.ServicerContext], Iterator[Resp]],
) -> Callable[[S, Req, grpc.ServicerContext], Iterator[Resp]]:
    """For streamed responses: errors raised while iterating are mapped too."""

    @functools.wraps(fn)
    def wrapper(self: S, request: Req, context: grpc.ServicerContext) -> Iterator[Resp]:
        try:
            yield from fn(self, request, context)
        except Exception as exc:
            if _is_abort(exc):
                raise
            _abort(context, exc)

    return wrapper


def _is_abort(exc: Exception) -> bool:
    # context.abort() raises a bare Exception after recording the status.
    return type(exc) is Exception
