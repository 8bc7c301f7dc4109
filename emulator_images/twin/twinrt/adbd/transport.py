"""The ADB transport: one host connection, its packets and its streams.

:class:`Connection` (an asyncio protocol) answers CNXN with the device
banner and demultiplexes OPEN/OKAY/WRTE/CLSE to :class:`Stream` objects;
each stream runs one service coroutine that the daemon resolves from the
OPEN's service name.  Flow control is end to end: a stream sends at most one
WRTE until the host answers OKAY, and OKAYs a host WRTE only once the service
has consumed it (:meth:`Stream.ack`).  A malformed packet drops that
connection, never the daemon.  The wire format itself is in
:mod:`twinrt.adb_proto`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from typing import Awaitable, Callable, TYPE_CHECKING, TypeVar

from .. import adb_proto as proto
from .. import props
from ..adb_proto import (
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_VERSION,
    A_VERSION_SKIP_CHECKSUM,
    A_WRTE,
    MAX_PAYLOAD,
    Packet,
    ProtocolError,
)

if TYPE_CHECKING:  # the daemon resolves services; it imports this module
    from .services import Daemon

log = logging.getLogger("twinrt.adbd")

T = TypeVar("T")

# Only what the services and sync implement; adb hosts change behaviour per feature.
FEATURES: tuple[str, ...] = (
    "shell_v2",
    "cmd",
    "stat_v2",
    "ls_v2",
    "fixed_push_mkdir",
    "fixed_push_symlink_timestamp",
    "sendrecv_v2",
    "sendrecv_v2_dry_run_send",
)
# Banner properties when the prop files cannot be read.
FALLBACK_BANNER_PROPS = {
    "ro.product.name": "honeyphone_twin",
    "ro.product.model": "Honeyphone Twin",
    "ro.product.device": "twin",
}


MAX_QUEUED_WRITES = 8  # host WRTEs not yet OKAYed; a conforming host has one
CLOSE_GRACE = 5.0  # seconds a service gets to wind down after the host closed it


class StreamClosed(Exception):
    """The stream is gone: closed by the host, by us, or with its connection."""


class Stream:
    """One ADB stream: a host socket bound to one service on the device.

    Outbound bytes are coalesced into WRTEs of up to the negotiated payload
    size, one in flight until the host's OKAY.  Inbound WRTE payloads are
    queued for the service, which calls :meth:`ack` once it has consumed one.
    """

    def __init__(self, conn: Connection, local_id: int, remote_id: int, service: str) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self.closed = False
        self.closed_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._inbox: collections.deque[bytes] = collections.deque()
        self._inbox_event = asyncio.Event()
        self._outbox = bytearray()
        self._outbox_event = asyncio.Event()
        self._can_send = True

    def __repr__(self) -> str:
        return f"<Stream #{self.local_id}->{self.remote_id} {self.service[:60]!r}>"

    # inbound -------------------------------------------------------------
    def on_write(self, payload: bytes) -> None:
        if self.closed:
            return
        if len(self._inbox) >= MAX_QUEUED_WRITES:
            raise ProtocolError(f"{len(self._inbox)} WRTEs without waiting for OKAY")
        self._inbox.append(payload)
        self._inbox_event.set()

    async def next_payload(self) -> bytes:
        """Next WRTE payload; queued data is still delivered after a close."""
        while not self._inbox:
            if self.closed:
                raise StreamClosed
            self._inbox_event.clear()
            await self._inbox_event.wait()
        return self._inbox.popleft()

    def ack(self) -> None:
        """Tell the host we consumed one WRTE, so it may send the next."""
        if not self.closed:
            self.conn.send(A_OKAY, self.local_id, self.remote_id)

    # outbound ------------------------------------------------------------
    async def write(self, *parts: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise StreamClosed
        for part in parts:
            self._outbox += part
        self._pump()
        high = 2 * self.conn.max_payload
        while len(self._outbox) > high:
            self._outbox_event.clear()
            await self._outbox_event.wait()
            if self.closed:
                raise StreamClosed

    def _pump(self) -> None:
        if not (self._can_send and self._outbox) or self.closed:
            return
        size = self.conn.max_payload
        with memoryview(self._outbox) as view:
            chunk = bytes(view[:size])
        del self._outbox[:size]
        self._can_send = False
        self.conn.send(A_WRTE, self.local_id, self.remote_id, chunk)
        self._outbox_event.set()

    def on_okay(self) -> None:
        self._can_send = True
        self._pump()
        self._outbox_event.set()

    async def flush(self) -> None:
        """Wait until every byte written has gone out in a WRTE."""
        while self._outbox:
            if self.closed:
                raise StreamClosed
            self._outbox_event.clear()
            await self._outbox_event.wait()

    async def guard(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` but raise StreamClosed as soon as the stream closes.

        The awaitable itself is not cancelled (it may be a shared future).
        """
        fut = asyncio.ensure_future(awaitable)
        if self.closed:
            raise StreamClosed
        closed = asyncio.ensure_future(self.closed_event.wait())
        try:
            await asyncio.wait({fut, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if fut.done():
            return fut.result()
        raise StreamClosed

    # closing -------------------------------------------------------------
    def close(self) -> None:
        """Close from our side: tell the host (CLSE) and forget the stream."""
        if self.closed:
            return
        self._mark_closed()
        self.conn.send(A_CLSE, self.local_id, self.remote_id)

    def on_remote_close(self) -> None:
        """The host closed it (or the connection died): no reply, per protocol.txt."""
        if self.closed:
            return
        self._mark_closed()
        task = self.task
        if task is not None and not task.done():
            asyncio.get_running_loop().call_later(CLOSE_GRACE, task.cancel)

    def _mark_closed(self) -> None:
        self.closed = True
        self.conn.forget(self)
        self._outbox.clear()
        self._inbox_event.set()
        self._outbox_event.set()
        self.closed_event.set()


class ByteReader:
    """The host's WRTE payloads of one stream as a byte stream (for sync).

    Hands out zero-copy slices; a payload is OKAYed as soon as it has been
    fully handed out, so the host can send the next one while we write.
    """

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._view = memoryview(b"")
        self._owes_ack = False

    def _take(self, size: int) -> memoryview:
        piece = self._view[:size]
        self._view = self._view[len(piece) :]
        if not self._view and self._owes_ack:
            self._owes_ack = False
            self._stream.ack()
        return piece

    async def read_some(self, size: int) -> memoryview:
        """Between 1 and ``size`` bytes (``size`` > 0); StreamClosed at the end."""
        while not self._view:
            if self._owes_ack:
                self._owes_ack = False
                self._stream.ack()
            self._view = memoryview(await self._stream.next_payload())
            self._owes_ack = True
        return self._take(size)

    async def readexactly(self, size: int) -> bytes:
        if len(self._view) >= size:
            return bytes(self._take(size))
        parts: list[bytes] = []
        need = size
        while need:
            piece = await self.read_some(need)
            parts.append(bytes(piece))
            need -= len(piece)
        return b"".join(parts)

    async def skip(self, size: int) -> None:
        while size:
            size -= len(await self.read_some(size))


Service = Callable[[Stream], Awaitable[None]]


class Connection(asyncio.Protocol):
    """One host connection: handshake, then packets demultiplexed to streams."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.online = False
        self.protocol_version = proto.A_VERSION_MIN
        self.max_payload = MAX_PAYLOAD
        self._parser = proto.PacketParser(MAX_PAYLOAD)
        self._streams: dict[int, Stream] = {}
        self._next_id = 1

    # asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for level, option in ((socket.IPPROTO_TCP, socket.TCP_NODELAY), (socket.SOL_SOCKET, socket.SO_KEEPALIVE)):
                try:
                    sock.setsockopt(level, option, 1)
                except OSError:
                    pass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.daemon.connections.add(self)
        log.info("%s: connected", self.peer)

    def data_received(self, data: bytes) -> None:
        try:
            for packet in self._parser.feed(data):
                if self.transport is None or self.transport.is_closing():
                    return
                self._dispatch(packet)
        except ProtocolError as exc:
            log.warning("%s: protocol error: %s; dropping connection", self.peer, exc)
            self.abort()
        except Exception:
            log.exception("%s: internal error handling packet; dropping connection", self.peer)
            self.abort()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        log.info("%s: disconnected%s", self.peer, f" ({exc})" if exc else "")
        self.online = False
        for stream in list(self._streams.values()):
            stream.on_remote_close()
        self.daemon.connections.discard(self)

    # helpers ---------------------------------------------------------------
    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def send(self, command: int, arg0: int, arg1: int, payload: bytes = b"") -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        with_checksum = self.protocol_version < A_VERSION_SKIP_CHECKSUM
        transport.write(proto.encode_packet(command, arg0, arg1, payload, with_checksum=with_checksum))

    def forget(self, stream: Stream) -> None:
        if self._streams.get(stream.local_id) is stream:
            del self._streams[stream.local_id]

    def _alloc_id(self) -> int:
        while True:
            local_id = self._next_id
            self._next_id = (self._next_id % 0xFFFFFFFF) + 1
            if local_id not in self._streams:
                return local_id

    # packets ---------------------------------------------------------------
    def _dispatch(self, packet: Packet) -> None:
        command = packet.command
        if command == A_CNXN:
            self._on_connect(packet)
        elif not self.online:
            log.debug("%s: ignoring %s before CNXN", self.peer, packet.name)
        elif command == A_OPEN:
            self._on_open(packet)
        elif command == A_OKAY:
            stream = self._streams.get(packet.arg1)
            if stream is not None:
                stream.on_okay()
        elif command == A_WRTE:
            stream = self._streams.get(packet.arg1)
            if stream is not None and stream.remote_id == packet.arg0:
                try:
                    stream.on_write(packet.payload)
                except ProtocolError as exc:
                    log.warning("%s: %r: %s; closing stream", self.peer, stream, exc)
                    stream.close()
        elif command == A_CLSE:
            stream = self._streams.get(packet.arg1)
            if stream is not None and packet.arg0 in (0, stream.remote_id):
                log.debug("%s: host closed %r", self.peer, stream)
                stream.on_remote_close()
        else:
            log.debug("%s: ignoring %s", self.peer, packet.name)

    def _on_connect(self, packet: Packet) -> None:
        if packet.arg1 == 0:
            raise ProtocolError("CNXN with max payload 0")
        if self.online:
            log.info("%s: new CNXN on a live connection; resetting its streams", self.peer)
            for stream in list(self._streams.values()):
                stream.on_remote_close()
        self.protocol_version = min(packet.arg0, A_VERSION)
        self.max_payload = min(packet.arg1, MAX_PAYLOAD)
        kind, host_props, features = proto.parse_banner(packet.payload)
        log.info(
            "%s: CNXN version 0x%08x max_payload %d from %s (features: %s)",
            self.peer,
            packet.arg0,
            packet.arg1,
            kind or "?",
            ",".join(features) or "-",
        )
        try:
            banner_props = props.banner_props()
        except Exception:  # a broken prop file must not keep the device offline
            log.exception("cannot read banner properties; using defaults")
            banner_props = dict(FALLBACK_BANNER_PROPS)
        banner = proto.build_banner(banner_props, FEATURES)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(proto.encode_packet(A_CNXN, A_VERSION, self.max_payload, banner, with_checksum=True))
        self.online = True

    def _on_open(self, packet: Packet) -> None:
        remote_id = packet.arg0
        if remote_id == 0:
            log.warning("%s: OPEN with remote id 0 ignored", self.peer)
            return
        name = proto.decode_service_name(packet.payload)
        service = self.daemon.resolve(name)
        if service is None:
            log.info("%s: refused service %r", self.peer, name[:1000])
            self.send(A_CLSE, 0, remote_id)
            return
        stream = Stream(self, self._alloc_id(), remote_id, name)
        self._streams[stream.local_id] = stream
        self.send(A_OKAY, stream.local_id, remote_id)
        log.info("%s: #%d open %r", self.peer, stream.local_id, name[:1000])
        stream.task = asyncio.get_running_loop().create_task(self._run(stream, service))

    async def _run(self, stream: Stream, service: Service) -> None:
        try:
            await service(stream)
            await stream.flush()
        except (StreamClosed, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("%s: service %r failed", self.peer, stream.service[:200])
        finally:
            stream.close()
            log.debug("%s: #%d done", self.peer, stream.local_id)
