"""The TCP catch-all: every TCP connection from the device ends here.

iptables REDIRECTs all device TCP to this listener.  For each connection we
recover the original destination (``SO_ORIGINAL_DST``), peek at the first
bytes, then either

* bridge it into mitmproxy (TLS ClientHello or an HTTP method): we send
  ``CONNECT <orig ip>:<port>`` first so mitmproxy knows the destination and
  intercepts TLS/HTTP inside the tunnel, with headers carrying the device's
  address and our connection id, which the addon strips and records; or
* record it raw (anything else, including server-first protocols whose
  client stays silent past the peek timeout): read until close, keep the
  size, the sha256 and the first bytes.

Every accepted connection is logged in ``connections.jsonl`` first, so
flows can always be joined to the device's source address.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .origdst import original_dst
from .sniff import classify, client_hello_sni

Record = Callable[[dict[str, Any]], None]
CLIENT_HEADER = "X-Honeyphone-Client"
CONN_HEADER = "X-Honeyphone-Conn"
READ_CHUNK = 65536


@dataclass(frozen=True)
class CatchAllConfig:
    mitm_host: str
    mitm_port: int
    peek_timeout_s: float
    idle_timeout_s: float
    keep_bytes: int


def connect_request(orig_dst: tuple[str, int], client: str, conn_id: str) -> bytes:
    """The CONNECT that opens a mitmproxy tunnel to the device's real destination."""
    target = f"{orig_dst[0]}:{orig_dst[1]}"
    return (
        f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        f"{CLIENT_HEADER}: {client}\r\n{CONN_HEADER}: {conn_id}\r\n\r\n"
    ).encode("ascii")


async def peek(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, str]:
    """Read until the protocol can be told apart, the client goes quiet, or EOF."""
    data = b""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        kind = classify(data)
        if kind is not None:
            return data, kind
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return data, "tcp"
        try:
            chunk = await asyncio.wait_for(reader.read(READ_CHUNK), remaining)
        except asyncio.TimeoutError:
            return data, "tcp"
        if not chunk:
            return data, "tcp"
        data += chunk


class _RawStream:
    """Size, sha256 and the first bytes of everything a client sent."""

    def __init__(self, keep: int):
        self.keep = keep
        self.total = 0
        self.sha = hashlib.sha256()
        self.head = bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.sha.update(chunk)
        if len(self.head) < self.keep:
            self.head += chunk[: self.keep - len(self.head)]


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: float) -> int:
    """Copy until EOF, then half-close the other side; returns bytes copied."""
    n = 0
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(READ_CHUNK), idle)
            if not chunk:
                break
            n += len(chunk)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.TimeoutError, ConnectionError):
        pass
    return n


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await writer.wait_closed()
    except (OSError, ConnectionError):
        pass


class CatchAll:
    def __init__(self, cfg: CatchAllConfig, connections: Record, tcp: Record, errors: Record):
        self.cfg = cfg
        self._connections = connections
        self._tcp = tcp
        self._errors = errors
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except Exception as exc:  # one bad connection must not take the catch-all down
            self._errors({"ts": time.time(), "where": "catchall", "error": repr(exc)})
        finally:
            if task is not None:
                self._tasks.discard(task)
            await _close(writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ts = time.time()
        sock: socket.socket = writer.get_extra_info("socket")
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}"
        try:
            dst = original_dst(sock)  # type: ignore[arg-type]
        except (OSError, ValueError):
            local = writer.get_extra_info("sockname")
            dst = (local[0], local[1])
        orig = f"{dst[0]}:{dst[1]}"
        conn_id = uuid.uuid4().hex
        first, kind = await peek(reader, self.cfg.peek_timeout_s)
        record: dict[str, Any] = {
            "ts": ts, "id": conn_id, "client": client, "orig_dst": orig, "kind": kind,
            "local_port_to_mitm": None,
            "sni": client_hello_sni(first) if kind == "tls" else None,
        }
        if kind == "tcp":
            self._connections(record)
            await self._raw(conn_id, ts, client, orig, first, reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.cfg.mitm_host, self.cfg.mitm_port)
        except OSError as exc:
            record["error"] = f"mitmproxy unreachable: {exc}"
            self._connections(record)
            await self._raw(conn_id, ts, client, orig, first, reader)
            return
        record["local_port_to_mitm"] = up_writer.get_extra_info("sockname")[1]
        self._connections(record)
        try:
            up_writer.write(connect_request(dst, client, conn_id))
            await up_writer.drain()
            head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), 30)
            if not head.split(b" ", 2)[1:2] == [b"200"]:
                raise ConnectionError(f"mitmproxy refused CONNECT: {head[:80]!r}")
            up_writer.write(first)
            await up_writer.drain()
            await asyncio.gather(
                _pump(reader, up_writer, self.cfg.idle_timeout_s),
                _pump(up_reader, writer, self.cfg.idle_timeout_s),
            )
        finally:
            await _close(up_writer)

    async def _raw(
        self, conn_id: str, ts: float, client: str, orig: str, first: bytes, reader: asyncio.StreamReader
    ) -> None:
        stream = _RawStream(self.cfg.keep_bytes)
        stream.add(first)
        closed_by = "client"
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(READ_CHUNK), self.cfg.idle_timeout_s)
                if not chunk:
                    break
                stream.add(chunk)
        except asyncio.TimeoutError:
            closed_by = "idle-timeout"
        except asyncio.CancelledError:
            closed_by = "fakenet-shutdown"
            raise
        except (OSError, ConnectionError):
            closed_by = "reset"
        finally:
            self._tcp({
                "ts": ts, "ts_end": time.time(), "id": conn_id, "client": client, "orig_dst": orig,
                "bytes": stream.total, "sha256": stream.sha.hexdigest(),
                "head_b64": base64.b64encode(bytes(stream.head)).decode("ascii"),
                "head_truncated": stream.total > len(stream.head), "closed_by": closed_by,
            })

    async def shutdown(self) -> None:
        """Cancel open connections so raw streams are still recorded."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)


async def serve(catchall: CatchAll, port: int) -> asyncio.base_events.Server:
    return await asyncio.start_server(catchall.handle, "0.0.0.0", port, backlog=512, reuse_address=True)
