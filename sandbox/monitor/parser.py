"""Streaming parser for the strace output of :func:`strace_cmd.strace_argv`.

Why streaming: a firmware run can write gigabytes of trace, so the parser
reads one line at a time and yields :mod:`events` as soon as a call is
complete.  Its state is bounded by the number of *live* tasks, never by the
trace length: a pending ``<unfinished ...>`` half per task, each task's
connected-fd destinations (for writes whose fd decoration lacks the peer),
and each task's last command name.  All three are capped (oldest dropped).

Why regexes and not a grammar: only ~15 syscalls matter, and each needs two
or three fields.  The expensive general tokenizer (strings, ``<...>`` fd
decorations, nested brackets) runs only when the cheap "last ``) = ``" split
is ambiguous, e.g. a returned fd whose path itself contains ``) = ``.
Non-socket ``write`` lines, the bulk of any trace, are rejected after one
anchored regex on the fd decoration.

Robustness: a line it cannot make sense of is counted (``stats.unparseable``,
with a few samples kept) and skipped; nothing raises unless ``strict=True``,
which tests use to surface bugs that the lenient mode would hide.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeAlias, TypeVar

from .events import (
    CanaryStore,
    Comm,
    Connect,
    Event,
    Exec,
    Exit,
    Fork,
    Open,
    Send,
)

__all__ = [
    "ParseStats",
    "StraceParser",
    "canary_store_for_path",
    "content_command_store",
    "parse_file",
    "parse_lines",
    "unescape",
]

# --------------------------------------------------------------------------
# Lexical pieces of strace output.

_STR = r'"(?:[^"\\]|\\.)*"'
# An fd decoration: paths escape < > " and \, so a bare '>' only appears in a
# socket's "->" or a nested -yy device tag like </dev/null<char 1:3>>.
_DECO = r"<(?:\\.|->|<[^<>]*>|[^<>\\])*>"
_SOCKADDR = r'\{(?:[^{}"]|' + _STR + r")*\}"

_LINE_RE = re.compile(
    r"[ \t]*(?:(?:\[pid[ \t]+(\d+)(?:<((?:[^>\\]|\\.)*)>)?\]"
    r"|(\d+)(?:<((?:[^>\\]|\\.)*)>)?)[ \t]+)?"
    r"(?:(\d+\.\d+)[ \t]+)?"
    r"(?:([A-Za-z_][A-Za-z0-9_]*)\()?",
)
_RET_RE = re.compile(
    r"(-?\d+|0x[0-9a-fA-F]+|\?)"
    r"(" + _DECO + r")?"
    r"(?: (E[A-Z0-9_]+))?"
    r"(?: \([^()]*\))?"
    r"(?: <unavailable>)?"
    r"(?: <\d+\.\d+>)?"
)
_TOKEN_RE = re.compile(_STR + r"|" + _DECO + r'|[()]|[^"<()]+|.', re.S)
_RESUMED_RE = re.compile(r"<\.\.\. ([A-Za-z0-9_]+) resumed>")
_PID_CHANGED_RE = re.compile(r" ?<pid changed to (\d+) \.\.\.>$")
_EXIT_RE = re.compile(
    r"\+\+\+ (?:exited with (-?\d+)|killed by ([A-Z0-9_+-]+)( \(core dumped\))?)"
    r"|\+\+\+ superseded by execve in pid (\d+)"
)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# fd as first argument, with an optional decoration.
_FD_RE = re.compile(r"(-?\d+)(" + _DECO + r")?")
# A write-like call worth a closer look: its fd is an IP socket, or a socket
# strace could not describe (then a recorded connect may still say where).
_SOCKFD_RE = re.compile(r"\d+<(?:TCP|UDP|TCPv6|UDPv6|socket):\[")
_SOCKDECO_RE = re.compile(r"<(TCP|UDP|TCPv6|UDPv6):\[(.*)\]>", re.S)

_OPEN_RE = re.compile(r"(" + _STR + r")(\.\.\.)?(?:, ([^,]*))?")
_OPENAT_RE = re.compile(
    r"(AT_FDCWD|-?\d+)(" + _DECO + r")?, (" + _STR + r")(\.\.\.)?(?:, (?:\{flags=)?([^,}]*))?"
)
_ARGV = r"\[((?:" + _STR + r"(?:\.\.\.)?, )*(?:" + _STR + r"(?:\.\.\.)?)?)(\.\.\.)?\]"
_EXECVE_RE = re.compile(r"(" + _STR + r")(\.\.\.)?, (?:" + _ARGV + r")?")
_EXECVEAT_RE = re.compile(
    r"(AT_FDCWD|-?\d+)(" + _DECO + r")?, (" + _STR + r")(\.\.\.)?, (?:" + _ARGV + r")?"
)
_STR_ITEM_RE = re.compile(r'"((?:[^"\\]|\\.)*)"(\.\.\.)?')
_SOCKADDR_ARG_RE = re.compile(r"(" + _SOCKADDR + r")|NULL|0x[0-9a-fA-F]+")
_SENDTO_REST_RE = re.compile(
    r", (?:" + _STR + r"(?:\.\.\.)?|[^,]*), \d+, [^,]*, (?:(" + _SOCKADDR + r")|[^,]*)"
)
_SENDMSG_REST_RE = re.compile(r", \{msg_name=(" + _SOCKADDR + r")")
_SENDMMSG_TOKEN_RE = re.compile(
    r"msg_name=(?:(" + _SOCKADDR + r")|[^,]*)|msg_len=(\d+)|" + _STR
)

_FAMILY_RE = re.compile(r"sa_family=(\w+)")
_PORT_RE = re.compile(r"sin6?_port=htons\((\d+)\)")
_INET_ADDR_RE = re.compile(r'inet_addr\("([^"]*)"\)')
_INET6_ADDR_RE = re.compile(r'inet_pton\(AF_INET6, "([^"]*)"')
_UNIX_PATH_RE = re.compile(r"sun_path=(@?)(" + _STR + r")")

_ESC_RE = re.compile(r"\\(?:x([0-9a-fA-F]{1,2})|([0-7]{1,3})|(.))", re.S)
_SIMPLE_ESCAPES = {
    "n": 10,
    "t": 9,
    "r": 13,
    "v": 11,
    "f": 12,
    "a": 7,
    "b": 8,
    "e": 27,
}

_INET_FAMILIES = frozenset({"AF_INET", "AF_INET6"})
_PROTO_FAMILY = {"TCP": "AF_INET", "UDP": "AF_INET", "TCPv6": "AF_INET6", "UDPv6": "AF_INET6"}

_MAX_TASKS = 1 << 16
_MAX_SAMPLES = 20
_SAMPLE_CHARS = 240

_UNFINISHED = " <unfinished ...>"
# Calls traced for every fd but only kept for IP sockets.
_WRITE_LIKE = frozenset({"write", "writev", "sendfile", "sendfile64"})

# --------------------------------------------------------------------------
# Small pure helpers (public ones are reused by the summary and the tests).


def unescape(text: str) -> str:
    """Decode strace's C-style escapes (``\\"``, ``\\n``, ``\\x41``, ``\\303``).

    Bytes that are not UTF-8 come back as ``\\xNN`` so the result is always
    printable and JSON-safe.
    """
    if "\\" not in text:
        return text
    out = bytearray()
    pos = 0
    for m in _ESC_RE.finditer(text):
        out += text[pos : m.start()].encode("utf-8", "surrogatepass")
        hexa, octal, char = m.groups()
        if hexa is not None:
            out.append(int(hexa, 16))
        elif octal is not None:
            out.append(int(octal, 8) & 0xFF)
        else:
            code = _SIMPLE_ESCAPES.get(char)
            if code is not None:
                out.append(code)
            else:
                out += char.encode("utf-8", "surrogatepass")
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogatepass")
    return out.decode("utf-8", "backslashreplace")


_STORE_BY_DB: dict[str, CanaryStore] = {
    "contacts2.db": "contacts",
    "calllog.db": "call_log",
    "mmssms.db": "sms",
}
_DB_SUFFIXES = ("-journal", "-wal", "-shm")


def canary_store_for_path(path: str | None) -> CanaryStore | None:
    """The canary store a file belongs to, by basename: the database itself
    or its SQLite side files (``-journal``, ``-wal``, ``-shm``)."""
    if not path or ".db" not in path:
        return None
    base = path.rsplit("/", 1)[-1]
    store = _STORE_BY_DB.get(base)
    if store is not None:
        return store
    for suffix in _DB_SUFFIXES:
        if base.endswith(suffix):
            return _STORE_BY_DB.get(base[: -len(suffix)])
    return None


_STORE_BY_AUTHORITY: dict[str, CanaryStore] = {
    "sms": "sms",
    "mms": "sms",
    "mms-sms": "sms",
    "call_log": "call_log",
    "call_log_shadow": "call_log",
    "com.android.contacts": "contacts",
    "contacts": "contacts",
}
_CONTENT_MARKERS = frozenset(
    {"twinrt.content", "/system/bin/content", "com.android.commands.content.Content"}
)


def content_command_store(path: str, argv: tuple[str, ...]) -> tuple[bool, CanaryStore | None]:
    """Whether an exec runs Android's ``content`` CLI, and which store its
    ``--uri`` reads (``"unknown"`` when no URI names a canary store)."""
    is_content = (
        (bool(argv) and argv[0].rsplit("/", 1)[-1] == "content")
        or path.rsplit("/", 1)[-1] == "content"
        or any(arg in _CONTENT_MARKERS for arg in argv)
    )
    if not is_content:
        return False, None
    uri: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--uri" and i + 1 < len(argv):
            uri = argv[i + 1]
            break
        if arg.startswith("--uri="):
            uri = arg[6:]
            break
    if uri is None:
        uri = next((a for a in argv if a.startswith("content://")), None)
    store: CanaryStore = "unknown"
    if uri is not None and uri.startswith("content://"):
        authority = uri[10:].split("/", 1)[0].rsplit("@", 1)[-1].lower()
        store = _STORE_BY_AUTHORITY.get(authority, "unknown")
    return True, store


@lru_cache(maxsize=4096)
def _normalize_ip(address: str) -> str:
    """Canonical text for an IP: IPv4-mapped IPv6 becomes dotted IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _parse_sockaddr(text: str) -> tuple[str, str | None, int | None]:
    """(family, address, port) from a strace sockaddr ``{sa_family=...}``."""
    fm = _FAMILY_RE.search(text)
    family = fm.group(1) if fm else "AF_UNKNOWN"
    if family in _INET_FAMILIES:
        pm = _PORT_RE.search(text)
        am = (_INET_ADDR_RE if family == "AF_INET" else _INET6_ADDR_RE).search(text)
        port = int(pm.group(1)) if pm else None
        return family, (_normalize_ip(am.group(1)) if am else None), port
    if family == "AF_UNIX":
        um = _UNIX_PATH_RE.search(text)
        if um is None:
            return family, None, None
        return family, um.group(1) + unescape(um.group(2)[1:-1]), None
    return family, None, None


