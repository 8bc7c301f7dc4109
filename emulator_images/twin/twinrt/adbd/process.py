"""Child processes, PTYs and non-blocking file descriptors for the services.

:class:`Child` watches a spawned shell (pidfd, or a thread where there is
none) and hangs it up, then kills it, when its stream closes; the fd helpers
let service coroutines read and write pipes and PTYs without blocking the
event loop; the PTY helpers give ``exec:`` and PTY shells the raw mode,
controlling terminal and window size AOSP's adbd gives them.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
import threading

log = logging.getLogger("twinrt.adbd")

HANGUP_GRACE = 3.0  # seconds between SIGHUP and SIGKILL of a closed stream's child
PTY_DRAIN_TIMEOUT = 3.0  # seconds a closed raw PTY waits for its child to read pending input
PTY_SETTLE = 0.25  # ... and how long its input must then stay empty


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
