"""Decoders of the traced system calls: one complete call in, events out.

Why apart from the line parser: the parser's job is strace's line format
(pid columns, ``<unfinished ...>``/``<... resumed>`` halves, exit lines);
this module's is what each of the ~15 syscalls that matter means: which
file was opened, which program exec'd, where a socket connected and where
its bytes went.  Each decoder needs two or three fields of its argument
list, so they are regexes rather than a grammar.

The one state kept is the fd table: per task, the destination of each
connected IP socket, so a ``write`` whose fd decoration lacks the peer
still says where it went.  It follows the kernel's: ``CLONE_FILES`` shares
a table, a fork copies it, a task's exit drops its own.  It is bounded by
the number of live tasks (oldest dropped past :data:`MAX_TASKS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeAlias, TypeVar

from .addresses import INET_FAMILIES, Endpoint, parse_sockaddr, socket_from_deco
from .events import Connect, Event, Exec, Fork, Open, Send
from .stores import canary_store_for_path, content_command_store
from .syntax import DECO, SOCKADDR, STR, deco_path, unescape

__all__ = ["MAX_TASKS", "WRITE_LIKE", "Handler", "SyscallDecoder", "bounded_set"]

MAX_TASKS = 1 << 16
"""Cap on per-task entries in any of the parser's tables."""

WRITE_LIKE = frozenset({"write", "writev", "sendfile", "sendfile64"})
"""Calls traced for every fd but only kept for IP sockets."""

# fd as first argument, with an optional decoration.
_FD_RE = re.compile(r"(-?\d+)(" + DECO + r")?")
_OPEN_RE = re.compile(r"(" + STR + r")(\.\.\.)?(?:, ([^,]*))?")
_OPENAT_RE = re.compile(
    r"(AT_FDCWD|-?\d+)(" + DECO + r")?, (" + STR + r")(\.\.\.)?(?:, (?:\{flags=)?([^,}]*))?"
)
_ARGV = r"\[((?:" + STR + r"(?:\.\.\.)?, )*(?:" + STR + r"(?:\.\.\.)?)?)(\.\.\.)?\]"
_EXECVE_RE = re.compile(r"(" + STR + r")(\.\.\.)?, (?:" + _ARGV + r")?")
_EXECVEAT_RE = re.compile(
    r"(AT_FDCWD|-?\d+)(" + DECO + r")?, (" + STR + r")(\.\.\.)?, (?:" + _ARGV + r")?"
)
_STR_ITEM_RE = re.compile(r'"((?:[^"\\]|\\.)*)"(\.\.\.)?')
_SOCKADDR_ARG_RE = re.compile(r"(" + SOCKADDR + r")|NULL|0x[0-9a-fA-F]+")
_SENDTO_REST_RE = re.compile(
    r", (?:" + STR + r"(?:\.\.\.)?|[^,]*), \d+, [^,]*, (?:(" + SOCKADDR + r")|[^,]*)"
)
_SENDMSG_REST_RE = re.compile(r", \{msg_name=(" + SOCKADDR + r")")
_SENDMMSG_TOKEN_RE = re.compile(
    r"msg_name=(?:(" + SOCKADDR + r")|[^,]*)|msg_len=(\d+)|" + STR
)

_Dest = tuple[str, str | None, int | None, str | None]  # family, address, port, protocol

Handler: TypeAlias = Callable[
    [int, float, str, str, str, str | None, str | None, bool, list[Event]], None
]
"""``(pid, ts, name, args, value, returned fd decoration, errno, pid_changed,
out)``: decode one complete call, appending its events to ``out``."""

_V = TypeVar("_V")


def bounded_set(mapping: dict[int, _V], key: int, value: _V) -> None:
    """Insert, dropping the oldest entries past the per-task cap."""
    mapping[key] = value
    while len(mapping) > MAX_TASKS:
        del mapping[next(iter(mapping))]


def _join(dir_deco: str | None, path: str) -> str:
    if path.startswith("/") or not dir_deco:
        return path
    base = deco_path(dir_deco)
    if not base or not base.startswith("/"):
        return path
    if not path:
        return base
    return base.rstrip("/") + "/" + path


