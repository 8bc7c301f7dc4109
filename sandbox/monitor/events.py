"""Typed events the strace parser yields, one per interesting system call.

Events are small frozen, slotted dataclasses so a parser can stream millions of
them without the caller having to worry about aliasing, and so tests can
compare them by value.  ``pid`` is always the *task* id strace printed (a
thread id for threads); turning threads into processes is the summary's job,
because only it sees ``Fork(thread=True)`` lines that may arrive after the
thread's first system call.

``ts`` is the host's epoch time in seconds (strace ``-ttt``) at syscall *entry*;
for a call split into ``<unfinished ...>``/``<... resumed>`` the event is
yielded when it resumes but keeps the entry time.  Mapping host time to the
device clock happens elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

CanaryStore: TypeAlias = Literal["contacts", "call_log", "sms", "unknown"]
"""Which planted store was touched; ``"unknown"`` only for a ``content``
command whose ``--uri`` names none of the three."""

CANARY_STORES: tuple[CanaryStore, ...] = ("contacts", "call_log", "sms")


@dataclass(frozen=True, slots=True)
class Exec:
    """A process replaced its image (execve/execveat).

    ``content_command`` is True when this runs Android's ``content`` CLI (or
    the twin's ``twinrt.content``), which reads providers without opening the
    database files itself; ``canary_store`` is then the store its ``--uri``
    names, or ``"unknown"``.
    """

    pid: int
    ts: float
    path: str
    argv: tuple[str, ...]
    ok: bool = True
    argv_truncated: bool = False
    content_command: bool = False
    canary_store: CanaryStore | None = None


@dataclass(frozen=True, slots=True)
class Open:
    """open/openat/openat2.  ``path`` is what was asked for (joined with the
    directory fd's path when relative); ``resolved`` is the path of the fd the
    kernel returned (symlinks followed), when strace could show it."""

    pid: int
    ts: float
    path: str
    flags: str
    ok: bool
    canary_store: CanaryStore | None = None
    resolved: str | None = None
    errno: str | None = None


@dataclass(frozen=True, slots=True)
class Connect:
    """connect(2).  ``address`` is normalised (IPv4-mapped IPv6 shown as IPv4)
    so it matches what a packet capture sees; for AF_UNIX it is the socket
    path (``@name`` for abstract sockets).  ``local`` means the socket cannot
    leave the device (not an IP family); ``in_progress`` is a non-blocking
    connect (EINPROGRESS) whose outcome strace does not show.

    ``local_address``/``local_port`` are the socket's own endpoint when its
    ``-yy`` decoration shows one (a socket bound or used before the connect,
    typically UDP).  strace decorates arguments at syscall *entry*, so a
    fresh TCP socket's connect never shows it: its first :class:`Send` does."""

    pid: int
    ts: float
    family: str
    address: str | None
    port: int | None
    ok: bool
    in_progress: bool = False
    fd: int | None = None
    protocol: str | None = None
    local: bool = False
    errno: str | None = None
    local_address: str | None = None
    local_port: int | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes an IP socket accepted (sendto/sendmsg/sendmmsg/write/writev/
    sendfile).  ``address``/``port`` come from the explicit destination, else
    from the fd's ``-yy`` decoration, else from the last connect on that fd;
    they are None when none of those says.

    ``local_address``/``local_port`` are the device socket's own endpoint
    from the decoration (``5<TCP:[10.213.0.3:40000->10.213.0.2:443]>``,
    ``<UDP:[0.0.0.0:47420]>`` for an unconnected UDP socket), else None.
    The local port is what the capture and the fakenet see as the client
    port, so it ties a flow to one socket where address, port and time
    cannot (every name resolves to the one fakenet address)."""

    pid: int
    ts: float
    fd: int
    family: str | None
    address: str | None
    port: int | None
    nbytes: int
    syscall: str
    protocol: str | None = None
    local_address: str | None = None
    local_port: int | None = None


@dataclass(frozen=True, slots=True)
class Fork:
    """A new task (fork/vfork/clone/clone3).  ``thread`` is CLONE_THREAD:
    the child is a thread of ``parent``'s process, not a new process."""

    parent: int
    child: int
    ts: float
    thread: bool = False


@dataclass(frozen=True, slots=True)
class Exit:
    """A task ended: ``code`` for a normal exit, ``signal`` when killed."""

    pid: int
    ts: float
    code: int | None = None
    signal: str | None = None
    core_dumped: bool = False


@dataclass(frozen=True, slots=True)
class Comm:
    """The task's command name (strace ``-Y``) is first seen or changed,
    e.g. after exec or prctl(PR_SET_NAME)."""

    pid: int
    ts: float
    comm: str


Event: TypeAlias = Exec | Open | Connect | Send | Fork | Exit | Comm
