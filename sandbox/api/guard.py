"""Request hygiene for every method of the server, in one interceptor.

* **Decoding.**  gRPC's Python server answers a request that does not parse
  (random bytes, a bad wire type, invalid UTF-8 in a string field, nesting
  past protobuf's recursion limit) with INTERNAL "Exception deserializing
  request!".  Here the deserializer never raises: it returns ``Malformed``
  and the call is answered INVALID_ARGUMENT, naming the message type and the
  parser's reason, before any servicer code runs.  This covers every service
  on the server (health and reflection too) and every message of a request
  stream.
* **Request streams** (uploads, reflection): at most ``max_streams`` at once
  (more -> RESOURCE_EXHAUSTED), so clients that trickle chunks cannot take
  every server thread from the others; and a stream that sends nothing for
  ``idle_timeout_s`` is cut off with DEADLINE_EXCEEDED.  A reader thread per
  stream moves messages into a small queue that the handler reads with that
  timeout; the reader ends when the call does.

It sits *inside* the bearer-token interceptor, so a caller without the token
gets UNAUTHENTICATED whatever it sends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

MAX_REASON = 200
_READER_POLL_S = 0.5
BUSY = "too many uploads in progress"  # RESOURCE_EXHAUSTED with this: try again shortly (not "too big")


@dataclass(frozen=True)
class Malformed:
    """What the tolerant deserializer returns instead of raising."""

    type_name: str
    reason: str

    def describe(self, where: str = "request") -> str:
        return f"{where} is not a valid {self.type_name} message ({self.reason})"


def _type_name(deserializer: Callable[[bytes], Any]) -> str:
    owner = getattr(deserializer, "__self__", None)  # Message.FromString is a bound classmethod
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "protobuf"))


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    type_name = _type_name(deserializer)

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError, RecursionError, UnicodeDecodeError, ...
            reason = str(exc) or type(exc).__name__
            return Malformed(type_name, reason[:MAX_REASON])

    return parse


class _StreamGate:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open = 0
        self._lock = threading.Lock()

    @contextmanager
    def admit(self, context: grpc.ServicerContext) -> Iterator[None]:
        with self._lock:
            admitted = self._open < self._limit
            if admitted:
                self._open += 1
        if not admitted:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{BUSY} (at most {self._limit} at once); retry in a moment",
            )
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1


class StreamCancelled(grpc.RpcError):  # type: ignore[misc]
    """The client went away before its request stream ended (reported as CANCELLED)."""


class _IdleTimeoutStream:
    """The request iterator of one call, read by a helper thread, with an idle timeout."""

    def __init__(self, source: Iterator[Any], context: grpc.ServicerContext, idle_timeout_s: float) -> None:
        self._source = source
        self._context = context
        self._timeout = idle_timeout_s
        # One message waits here and one in the reader: a stream never holds more than two.
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        self._closed = threading.Event()
        self._done = False
        self._index = 0
        self._reader = threading.Thread(target=self._pump, name="rpc-stream-reader", daemon=True)
        self._reader.start()

    def _put(self, entry: tuple[str, Any]) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(entry, timeout=_READER_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            for item in self._source:
                if not self._put(("item", item)):
                    return
            if not self._context.is_active():
                # gRPC may end a cancelled call's request stream like a finished
                # one; a cut-off upload must not be taken for a whole one.
                self._put(("error", StreamCancelled("the client cancelled the call while sending")))
                return
            self._put(("end", None))
        except BaseException as exc:  # the client cancelled, or the call ended under us
            self._put(("error", exc))

    def __iter__(self) -> _IdleTimeoutStream:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        try:
            kind, value = self._queue.get(timeout=self._timeout)
        except queue.Empty:
            self._done = True
            self._context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"request stream idle: no message for {self._timeout:g} s after message {self._index}; "
                "the server cut it off (send chunks without pausing, or start again)",
            )
            raise AssertionError("context.abort returned") from None  # pragma: no cover
        if kind == "end":
            self._done = True
            raise StopIteration
        if kind == "error":
            self._done = True
            raise value
        if isinstance(value, Malformed):
            self._done = True
            self._context.abort(grpc.StatusCode.INVALID_ARGUMENT, value.describe(f"message {self._index} of the stream"))
        self._index += 1
        return value

    def close(self) -> None:
        self._closed.set()


class RequestGuardInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, idle_timeout_s: float, max_streams: int) -> None:
        if idle_timeout_s <= 0 or max_streams < 1:
            raise ValueError("idle_timeout_s must be > 0 and max_streams >= 1")
        self._idle = idle_timeout_s
        self._gate = _StreamGate(max_streams)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        return None if handler is None else self._guarded(handler)

    def _guarded(self, h: Any) -> grpc.RpcMethodHandler:
        de = tolerant(h.request_deserializer) if h.request_deserializer is not None else None
        ser = h.response_serializer
        if not h.request_streaming:
            if h.response_streaming:
                return grpc.unary_stream_rpc_method_handler(_checked_unary(h.unary_stream), de, ser)
            return grpc.unary_unary_rpc_method_handler(_checked_unary(h.unary_unary), de, ser)
        if h.response_streaming:
            return grpc.stream_stream_rpc_method_handler(self._stream_stream(h.stream_stream), de, ser)
        return grpc.stream_unary_rpc_method_handler(self._stream_unary(h.stream_unary), de, ser)

    @contextmanager
    def _stream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[_IdleTimeoutStream]:
        with self._gate.admit(context):
            stream = _IdleTimeoutStream(requests, context, self._idle)
            try:
                yield stream
            finally:
                stream.close()

    def _stream_unary(self, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def call(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with self._stream(requests, context) as stream:
                return behavior(stream, context)

        return call

    def _stream_stream(self, behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]]) -> Callable[..., Any]:
        def call(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            with self._stream(requests, context) as stream:
                yield from behavior(stream, context)

        return call


def _checked_unary(behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.describe())
        return behavior(request, context)

    return call
