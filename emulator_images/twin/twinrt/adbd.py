"""Device-side ADB daemon of the Honeyphone device twin.

Speaks the ADB transport protocol (AOSP ``protocol.txt``) over TCP so that a
stock ``adb`` host, or any library speaking to an adb server, sees a rooted
Android device: ``adb connect`` then ``shell`` (v1 and shell_v2, raw and
PTY), ``exec:``, ``sync:`` (push/pull/stat/ls, v1 and v2), ``root:`` and
friends, and ``tcp:``/``local*:`` streams for ``adb forward``.  Every service mirrors what AOSP's adbd does, down to the raw PTY
behind ``exec:`` and the mode bits of pushed files, because a firmware under
analysis (or its installer) must not be able to tell it is not on a phone.

Design, briefly: one :class:`Connection` (an asyncio protocol) per host
connection demultiplexes packets to :class:`Stream` objects; each stream
runs one service coroutine.  A stream sends at most one WRTE until the host
answers OKAY, and answers a host WRTE with OKAY only once the service has
consumed it, so flow control is end to end.  Services never trust the host:
a malformed packet drops that connection with a log line, never the daemon.

Standard library only (runs on Debian bookworm's python3 inside the twin).
Entry point: ``python3 -m twinrt.adbd [--host 0.0.0.0] [--port 5555]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import errno
import fcntl
import logging
import os
import pwd
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import threading
from typing import Any, Awaitable, Callable, TypeVar

from . import adb_proto as proto
from . import paths, props
from .adb_proto import (
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_VERSION,
    A_VERSION_SKIP_CHECKSUM,
    A_WRTE,
    MAX_PAYLOAD,
    SYNC_REQUEST,
    Packet,
    ProtocolError,
)

log = logging.getLogger("twinrt.adbd")

T = TypeVar("T")

# Only what is implemented below; adb hosts change behaviour per feature.
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

SHELL = "/bin/sh"
ANDROID_SHELL = "/system/bin/sh"
SHELL_PATH = "/system/bin:/system/xbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEVICE_HOME = "/data/local/tmp"
FALLBACK_HOME = "/tmp"
# Variables our tools need (the /system/bin wrappers run ``python3 -m twinrt…``);
# everything else of adbd's own environment stays out of shells.
PASSTHROUGH_ENV = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "TWIN_ROOT")
# Environment a real device's init gives adbd and hence every adb shell.
ANDROID_ENV = {
    "ANDROID_ROOT": "/system",
    "ANDROID_DATA": "/data",
    "ANDROID_STORAGE": "/storage",
    "ANDROID_ASSETS": "/system/app",
    "ANDROID_BOOTLOGO": "1",
    "ASEC_MOUNTPOINT": "/mnt/asec",
    "EXTERNAL_STORAGE": "/sdcard",
    "DOWNLOAD_CACHE": "/data/cache",
}

FALLBACK_BANNER_PROPS = {
    "ro.product.name": "honeyphone_twin",
    "ro.product.model": "Honeyphone Twin",
    "ro.product.device": "twin",
}

REBOOT_BIN = "/system/bin/reboot"
REMOUNT_BIN = "/system/bin/remount"
ROOT_MESSAGE = "adbd is already running as root\n"
# The twin stays root; this is what adbd prints when it cannot drop root.
UNROOT_MESSAGE = "unable to reset service.adb.root\n"
REMOUNT_MESSAGE = "remount succeeded\n"

OUTPUT_CHUNK = 256 * 1024  # read size for child output
MAX_QUEUED_WRITES = 8  # host WRTEs not yet OKAYed; a conforming host has one
HANGUP_GRACE = 3.0  # seconds between SIGHUP and SIGKILL of a closed stream's child
CLOSE_GRACE = 5.0  # seconds a service gets to wind down after the host closed it
PTY_DRAIN_TIMEOUT = 3.0  # seconds a closed raw PTY waits for its child to read pending input
PTY_SETTLE = 0.25  # ... and how long its input must then stay empty
LISTING_BATCH = 64 * 1024


class StreamClosed(Exception):
    """The stream is gone: closed by the host, by us, or with its connection."""


# --- non-blocking fd helpers ------------------------------------------------


async def _fd_ready(fd: int, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await fut
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def read_fd(fd: int, size: int) -> bytes:
    """Read from a non-blocking fd; ``b""`` at EOF (EIO is how a PTY says EOF)."""
    while True:
        try:
            return os.read(fd, size)
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.ECONNRESET):
                return b""
            raise
        await _fd_ready(fd, write=False)


async def write_fd(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to a non-blocking fd (errors propagate)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await _fd_ready(fd, write=True)
            continue
        view = view[written:]


def _make_raw(fd: int) -> None:
    """``cfmakeraw`` on a PTY slave, as adbd does for protocol-less raw shells."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB)
    cflag |= termios.CS8
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSADRAIN, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])