def _split_hostport(text: str) -> tuple[str, int] | None:
    """``1.2.3.4:443`` or ``[::1]:443`` to (address, port)."""
    if text.startswith("["):
        host, sep, port = text[1:].rpartition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return _normalize_ip(host), int(port)


_Endpoint: TypeAlias = tuple[str, int]
_SockInfo: TypeAlias = tuple[str, str, _Endpoint | None, _Endpoint | None]


def _socket_from_deco(deco: str) -> _SockInfo | None:
    """(protocol, family, peer, local) from ``<TCP:[a:p->b:q]>`` (local
    ``a:p``, peer ``b:q``) or ``<UDP:[a:p]>`` (local only); None if not IP.
    An endpoint is None when the decoration lacks it (``<TCP:[14400]>``, the
    inode of a socket not yet connected) or its port is 0 (not bound)."""
    m = _SOCKDECO_RE.fullmatch(deco)
    if m is None:
        return None
    proto, inner = m.group(1), m.group(2)
    here, arrow, there = inner.partition("->")
    peer = _split_hostport(there) if arrow else None
    local = _split_hostport(here)
    if local is not None and local[1] == 0:
        local = None
    return proto, _PROTO_FAMILY[proto], peer, local


def _deco_path(deco: str | None) -> str | None:
    """The path inside an fd decoration, without a nested ``<char 1:3>``."""
    if not deco or len(deco) < 2:
        return None
    inner = deco[1:-1]
    if inner.endswith(">"):
        cut = inner.rfind("<")
        if cut > 0:
            inner = inner[:cut]
    return unescape(inner)


