"""Streaming parser for the strace output of :func:`strace_cmd.strace_argv`:
strace's line format in, :mod:`events` out.

Why streaming: a firmware run can write gigabytes of trace, so the parser
reads one line at a time and yields :mod:`events` as soon as a call is
complete.  Its state is bounded by the number of *live* tasks, never by the
trace length: a pending ``<unfinished ...>`` half per task, each task's
last command name, and the decoders' fd table (:mod:`.syscalls`).  All are
capped (oldest dropped).

Why this module only handles lines: what each call means is
:mod:`.syscalls`' job; here are the pid/comm/time prefix, the joining of
split calls, exit and info lines, and the counters.  The expensive general
tokenizer (strings, ``<...>`` fd decorations, nested brackets) runs only
when the cheap "last ``) = ``" split is ambiguous, e.g. a returned fd whose
path itself contains ``) = ``.  Non-socket ``write`` lines, the bulk of any
trace, are rejected after one anchored regex on the fd decoration.

Robustness: a line it cannot make sense of is counted (``stats.unparseable``,
with a few samples kept) and skipped; nothing raises unless ``strict=True``,
which tests use to surface bugs that the lenient mode would hide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .events import Comm, Event, Exit
from .syntax import DECO, STR, unescape
from .syscalls import WRITE_LIKE, Handler, SyscallDecoder, bounded_set

__all__ = [
    "ParseStats",
    "StraceParser",
    "parse_file",
    "parse_lines",
]

# --------------------------------------------------------------------------
# The shape of a line.

_LINE_RE = re.compile(
    r"[ \t]*(?:(?:\[pid[ \t]+(\d+)(?:<((?:[^>\\]|\\.)*)>)?\]"
    r"|(\d+)(?:<((?:[^>\\]|\\.)*)>)?)[ \t]+)?"
    r"(?:(\d+\.\d+)[ \t]+)?"
    r"(?:([A-Za-z_][A-Za-z0-9_]*)\()?",
)
_RET_RE = re.compile(
    r"(-?\d+|0x[0-9a-fA-F]+|\?)"
    r"(" + DECO + r")?"
    r"(?: (E[A-Z0-9_]+))?"
    r"(?: \([^()]*\))?"
    r"(?: <unavailable>)?"
    r"(?: <\d+\.\d+>)?"
)
_TOKEN_RE = re.compile(STR + r"|" + DECO + r'|[()]|[^"<()]+|.', re.S)
_RESUMED_RE = re.compile(r"<\.\.\. ([A-Za-z0-9_]+) resumed>")
_PID_CHANGED_RE = re.compile(r" ?<pid changed to (\d+) \.\.\.>$")
_EXIT_RE = re.compile(
    r"\+\+\+ (?:exited with (-?\d+)|killed by ([A-Z0-9_+-]+)( \(core dumped\))?)"
    r"|\+\+\+ superseded by execve in pid (\d+)"
)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# A write-like call worth a closer look: its fd is an IP socket, or a socket
# strace could not describe (then a recorded connect may still say where).
_SOCKFD_RE = re.compile(r"\d+<(?:TCP|UDP|TCPv6|UDPv6|socket):\[")

_MAX_SAMPLES = 20
_SAMPLE_CHARS = 240

_UNFINISHED = " <unfinished ...>"


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
        self._comm: dict[int, str] = {}
        self._samples: list[str] = []
        self.lines = 0
        self.events = 0
        self.ignored = 0
        self.info = 0
        self.unparseable = 0
        self.orphaned = 0
        self.dropped_unfinished = 0
        self._decoder = SyscallDecoder()
        self._handlers: dict[str, Handler] = self._decoder.handlers()

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
            bounded_set(self._comm, pid, comm)
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
            name in WRITE_LIKE
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
        bounded_set(self._pending, pid, pending)

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
            if handler is None or name in WRITE_LIKE:
                self.ignored += 1  # not traced, or a non-socket write we skipped
            else:
                self.orphaned += 1
            return
        if handler is None:
            self.ignored += 1
            return
        start_ts, _, partial, pid_changed = pending
        joined = partial + body[m.end() :]
        if name in WRITE_LIKE and not _SOCKFD_RE.match(joined, len(name) + 1):
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
        handler: Handler,
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
                self._decoder.forget(old)
                self._comm.pop(old, None)
            self.info += 1
            return
        if self._pending.pop(pid, None) is not None:
            self.dropped_unfinished += 1
        self._decoder.forget(pid)
        self._comm.pop(pid, None)
        ts = float(ts_s) if ts_s else 0.0
        if code is not None:
            out.append(Exit(pid, ts, code=int(code)))
        else:
            out.append(Exit(pid, ts, signal=sig, core_dumped=core is not None))


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