class SyscallDecoder:
    """The per-syscall decoders and the fd table they share.

    :meth:`handlers` maps each traced syscall name to its decoder;
    :meth:`forget` drops a task's fd table when the task is gone.
    """

    def __init__(self) -> None:
        self._fdtab: dict[int, dict[int, _Dest]] = {}

    def handlers(self) -> dict[str, Handler]:
        """A fresh name -> decoder table (the caller may change its copy)."""
        return {
            "execve": self._on_exec,
            "execveat": self._on_exec,
            "open": self._on_open,
            "openat": self._on_open,
            "openat2": self._on_open,
            "connect": self._on_connect,
            "sendto": self._on_sendto,
            "sendmsg": self._on_sendmsg,
            "sendmmsg": self._on_sendmmsg,
            "write": self._on_write,
            "writev": self._on_write,
            "sendfile": self._on_write,
            "sendfile64": self._on_write,
            "clone": self._on_fork,
            "clone3": self._on_fork,
            "fork": self._on_fork,
            "vfork": self._on_fork,
        }

    def forget(self, pid: int) -> None:
        """Task ``pid`` is gone: drop its fd table (shared ones live on)."""
        self._fdtab.pop(pid, None)

    # -- per-syscall handlers ---------------------------------------------

    def _on_open(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        if name == "open":
            m = _OPEN_RE.match(args)
            if m is None:
                return
            raw, _, flags = m.groups()
            dir_deco = None
        else:
            m = _OPENAT_RE.match(args)
            if m is None:
                return
            _, dir_deco, raw, _, flags = m.groups()
        path = _join(dir_deco, unescape(raw[1:-1]))
        ok = val != "?" and not val.startswith("-")
        resolved = deco_path(rdeco) if ok else None
        store = canary_store_for_path(resolved) or canary_store_for_path(path)
        if ok and val.isdigit():
            table = self._fdtab.get(pid)
            if table:
                table.pop(int(val), None)  # fd number reused: old socket is gone
        out.append(
            Open(pid, ts, path, (flags or "").strip(), ok, store, resolved, None if ok else errno)
        )

    def _on_exec(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        if name == "execve":
            m = _EXECVE_RE.match(args)
            if m is None:
                return
            raw, _, argv_text, argv_dots = m.groups()
            path = unescape(raw[1:-1])
        else:
            m = _EXECVEAT_RE.match(args)
            if m is None:
                return
            _, dir_deco, raw, _, argv_text, argv_dots = m.groups()
            path = _join(dir_deco, unescape(raw[1:-1]))
        argv: tuple[str, ...] = ()
        truncated = argv_dots is not None
        if argv_text:
            items = []
            for item in _STR_ITEM_RE.finditer(argv_text):
                items.append(unescape(item.group(1)))
                truncated = truncated or item.group(2) is not None
            argv = tuple(items)
        ok = val == "0" or (val == "?" and pid_changed)
        is_content, store = content_command_store(path, argv)
        out.append(Exec(pid, ts, path, argv, ok, truncated, is_content, store))

    def _on_connect(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        fm = _FD_RE.match(args)
        if fm is None or not args.startswith(", ", fm.end()):
            return
        fd = int(fm.group(1))
        deco = fm.group(2)
        sm = _SOCKADDR_ARG_RE.match(args, fm.end() + 2)
        if sm is None or sm.group(1) is None:
            return
        family, address, port = parse_sockaddr(sm.group(1))
        proto = None
        mine: Endpoint | None = None
        if deco is not None:
            info = socket_from_deco(deco)
            if info is not None:
                proto, mine = info[0], info[3]
            elif ":[" in deco and not deco.startswith("<socket:["):
                proto = deco[1 : deco.index(":[")]
        ok = val == "0"
        in_progress = errno == "EINPROGRESS"
        local = family not in INET_FAMILIES
        table = self._fdtab.get(pid)
        if family in INET_FAMILIES and (ok or in_progress):
            if table is None:
                table = {}
                bounded_set(self._fdtab, pid, table)
            table[fd] = (family, address, port, proto)
        elif table is not None and (ok or family == "AF_UNSPEC"):
            table.pop(fd, None)
        out.append(
            Connect(
                pid, ts, family, address, port, ok, in_progress, fd, proto, local,
                None if ok else errno,
                mine[0] if mine is not None else None,
                mine[1] if mine is not None else None,
            )
        )

    def _emit_send(
        self, pid: int, ts: float, fd: int, deco: str | None, sockaddr: str | None,
        nbytes: int, syscall: str, out: list[Event],
    ) -> None:
        """One Send, destination from sockaddr, else decoration, else connect."""
        proto: str | None = None
        family: str | None = None
        address: str | None = None
        port: int | None = None
        info = socket_from_deco(deco) if deco is not None else None
        if info is not None:
            proto, family = info[0], info[1]
        elif deco is not None and not deco.startswith("<socket:["):
            return  # a UNIX/netlink socket or a file: not network traffic
        if sockaddr is not None:
            sfam, address, port = parse_sockaddr(sockaddr)
            if sfam not in INET_FAMILIES:
                return
            family = sfam
        elif info is not None and info[2] is not None:
            address, port = info[2]
        else:
            dest = self._fdtab.get(pid, {}).get(fd)
            if dest is not None:
                family, address, port = dest[0], dest[1], dest[2]
                proto = proto or dest[3]
            elif info is None:
                return  # undescribed socket and no connect seen: can't tell
        mine = info[3] if info is not None else None
        out.append(
            Send(
                pid, ts, fd, family, address, port, nbytes, syscall, proto,
                mine[0] if mine is not None else None,
                mine[1] if mine is not None else None,
            )
        )

    def _send_with_sockaddr(
        self, rest_re: re.Pattern[str], pid: int, ts: float, name: str, args: str, val: str, out: list[Event]
    ) -> None:
        """sendto/sendmsg: the fd, then an optional destination sockaddr
        where ``rest_re`` finds it in that call's argument layout."""
        fm = _FD_RE.match(args)
        if fm is None or not val.isdigit():
            return
        rest = rest_re.match(args, fm.end())
        sockaddr = rest.group(1) if rest is not None else None
        self._emit_send(pid, ts, int(fm.group(1)), fm.group(2), sockaddr, int(val), name, out)

    def _on_sendto(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        self._send_with_sockaddr(_SENDTO_REST_RE, pid, ts, name, args, val, out)

    def _on_sendmsg(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        self._send_with_sockaddr(_SENDMSG_REST_RE, pid, ts, name, args, val, out)

    def _on_sendmmsg(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        fm = _FD_RE.match(args)
        if fm is None or not val.isdigit():
            return
        sent = int(val)
        fd, deco = int(fm.group(1)), fm.group(2)
        sockaddr: str | None = None
        done = 0
        for tok in _SENDMMSG_TOKEN_RE.finditer(args, fm.end()):
            if done >= sent:
                break
            text = tok.group()
            if text.startswith("msg_name="):
                sockaddr = tok.group(1)
            elif text.startswith("msg_len="):
                self._emit_send(pid, ts, fd, deco, sockaddr, int(tok.group(2)), name, out)
                sockaddr = None
                done += 1

    def _on_write(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        fm = _FD_RE.match(args)
        if fm is None or not val.isdigit():
            return
        self._emit_send(pid, ts, int(fm.group(1)), fm.group(2), None, int(val), name, out)

    def _on_fork(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        if not val.isdigit() or val == "0":
            return
        child = int(val)
        thread = "CLONE_THREAD" in args
        table = self._fdtab.get(pid)
        if "CLONE_FILES" in args:
            if table is None:
                table = {}
                bounded_set(self._fdtab, pid, table)
            bounded_set(self._fdtab, child, table)  # one fd table, shared
        elif table:
            bounded_set(self._fdtab, child, dict(table))  # fork copies fds
        out.append(Fork(pid, child, ts, thread))