def _join(dir_deco: str | None, path: str) -> str:
    if path.startswith("/") or not dir_deco:
        return path
    base = _deco_path(dir_deco)
    if not base or not base.startswith("/"):
        return path
    if not path:
        return base
    return base.rstrip("/") + "/" + path


def _args_end(body: str, start: int) -> int:
    """Index of the ``)`` closing the argument list opened before ``start``."""
    depth = 1
    for m in _TOKEN_RE.finditer(body, start):
        tok = m.group()
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParseStats:
    """Counters from one parse.  ``ignored`` lines were well formed but of no
    interest (untraced syscall, write to a pipe); ``info`` are strace's own
    notes and signal lines; ``orphaned`` resumed a call whose start was never
    seen (trace started mid-call); ``dropped_unfinished`` started and never
    resumed (task killed mid-call, or trace cut)."""

    lines: int = 0
    events: int = 0
    ignored: int = 0
    info: int = 0
    unparseable: int = 0
    orphaned: int = 0
    dropped_unfinished: int = 0
    unparseable_samples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "events": self.events,
            "ignored": self.ignored,
            "info": self.info,
            "unparseable": self.unparseable,
            "orphaned": self.orphaned,
            "dropped_unfinished": self.dropped_unfinished,
            "unparseable_samples": list(self.unparseable_samples),
        }