def _take_controlling_tty() -> None:  # runs in the child between fork and exec
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError:
        pass


async def _wait_pty_input_drained(slave_name: str, child: Child, timeout: float) -> None:
    """Wait until the child has read its PTY's pending input and had time to use it.

    The input queue must stay empty for ``PTY_SETTLE`` seconds: a child
    that has just read a chunk is still writing it somewhere, and the
    hangup that follows would otherwise lose that chunk.
    """
    try:
        fd = os.open(slave_name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + timeout
        busy = loop.time()
        while child.running and loop.time() < deadline:
            pending = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
            if pending > 0:
                busy = loop.time()
            elif loop.time() - busy >= PTY_SETTLE:
                return
            await asyncio.sleep(0.02)
    except OSError:
        return
    finally:
        os.close(fd)


def _set_window_size(fd: int, size: tuple[int, int, int, int]) -> None:
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", *size))
    except OSError:
        pass


# --- shell environment --------------------------------------------------------

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_env_lines(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of the shell env file.

    Blank lines and ``#`` comments are skipped, an ``export`` prefix is
    allowed, the value is taken verbatim (no quote removal, like
    ``docker --env-file``); malformed lines and values with NUL are ignored.
    """
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _ENV_KEY.match(key) or "\0" in value:
            continue
        env[key] = value
    return env


def read_shell_env_file() -> dict[str, str]:
    """Read at every spawn so the device clock can change it at any time."""
    path = paths.under(paths.SHELL_ENV_FILE)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return {}
    return parse_env_lines(text)


def _home_dir() -> str:
    """``/data/local/tmp``, created if missing, else ``/tmp``.

    It is only created when the twin root is ``/`` (we are the device); with
    ``TWIN_ROOT`` pointing elsewhere (host-side tests) the host's file system
    is left alone.
    """
    if os.path.isdir(DEVICE_HOME) and os.access(DEVICE_HOME, os.W_OK | os.X_OK):
        return DEVICE_HOME
    if os.path.realpath(paths.root()) != "/":
        return FALLBACK_HOME
    try:
        os.makedirs(DEVICE_HOME, mode=0o771, exist_ok=True)
    except OSError:
        return FALLBACK_HOME
    return DEVICE_HOME if os.access(DEVICE_HOME, os.W_OK | os.X_OK) else FALLBACK_HOME


def _hostname() -> str:
    """adbd's ``GetHostName``: the host name unless it is "localhost"."""
    name = socket.gethostname()
    if name and name != "localhost":
        return name
    return props.get("ro.product.device", "android") or "android"


def shell_environment(term: str | None, *, interactive: bool = False) -> dict[str, str]:
    """Environment of every process adbd starts (built fresh per spawn).

    Order of precedence: the shell env file, then what adbd itself sets,
    then the Android defaults.
    """
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = "root" if os.getuid() == 0 else str(os.getuid())
    home = _home_dir()
    env = dict(ANDROID_ENV)
    env.update(
        {
            "PATH": SHELL_PATH,
            "HOME": home,
            "TMPDIR": home,
            "USER": user,
            "LOGNAME": user,
            "SHELL": ANDROID_SHELL if os.path.exists(ANDROID_SHELL) else SHELL,
            "HOSTNAME": _hostname(),
        }
    )
    for key in PASSTHROUGH_ENV:
        if key in os.environ:
            env[key] = os.environ[key]
    if term:
        env["TERM"] = term
    if interactive:
        # What Android's mkshrc shows ("twin:/ # "); dash expands it per prompt.
        env["PS1"] = "${HOSTNAME}:${PWD} " + ("# " if os.getuid() == 0 else "$ ")
    env.update(read_shell_env_file())
    return env


# --- local sockets (adb forward) ------------------------------------------------

SOCKET_SPECS = ("tcp:", "localabstract:", "localreserved:", "localfilesystem:")
RESERVED_SOCKET_DIR = "/dev/socket/"


def connect_socket_spec(spec: str) -> socket.socket | None:
    """Connect to a device-local socket named like adbd's ``socket_spec``.

    ``tcp:PORT`` (loopback only: adbd refuses arbitrary hosts), and the three
    AF_UNIX namespaces.  Returns a non-blocking connected socket, or None
    (the OPEN is then refused).  Connecting to a local socket never blocks
    for long, so this runs inline like adbd's ``socket_spec_connect``.
    """
    kind, _, rest = spec.partition(":")
    try:
        if kind == "tcp":
            if not rest.isdigit() or not 0 < int(rest) < 65536:
                return None
            sock = socket.create_connection(("127.0.0.1", int(rest)), timeout=2.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            if not rest:
                return None
            if kind == "localabstract":
                address = "\0" + rest
            elif kind == "localreserved":
                address = RESERVED_SOCKET_DIR + rest
            else:
                address = rest
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(2.0)
                sock.connect(address)
            except BaseException:
                sock.close()
                raise
    except (OSError, ValueError) as exc:
        log.info("cannot connect to %r: %s", spec, exc)
        return None
    sock.setblocking(False)
    return sock


# --- child processes --------------------------------------------------------


def exit_status(returncode: int) -> int:
    """adbd's exit code: the status, or 0x80|signal when killed by a signal."""
    if returncode < 0:
        return 0x80 | (-returncode & 0x7F)
    return returncode & 0xFF


class Child:
    """A spawned shell: reaped without blocking the loop, hung up on close.

    The child leads its own session and process group.  Closing its stream
    while it runs hangs up the group (SIGHUP, like a terminal going away) and
    SIGKILLs the child itself if it is still there after a grace period;
    ``nohup``-ed daemons it started survive, as on a device.
    """

    def __init__(self, proc: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._loop = loop
        self.exited: asyncio.Future[int] = loop.create_future()
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_in_thread, name=f"reap-{self.pid}", daemon=True).start()
        else:
            loop.add_reader(pidfd, self._on_pidfd, pidfd)

    def _on_pidfd(self, pidfd: int) -> None:
        self._loop.remove_reader(pidfd)
        os.close(pidfd)
        self._set_exit(self.proc.wait())

    def _wait_in_thread(self) -> None:
        code = self.proc.wait()
        try:
            self._loop.call_soon_threadsafe(self._set_exit, code)
        except RuntimeError:  # loop already closed at shutdown
            pass

    def _set_exit(self, returncode: int) -> None:
        if not self.exited.done():
            self.exited.set_result(exit_status(returncode))
            log.debug("pid %d exited with %d", self.pid, self.exited.result())

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def hangup(self) -> None:
        if not self.running:
            return
        log.debug("hanging up pid %d", self.pid)
        try:
            os.killpg(self.pid, signal.SIGHUP)
        except OSError:
            pass
        self._loop.call_later(HANGUP_GRACE, self.kill)

    def kill(self) -> None:
        if self.running:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass


# --- streams ------------------------------------------------------------------


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


# --- connection ---------------------------------------------------------------

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


# --- the daemon and its services ------------------------------------------------


class Daemon:
    """Owns the listening socket, live connections and spawned children."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.children: set[Child] = set()

    # services ----------------------------------------------------------------
    def resolve(self, name: str) -> Service | None:
        """Service for an OPEN, or None to refuse it (as adbd, with CLSE)."""
        if name.startswith("shell"):
            spec = proto.parse_shell_service(name[len("shell") :])
            if spec is None:
                return None
            return lambda stream: self.serve_shell(stream, spec)
        if name.startswith("exec:"):
            command = name[len("exec:") :]
            return lambda stream: self.serve_pty(stream, command, term=None, raw=True)
        if name.startswith("sync:"):
            return lambda stream: SyncSession(stream).run()
        if name.startswith("root:"):
            return lambda stream: stream.write(ROOT_MESSAGE.encode())
        if name.startswith("unroot:"):
            return lambda stream: stream.write(UNROOT_MESSAGE.encode())
        if name.startswith("reboot:"):
            return lambda stream: self.serve_reboot(stream, name[len("reboot:") :])
        if name.startswith("remount:"):
            return lambda stream: self.serve_remount(stream, name[len("remount:") :])
        if name.startswith(SOCKET_SPECS):
            sock = connect_socket_spec(name)
            if sock is None:
                return None
            return lambda stream: self.serve_socket(stream, sock)
        return None

    async def serve_shell(self, stream: Stream, spec: proto.ShellSpec) -> None:
        if spec.protocol_v2:
            await self.serve_shell_v2(stream, spec)
        else:
            # Without the shell protocol adbd always uses a PTY; "raw" one in raw mode.
            await self.serve_pty(stream, spec.command, term=spec.term, raw=not spec.pty)

    async def serve_reboot(self, stream: Stream, arg: str) -> None:
        log.warning("reboot requested (%r)", arg)
        if os.access(REBOOT_BIN, os.X_OK):
            await self.serve_pty(stream, f"{REBOOT_BIN} {arg}", term=None, raw=True)

    async def serve_remount(self, stream: Stream, arg: str) -> None:
        if os.access(REMOUNT_BIN, os.X_OK):
            await self.serve_pty(stream, f"{REMOUNT_BIN} {arg}", term=None, raw=True)
        else:
            await stream.write(REMOUNT_MESSAGE.encode())

    async def serve_socket(self, stream: Stream, sock: socket.socket) -> None:
        """``adb forward`` target: bridge the stream to a device-local socket."""
        fd = sock.fileno()
        out_task = asyncio.ensure_future(self._pump_raw_output(stream, fd))
        in_task = asyncio.ensure_future(self._pump_raw_input(stream, fd))
        try:
            await stream.guard(out_task)
        except StreamClosed:
            await asyncio.wait({in_task}, timeout=1.0)
        finally:
            await _cancel(out_task, in_task)
            sock.close()

    # processes -------------------------------------------------------------------
    def spawn(self, command: str, *, stdin: int, stdout: int, stderr: int, term: str | None, ctty: bool) -> Child:
        """``/bin/sh -c COMMAND`` (or an interactive sh), the string passed as is."""
        argv = [SHELL, "-c", command] if command else [SHELL]
        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd="/",
            env=shell_environment(term, interactive=not command),
            close_fds=True,
            start_new_session=True,
            preexec_fn=_take_controlling_tty if ctty else None,
        )
        child = Child(proc, asyncio.get_running_loop())
        self.children.add(child)
        child.exited.add_done_callback(lambda _: self.children.discard(child))
        log.debug("spawned pid %d: %r", child.pid, command[:200])
        return child

    async def serve_pty(self, stream: Stream, command: str, *, term: str | None, raw: bool) -> None:
        """Shell without the shell protocol: everything through one PTY.

        adbd allocates a PTY even for non-interactive commands here (in raw
        mode), so that closing the stream hangs the process up; stdout and
        stderr arrive merged and there is no exit code.
        """
        master, slave = os.openpty()
        try:
            slave_name = os.ttyname(slave)
            if raw:
                _make_raw(slave)
            child = self.spawn(command, stdin=slave, stdout=slave, stderr=slave, term=term, ctty=True)
        except (OSError, subprocess.SubprocessError, termios.error) as exc:
            os.close(master)
            log.error("cannot start %r: %s", command[:200], exc)
            await stream.write(f"error: {exc}\n".encode())
            return
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        out_task = asyncio.ensure_future(self._pump_raw_output(stream, master))
        in_task = asyncio.ensure_future(self._pump_raw_input(stream, master))
        try:
            await stream.guard(out_task)
        except StreamClosed:
            # Host closed the stream (``adb exec-in`` does after its last
            # byte): let received input reach the PTY and the child read it
            # before the hangup, so ``exec-in 'cat > f'`` is not truncated.
            await asyncio.wait({in_task}, timeout=1.0)
            await _wait_pty_input_drained(slave_name, child, PTY_DRAIN_TIMEOUT)
        finally:
            await _cancel(out_task, in_task)
            os.close(master)
            child.hangup()

    @staticmethod
    async def _pump_raw_output(stream: Stream, fd: int) -> None:
        while True:
            data = await read_fd(fd, OUTPUT_CHUNK)
            if not data:
                return
            await stream.write(data)

    @staticmethod
    async def _pump_raw_input(stream: Stream, fd: int) -> None:
        writable = True
        while True:
            data = await stream.next_payload()
            if writable and data:
                try:
                    await write_fd(fd, data)
                except OSError:
                    writable = False
            stream.ack()

    async def serve_shell_v2(self, stream: Stream, spec: proto.ShellSpec) -> None:
        """Shell protocol: stdout/stderr/exit packets out, stdin/close/winsize in."""
        io_sock: socket.socket | None = None
        err_sock: socket.socket | None = None
        child_fds: list[int] = []
        child_socks: list[socket.socket] = []
        if spec.pty:
            io_fd, slave = os.openpty()
            child_fds.append(slave)
            stdin = stdout = stderr = slave
            outputs = [(io_fd, proto.SHELL_STDOUT)]
        else:
            io_sock, io_child = socket.socketpair()
            err_sock, err_child = socket.socketpair()
            child_socks += [io_child, err_child]
            io_fd = io_sock.fileno()
            stdin = stdout = io_child.fileno()
            stderr = err_child.fileno()
            outputs = [(io_fd, proto.SHELL_STDOUT), (err_sock.fileno(), proto.SHELL_STDERR)]

        def close_ours() -> None:
            if io_sock is not None:
                io_sock.close()
            else:
                os.close(io_fd)
            if err_sock is not None:
                err_sock.close()

        try:
            child = self.spawn(spec.command, stdin=stdin, stdout=stdout, stderr=stderr, term=spec.term, ctty=spec.pty)
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("cannot start %r: %s", spec.command[:200], exc)
            close_ours()
            await stream.write(
                proto.encode_shell_packet(proto.SHELL_STDERR, f"error: {exc}\n".encode()),
                proto.encode_shell_packet(proto.SHELL_EXIT, bytes([126])),
            )
            return
        finally:
            for fd in child_fds:
                os.close(fd)
            for sock in child_socks:
                sock.close()

        for fd, _ in outputs:
            os.set_blocking(fd, False)
        out_tasks = [asyncio.ensure_future(self._pump_shell_output(stream, fd, ident)) for fd, ident in outputs]
        in_task = asyncio.ensure_future(
            self._pump_shell_input(stream, io_fd, io_sock, io_fd if spec.pty else None)
        )
        outputs_done = asyncio.gather(*out_tasks)
        try:
            await stream.guard(outputs_done)
            code = await stream.guard(asyncio.shield(child.exited))
            await stream.write(proto.encode_shell_packet(proto.SHELL_EXIT, bytes([code])))
        finally:
            await _cancel(outputs_done, in_task, *out_tasks)
            close_ours()
            child.hangup()

    @staticmethod
    async def _pump_shell_output(stream: Stream, fd: int, ident: int) -> None:
        while True:
            try:
                data = await read_fd(fd, OUTPUT_CHUNK)
            except OSError:
                return
            if not data:
                return
            await stream.write(proto.SHELL_HEADER.pack(ident, len(data)), data)

    @staticmethod
    async def _pump_shell_input(stream: Stream, fd: int, sock: socket.socket | None, pty_fd: int | None) -> None:
        parser = proto.ShellPacketParser()
        stdin_open = True
        while True:
            payload = await stream.next_payload()
            try:
                packets = parser.feed(payload)
            except ProtocolError as exc:
                log.warning("%r: bad shell packet: %s; closing stream", stream, exc)
                stream.close()
                return
            for ident, data in packets:
                if ident == proto.SHELL_STDIN:
                    if stdin_open and data:
                        try:
                            await write_fd(fd, data)
                        except OSError:
                            stdin_open = False
                elif ident == proto.SHELL_CLOSE_STDIN:
                    # A PTY cannot close just its input; adbd ignores it there too.
                    if sock is not None and stdin_open:
                        stdin_open = False
                        try:
                            sock.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                elif ident == proto.SHELL_WINDOW_SIZE and pty_fd is not None:
                    size = proto.parse_window_size(data)
                    if size is not None:
                        _set_window_size(pty_fd, size)
            stream.ack()

    # lifecycle ---------------------------------------------------------------------
    async def serve(self, host: str, port: int, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Connection(self), host, port, reuse_address=True, backlog=128)
        for sock in server.sockets:
            addr = sock.getsockname()
            log.info("adbd listening on %s:%d (features: %s)", addr[0], addr[1], ",".join(FEATURES))
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            server.close()
            for conn in list(self.connections):
                conn.abort()
            await self.shutdown_children()
            await server.wait_closed()

    async def shutdown_children(self, timeout: float = 2.0) -> None:
        children = [c for c in self.children if c.running]
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGHUP)
            except OSError:
                pass
        if children:
            await asyncio.wait([c.exited for c in children], timeout=timeout)
        for child in children:
            child.kill()


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- sync: ---------------------------------------------------------------------


class SyncError(Exception):
    """A sync request that fails with a ``FAIL`` message (adbd's wording)."""


def _strerror(exc: OSError) -> str:
    return exc.strerror or os.strerror(exc.errno or errno.EIO)


def _mkdirs(path: bytes) -> None:
    """``secure_mkdirs``: create missing parents with mode 0775."""
    current = b""
    for part in path.split(b"/"):
        if not part:
            continue
        current += b"/" + part
        try:
            os.mkdir(current, 0o775)
        except FileExistsError:
            continue
        try:
            os.chmod(current, 0o775)
        except OSError:
            pass


class PushTarget:
    """Where pushed bytes go.

    Regular files (and symlinks being replaced) are written to a temporary
    file next to the target and renamed over it on DONE, so a reader never
    sees half a file and a failed push leaves the old one intact.  Device
    nodes and FIFOs are written in place, as adbd does.
    """

    def __init__(self, path: bytes, fd: int, tmp: bytes | None, regular: bool) -> None:
        self.path = path
        self.fd = fd
        self.tmp = tmp
        self.regular = regular
        self._open = True

    @classmethod
    def open(cls, path: bytes, perm: int) -> PushTarget:
        if path.endswith(b"/"):
            raise SyncError("couldn't create file: Is a directory")
        try:
            st: os.stat_result | None = os.lstat(path)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise SyncError("couldn't create file: Is a directory")
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError as exc:
                raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
            return cls(path, fd, None, regular=False)
        parent = os.path.dirname(path) or b"/"
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=b".adbd-push-")
        except PermissionError as exc:
            if st is None:
                raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
            # Directory not writable but the file may be: overwrite in place, like adbd.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            except OSError as exc2:
                raise SyncError(f"couldn't create file: {_strerror(exc2)}") from exc2
            return cls(path, fd, None, regular=True)
        except FileNotFoundError:
            try:
                _mkdirs(parent)
            except OSError as exc:
                raise SyncError(f"secure_mkdirs failed: {_strerror(exc)}") from exc
            try:
                fd, tmp = tempfile.mkstemp(dir=parent, prefix=b".adbd-push-")
            except OSError as exc:
                raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
        except OSError as exc:
            raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
        try:
            os.fchmod(fd, perm)
        except OSError:
            pass
        return cls(path, fd, tmp, regular=True)

    async def write(self, data: memoryview) -> None:
        if not self.regular:
            await write_fd(self.fd, data)
            return
        while data:
            data = data[os.write(self.fd, data) :]

    def commit(self, mtime: int) -> None:
        self._close()
        if self.tmp is not None:
            try:
                os.replace(self.tmp, self.path)
            except OSError as exc:
                raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
            self.tmp = None
        try:
            os.utime(self.path, (mtime, mtime), follow_symlinks=False)
        except OSError:
            pass

    def abort(self) -> None:
        self._close()
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None

    def _close(self) -> None:
        if self._open:
            self._open = False
            os.close(self.fd)


class SyncSession:
    """The ``sync:`` service (AOSP ``file_sync_service.cpp``), v1 and v2.

    Paths are the device's real absolute paths (relative ones are taken
    from ``/``, adbd's working directory).  A failure is reported with
    ``FAIL`` and ends the session, exactly like adbd.
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.reader = ByteReader(stream)

    async def run(self) -> None:
        while await self._handle_one():
            pass

    async def _fail(self, message: str) -> None:
        log.info("%r: sync FAIL: %s", self.stream, message)
        await self.stream.write(proto.encode_sync_fail(message))

    async def _handle_one(self) -> bool:
        ident, length = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
        if length > proto.SYNC_PATH_MAX:
            await self._fail("path too long")
            return False
        raw_path = (await self.reader.readexactly(length)).split(b"\0", 1)[0]
        path = raw_path if raw_path.startswith(b"/") else b"/" + raw_path
        if ident == proto.ID_LSTAT_V1:
            await self._lstat_v1(path)
        elif ident in (proto.ID_STAT_V2, proto.ID_LSTAT_V2):
            await self._stat_v2(ident, path)
        elif ident in (proto.ID_LIST_V1, proto.ID_LIST_V2):
            await self._list(path, v2=ident == proto.ID_LIST_V2)
        elif ident == proto.ID_SEND_V1:
            parsed = proto.parse_send_v1_spec(path)
            if parsed is None:
                await self._fail("missing , in ID_SEND_V1")
                return False
            return await self._send(parsed[0], parsed[1], dry_run=False)
        elif ident == proto.ID_SEND_V2:
            return await self._send_v2(path)
        elif ident == proto.ID_RECV_V1:
            return await self._recv(path)
        elif ident == proto.ID_RECV_V2:
            return await self._recv_v2(path)
        elif ident == proto.ID_QUIT:
            return False
        else:
            await self._fail(f"unknown command {proto.sync_id_u32(ident):08x}")
            return False
        return True

    # stat / list ------------------------------------------------------------------
    async def _lstat_v1(self, path: bytes) -> None:
        try:
            fields: proto.StatFields | None = proto.stat_fields(os.lstat(path))
        except (OSError, ValueError):
            fields = None
        await self.stream.write(proto.encode_stat_v1(fields))

    async def _stat_v2(self, ident: bytes, path: bytes) -> None:
        try:
            st = os.stat(path) if ident == proto.ID_STAT_V2 else os.lstat(path)
        except OSError as exc:
            reply = proto.encode_stat_v2(ident, None, proto.errno_to_wire(exc.errno or errno.EIO))
        else:
            reply = proto.encode_stat_v2(ident, proto.stat_fields(st))
        await self.stream.write(reply)

    async def _list(self, path: bytes, *, v2: bool) -> None:
        try:
            names = [b".", b".."] + os.listdir(path)
        except OSError:
            names = []
        batch = bytearray()
        for name in names:
            try:
                st = os.lstat(path + b"/" + name)
            except OSError as exc:
                if v2:
                    batch += proto.encode_dent_v2(name, None, exc.errno or errno.EIO)
                continue
            fields = proto.stat_fields(st)
            batch += proto.encode_dent_v2(name, fields) if v2 else proto.encode_dent_v1(name, fields)
            if len(batch) >= LISTING_BATCH:
                await self.stream.write(batch)
                batch = bytearray()
        batch += proto.encode_dent_done(v2)
        await self.stream.write(batch)

    # send ---------------------------------------------------------------------------
    async def _send_v2(self, path: bytes) -> bool:
        _ident, mode, flags = proto.SYNC_SEND_V2_SETUP.unpack(
            await self.reader.readexactly(proto.SYNC_SEND_V2_SETUP.size)
        )
        dry_run = bool(flags & proto.SYNC_FLAG_DRY_RUN)
        flags &= ~proto.SYNC_FLAG_DRY_RUN
        if flags:  # compression was never advertised
            await self._fail(f"unknown flags: {flags}")
            return False
        return await self._send(path, mode, dry_run=dry_run)

    async def _send(self, path: bytes, mode: int, *, dry_run: bool) -> bool:
        log.info("%r: push %s mode %o%s", self.stream, os.fsdecode(path), mode, " (dry run)" if dry_run else "")
        if proto.is_symlink_mode(mode):
            return await self._send_link(path, dry_run=dry_run)
        target: PushTarget | None = None
        if not dry_run:
            try:
                target = PushTarget.open(path, proto.android_push_mode(mode))
            except SyncError as exc:
                await self._fail(str(exc))
                await self._discard_until_done()
                return False
        try:
            while True:
                ident, size = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
                if ident == proto.ID_DONE:
                    mtime = size
                    break
                if ident != proto.ID_DATA:
                    await self._fail("invalid data message")
                    return False
                if target is None:
                    await self.reader.skip(size)
                    continue
                error = await self._copy_to(target, size)
                if error is not None:
                    await self._fail(f"write failed: {_strerror(error)}")
                    await self._discard_until_done()
                    return False
            if target is not None:
                try:
                    target.commit(mtime)
                except SyncError as exc:
                    await self._fail(str(exc))
                    return False
            await self.stream.write(proto.encode_sync_okay())
            return True
        finally:
            if target is not None:
                target.abort()

    async def _copy_to(self, target: PushTarget, size: int) -> OSError | None:
        """Stream ``size`` bytes of a DATA chunk into the file; consume all even on error."""
        error: OSError | None = None
        while size:
            piece = await self.reader.read_some(size)
            size -= len(piece)
            if error is None:
                try:
                    await target.write(piece)
                except OSError as exc:
                    error = exc
        return error

    async def _discard_until_done(self) -> None:
        """adbd keeps reading DATA after a failure until DONE so the host sees FAIL."""
        while True:
            ident, size = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
            if ident != proto.ID_DATA or size > proto.SYNC_DATA_MAX:
                return
            await self.reader.skip(size)

    async def _send_link(self, path: bytes, *, dry_run: bool) -> bool:
        ident, size = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
        if ident != proto.ID_DATA:
            await self._fail("invalid data message: expected ID_DATA")
            return False
        if size > proto.SYNC_DATA_MAX:
            await self._fail("oversize data message")
            return False
        link_target = (await self.reader.readexactly(size)).split(b"\0", 1)[0]
        if not dry_run:
            try:
                current: bytes | None = os.readlink(path)
            except OSError:
                current = None
            if current != link_target:
                try:
                    os.unlink(path)
                except OSError:
                    pass
                try:
                    try:
                        os.symlink(link_target, path)
                    except FileNotFoundError:
                        try:
                            _mkdirs(os.path.dirname(path) or b"/")
                        except OSError as exc:
                            raise SyncError(f"secure_mkdirs failed: {_strerror(exc)}") from exc
                        os.symlink(link_target, path)
                except OSError as exc:
                    await self._fail(f"symlink failed: {_strerror(exc)}")
                    return False
                except SyncError as exc:
                    await self._fail(str(exc))
                    return False
        ident, mtime = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
        if ident != proto.ID_DONE:
            await self._fail("invalid data message: expected ID_DONE")
            return False
        if not dry_run:
            try:
                os.utime(path, (mtime, mtime), follow_symlinks=False)
            except OSError:
                pass
        await self.stream.write(proto.encode_sync_okay())
        return True

    # recv ---------------------------------------------------------------------------
    async def _recv_v2(self, path: bytes) -> bool:
        _ident, flags = proto.SYNC_RECV_V2_SETUP.unpack(await self.reader.readexactly(proto.SYNC_RECV_V2_SETUP.size))
        if flags:
            await self._fail(f"unknown flags: {flags}")
            return False
        return await self._recv(path)

    async def _recv(self, path: bytes) -> bool:
        log.info("%r: pull %s", self.stream, os.fsdecode(path))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            await self._fail(f"open failed: {_strerror(exc)}")
            return False
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            header = struct.Struct("<4sI")
            while True:
                try:
                    data = os.read(fd, proto.SYNC_DATA_MAX) if regular else await read_fd(fd, proto.SYNC_DATA_MAX)
                except BlockingIOError:
                    await _fd_ready(fd, write=False)
                    continue
                except OSError as exc:
                    await self._fail(f"read failed: {_strerror(exc)}")
                    return False
                if not data:
                    break
                await self.stream.write(header.pack(proto.ID_DATA, len(data)), data)
            await self.stream.write(proto.encode_sync_done())
            return True
        finally:
            os.close(fd)


# --- entry point -------------------------------------------------------------------


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d adbd[%(process)d] %(levelname)s %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def _loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    exc = context.get("exception")
    log.error("event loop: %s", context.get("message"), exc_info=exc if isinstance(exc, BaseException) else None)


async def _amain(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_exception_handler)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await Daemon().serve(host, port, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m twinrt.adbd", description="ADB daemon of the device twin")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=5555, help="TCP port (default 5555; 0 picks a free one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        asyncio.run(_amain(args.host, args.port))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
