"""The daemon and the services a stream can open.

:class:`Daemon` owns the listening socket, live connections and spawned
children, and resolves an OPEN's service name to a coroutine: ``shell:``
(v1, raw or PTY, and shell_v2 with its packet framing), ``exec:`` (a raw
PTY), ``sync:`` (in :mod:`.sync`), ``root:``/``unroot:``/``reboot:``/
``remount:``, and ``tcp:``/``local*:`` sockets for ``adb forward``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import termios
from typing import Any

from .. import adb_proto as proto
from ..adb_proto import ProtocolError
from .process import (
    PTY_DRAIN_TIMEOUT,
    Child,
    _make_raw,
    _set_window_size,
    _take_controlling_tty,
    _wait_pty_input_drained,
    read_fd,
    write_fd,
)
from .shellenv import SHELL, shell_environment
from .sync import SyncSession
from .transport import Connection, FEATURES, Service, Stream, StreamClosed

log = logging.getLogger("twinrt.adbd")

REBOOT_BIN = "/system/bin/reboot"
REMOUNT_BIN = "/system/bin/remount"
ROOT_MESSAGE = "adbd is already running as root\n"
# The twin stays root; this is what adbd prints when it cannot drop root.
UNROOT_MESSAGE = "unable to reset service.adb.root\n"
REMOUNT_MESSAGE = "remount succeeded\n"

OUTPUT_CHUNK = 256 * 1024  # read size for child output

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