_Dest = tuple[str, str | None, int | None, str | None]  # family, address, port, protocol
_Handler = Callable[[int, float, str, str, str, str | None, str | None, bool, list[Event]], None]
_V = TypeVar("_V")


class StraceParser:
    """Turns strace lines into events, one line at a time.

    Use :meth:`parse` on any iterable of lines (a file object works), or
    :meth:`feed` line by line.  ``default_pid`` is used for lines without a
    pid column (strace without ``-f``, or the first task in ``[pid N]``
    mode).  Call :meth:`finish` at the end to account for calls that never
    resumed.
    """

    def __init__(self, *, default_pid: int = 0, strict: bool = False) -> None:
        self._default_pid = default_pid
        self._strict = strict
        self._pending: dict[int, tuple[str | None, str, str, bool]] = {}
        self._fdtab: dict[int, dict[int, _Dest]] = {}
        self._comm: dict[int, str] = {}
        self._samples: list[str] = []
        self.lines = 0
        self.events = 0
        self.ignored = 0
        self.info = 0
        self.unparseable = 0
        self.orphaned = 0
        self.dropped_unfinished = 0
        self._handlers: dict[str, _Handler] = {
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

    # -- public API --------------------------------------------------------

    @property
    def stats(self) -> ParseStats:
        return ParseStats(
            lines=self.lines,
            events=self.events,
            ignored=self.ignored,
            info=self.info,
            unparseable=self.unparseable,
            orphaned=self.orphaned,
            dropped_unfinished=self.dropped_unfinished,
            unparseable_samples=tuple(self._samples),
        )

    def parse(self, lines: Iterable[str]) -> Iterator[Event]:
        """Yield events for ``lines``, then account for unfinished calls."""
        out: list[Event] = []
        feed = self._feed
        strict = self._strict
        for line in lines:
            try:
                feed(line, out)
            except Exception:  # never let one odd line stop a run
                if strict:
                    raise
                out.clear()
                self._bad(line)
            if out:
                self.events += len(out)
                yield from out
                out.clear()
        self.finish()

    def feed(self, line: str) -> list[Event]:
        """Events completed by one line (often none)."""
        out: list[Event] = []
        self._feed_safe(line, out)
        self.events += len(out)
        return out

    def finish(self) -> None:
        """Count calls still waiting for their ``resumed`` half as dropped."""
        self.dropped_unfinished += len(self._pending)
        self._pending.clear()

    # -- line dispatch -----------------------------------------------------

    def _feed_safe(self, line: str, out: list[Event]) -> None:
        if self._strict:
            self._feed(line, out)
            return
        mark = len(out)
        try:
            self._feed(line, out)
        except Exception:  # never let one odd line stop a run
            del out[mark:]
            self._bad(line)

    def _bad(self, line: str) -> None:
        self.unparseable += 1
        if len(self._samples) < _MAX_SAMPLES:
            self._samples.append(line.rstrip("\r\n")[:_SAMPLE_CHARS])

    def _feed(self, line: str, out: list[Event]) -> None:
        self.lines += 1
        line = line.rstrip("\r\n")
        # Always matches: every part of the prefix is optional.
        m = _LINE_RE.match(line)
        if m is None:  # pragma: no cover - cannot happen
            return
        bpid, bcomm, cpid, ccomm, ts_s, name = m.groups()
        if cpid is not None:
            pid, comm = int(cpid), ccomm
        elif bpid is not None:
            pid, comm = int(bpid), bcomm
        else:
            pid, comm = self._default_pid, None
        if comm is not None and self._comm.get(pid) != comm:
            _bounded_set(self._comm, pid, comm)
            out.append(Comm(pid, float(ts_s) if ts_s else 0.0, unescape(comm)))
        if name is not None:
            self._on_call(pid, ts_s, name, line, m.end(), line, out)
            return
        body = line[m.end() :].strip()
        if not body:
            if line.strip():
                self._bad(line)
            else:
                self.ignored += 1  # blank
            return
        first = body[0]
        if first == "<":
            self._on_resumed(pid, ts_s, body, line, out)
        elif first == "+":
            self._on_exit_line(pid, ts_s, body, line, out)
        elif body.startswith("--- ") or body.startswith("strace: ") or body.startswith("[ Process"):
            self.info += 1
        else:
            paren = body.find("(")
            if paren > 0 and _NAME_RE.fullmatch(body, 0, paren):
                self._on_call(pid, ts_s, body[:paren], body, paren + 1, line, out)
            else:
                self._bad(line)

    def _on_call(
        self, pid: int, ts_s: str | None, name: str, text: str, start: int, line: str,
        out: list[Event],
    ) -> None:
        """``text[start:]`` follows ``name(``."""
        handler = self._handlers.get(name)
        if handler is None:
            self.ignored += 1
            return
        if (
            name in _WRITE_LIKE
            and not _SOCKFD_RE.match(text, start)
            and text[start : start + 1].isdigit()  # fd printed, and not a socket
        ):
            self.ignored += 1
            return
        if text.endswith("...>"):
            head = start - len(name) - 1
            if text.endswith(_UNFINISHED):
                self._stash(pid, (ts_s, name, text[head : -len(_UNFINISHED)], False))
                return
            pc = _PID_CHANGED_RE.search(text, start)
            if pc is not None:
                self._stash(int(pc.group(1)), (ts_s, name, text[head : pc.start()], True))
                return
        self._complete(pid, ts_s, name, text, start, False, line, out, handler)

    def _stash(self, pid: int, pending: tuple[str | None, str, str, bool]) -> None:
        if pid in self._pending:
            self.dropped_unfinished += 1
        _bounded_set(self._pending, pid, pending)

    def _on_resumed(
        self, pid: int, ts_s: str | None, body: str, line: str, out: list[Event]
    ) -> None:
        m = _RESUMED_RE.match(body)
        if m is None:
            self._bad(line)
            return
        name = m.group(1)
        pending = self._pending.pop(pid, None)
        if pending is not None and pending[1] != name:
            self.dropped_unfinished += 1
            pending = None
        handler = self._handlers.get(name)
        if pending is None:
            if handler is None or name in _WRITE_LIKE:
                self.ignored += 1  # not traced, or a non-socket write we skipped
            else:
                self.orphaned += 1
            return
        if handler is None:
            self.ignored += 1
            return
        start_ts, _, partial, pid_changed = pending
        joined = partial + body[m.end() :]
        if name in _WRITE_LIKE and not _SOCKFD_RE.match(joined, len(name) + 1):
            self.ignored += 1  # split before its fd was printed, and not a socket
            return
        self._complete(
            pid, start_ts, name, joined, len(name) + 1, pid_changed, line, out, handler
        )

    def _complete(
        self,
        pid: int,
        ts_s: str | None,
        name: str,
        body: str,
        start: int,
        pid_changed: bool,
        line: str,
        out: list[Event],
        handler: _Handler,
    ) -> None:
        end = body.rfind(") = ")
        rm = _RET_RE.fullmatch(body, end + 4) if end >= start - 1 else None
        if rm is None:
            end = _args_end(body, start)
            if end < 0 or not body.startswith(" = ", end + 1):
                self._bad(line)
                return
            rm = _RET_RE.fullmatch(body, end + 4)
            if rm is None:
                self._bad(line)
                return
        val, rdeco, errno = rm.groups()
        before = len(out)
        handler(
            pid, float(ts_s) if ts_s else 0.0, name, body[start:end], val, rdeco, errno,
            pid_changed, out,
        )
        if len(out) == before:
            self.ignored += 1

    def _on_exit_line(
        self, pid: int, ts_s: str | None, body: str, line: str, out: list[Event]
    ) -> None:
        m = _EXIT_RE.match(body)
        if m is None:
            if body.startswith("+++ ") and body.endswith(" +++"):
                self.info += 1
            else:
                self._bad(line)
            return
        code, sig, core, superseded = m.groups()
        if superseded is not None:
            # The exec'ing thread's id is gone; its process lives on as `pid`.
            old = int(superseded)
            if old != pid:
                self._fdtab.pop(old, None)
                self._comm.pop(old, None)
            self.info += 1
            return
        if self._pending.pop(pid, None) is not None:
            self.dropped_unfinished += 1
        self._fdtab.pop(pid, None)
        self._comm.pop(pid, None)
        ts = float(ts_s) if ts_s else 0.0
        if code is not None:
            out.append(Exit(pid, ts, code=int(code)))
        else:
            out.append(Exit(pid, ts, signal=sig, core_dumped=core is not None))

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
        resolved = _deco_path(rdeco) if ok else None
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
        family, address, port = _parse_sockaddr(sm.group(1))
        proto = None
        mine: _Endpoint | None = None
        if deco is not None:
            info = _socket_from_deco(deco)
            if info is not None:
                proto, mine = info[0], info[3]
            elif ":[" in deco and not deco.startswith("<socket:["):
                proto = deco[1 : deco.index(":[")]
        ok = val == "0"
        in_progress = errno == "EINPROGRESS"
        local = family not in _INET_FAMILIES
        table = self._fdtab.get(pid)
        if family in _INET_FAMILIES and (ok or in_progress):
            if table is None:
                table = {}
                _bounded_set(self._fdtab, pid, table)
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
        info = _socket_from_deco(deco) if deco is not None else None
        if info is not None:
            proto, family = info[0], info[1]
        elif deco is not None and not deco.startswith("<socket:["):
            return  # a UNIX/netlink socket or a file: not network traffic
        if sockaddr is not None:
            sfam, address, port = _parse_sockaddr(sockaddr)
            if sfam not in _INET_FAMILIES:
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

    def _on_sendto(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        fm = _FD_RE.match(args)
        if fm is None or not val.isdigit():
            return
        rest = _SENDTO_REST_RE.match(args, fm.end())
        sockaddr = rest.group(1) if rest is not None else None
        self._emit_send(pid, ts, int(fm.group(1)), fm.group(2), sockaddr, int(val), name, out)

    def _on_sendmsg(
        self, pid: int, ts: float, name: str, args: str, val: str,
        rdeco: str | None, errno: str | None, pid_changed: bool, out: list[Event],
    ) -> None:
        fm = _FD_RE.match(args)
        if fm is None or not val.isdigit():
            return
        rest = _SENDMSG_REST_RE.match(args, fm.end())
        sockaddr = rest.group(1) if rest is not None else None
        self._emit_send(pid, ts, int(fm.group(1)), fm.group(2), sockaddr, int(val), name, out)

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
                _bounded_set(self._fdtab, pid, table)
            _bounded_set(self._fdtab, child, table)  # one fd table, shared
        elif table:
            _bounded_set(self._fdtab, child, dict(table))  # fork copies fds
        out.append(Fork(pid, child, ts, thread))


def _bounded_set(mapping: dict[int, _V], key: int, value: _V) -> None:
    """Insert, dropping the oldest entries past the per-task cap."""
    mapping[key] = value
    while len(mapping) > _MAX_TASKS:
        del mapping[next(iter(mapping))]


def parse_lines(
    lines: Iterable[str], *, default_pid: int = 0, parser: StraceParser | None = None
) -> Iterator[Event]:
    """Events from an iterable of strace lines (a fresh parser unless given)."""
    p = parser if parser is not None else StraceParser(default_pid=default_pid)
    return p.parse(lines)


def parse_file(
    path: str, *, default_pid: int = 0, parser: StraceParser | None = None
) -> Iterator[Event]:
    """Events from a trace file, read lazily; the file closes when exhausted."""
    p = parser if parser is not None else StraceParser(default_pid=default_pid)

    def gen() -> Iterator[Event]:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:
            yield from p.parse(fh)

    return gen()
