"""Process tree and per-process summary built from parser events: the
builder that folds events into per-process state, and the frozen summary
with the answers the leak detector asks of it.

Why a separate aggregator: the parser yields events and forgets them; this
keeps only counters per process and per destination (:mod:`.state`), so
memory grows with the number of processes and distinct destinations, never
with trace length.  Time stamps of activity are kept as merged intervals
(:mod:`.activity`), which is what :meth:`Summary.who_connected` needs to
match a network flow to a process.  The records a summary hands out are
in :mod:`.processes`.

Why local ports too: on the twin every name resolves to the one fakenet
address, so all HTTPS of the device goes to the same ``ip:443``, and two
processes woken by one clock jump connect there at the same moment.  The
device socket's own port (from strace's ``-yy`` decoration, the client port
of the capture and the fakenet logs) tells them apart.  Per destination the
ports seen are kept with when each was in use (a few spans per port, the
most recently used ``max_local_ports`` ports; older ones are dropped and
counted), and ``who_connected(..., local_port=)`` prefers an exact port
match, closest in time since ports are reused over hours.

Why threads are resolved here and not in the parser: strace may print a new
thread's first syscall before the ``clone(...) = tid`` line of its creator.
The builder then creates a provisional process for the tid and folds it into
the real process when ``Fork(thread=True)`` arrives.

Nothing is inherited for the leak report: a child's stores and connections
are its own.  A forked child that never execs does start with its parent's
exe/argv/comm (it *is* running that program), and every process exposes its
ancestry so a report can say "child of sysoper".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .activity import interval_distance, span_distance
from .addresses import normalize_ip
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
from .parser import ParseStats, StraceParser
from .processes import Destination, ProcessInfo, StoreAccess
from .state import DestState, ProcState, StoreHits

__all__ = [
    "ConnectionRow",
    "StoreReader",
    "Summary",
    "SummaryBuilder",
    "normalize_address",
    "summarize",
    "summarize_file",
    "summarize_lines",
]

_DEFAULT_GAP = 1.0
_DEFAULT_MAX_INTERVALS = 128
_DEFAULT_MAX_IDLE = 1024
_DEFAULT_MAX_LOCAL_PORTS = 256


def normalize_address(address: str) -> str:
    """The form addresses take in summaries (IPv4-mapped IPv6 as IPv4)."""
    return normalize_ip(address)


# --------------------------------------------------------------------------
# The frozen summary and its answers.


class StoreReader(NamedTuple):
    """Answer row: which process read which store, first when."""

    process: ProcessInfo
    store: CanaryStore
    first_ts: float


class ConnectionRow(NamedTuple):
    """Answer row: which process reached which destination, and bytes sent."""

    process: ProcessInfo
    address: str | None
    port: int | None
    first_ts: float
    bytes_sent: int


@dataclass(frozen=True)
class Summary:
    """What the trace says, per process, plus the two answers the leak
    detector needs and a flow-to-process lookup."""

    processes: tuple[ProcessInfo, ...]
    parse_stats: ParseStats | None = None
    pruned_processes: int = 0
    _by_address: dict[str, tuple[tuple[ProcessInfo, Destination], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[str, list[tuple[ProcessInfo, Destination]]] = {}
        for proc in self.processes:
            for dest in proc.destinations:
                if dest.address is not None:
                    index.setdefault(dest.address, []).append((proc, dest))
        object.__setattr__(self, "_by_address", {k: tuple(v) for k, v in index.items()})

    def process(self, pid: int) -> ProcessInfo | None:
        """The latest process with this pid, or the process owning thread ``pid``."""
        for proc in reversed(self.processes):
            if proc.pid == pid:
                return proc
        for proc in reversed(self.processes):
            if pid in proc.threads:
                return proc
        return None

    def store_readers(self) -> list[StoreReader]:
        """(process, store, first_ts) for every store a process touched,
        by open or by the content CLI, earliest first."""
        rows = [
            StoreReader(proc, access.store, access.first_ts)
            for proc in self.processes
            for access in _first_per_store(proc.stores)
        ]
        rows.sort(key=lambda r: (r.first_ts, r.process.pid))
        return rows

    def connections(self, *, include_local: bool = False) -> list[ConnectionRow]:
        """(process, address, port, first_ts, bytes_sent) per destination,
        earliest first.  Non-IP (AF_UNIX, netlink) ones only on request."""
        rows = [
            ConnectionRow(proc, dest.address, dest.port, dest.first_ts, dest.bytes_sent)
            for proc in self.processes
            for dest in proc.destinations
            if include_local or not dest.local
        ]
        rows.sort(key=lambda r: (r.first_ts, r.process.pid))
        return rows

    def who_connected(
        self, address: str, port: int | None, ts: float, window: float = 2.0,
        *, local_port: int | None = None,
    ) -> ProcessInfo | None:
        """The process that most plausibly opened a flow to ``address:port``
        seen at ``ts`` (host epoch seconds), or None.

        ``local_port`` is the device side's port of the flow (the client port
        in the capture or the fakenet logs), when known.  A process whose
        socket to ``address:port`` used that very port within ``window``
        seconds of ``ts`` wins outright, the closest in time first (ports are
        reused).  Otherwise, or without ``local_port``, time decides: a
        connect within ``window`` seconds beats mere sending (UDP sendto,
        writes on a long-lived connection); then the smaller time distance
        wins, then more connects, then the earlier-started process.  Time
        also decides when the port is not in the summary (a socket whose
        sends strace could not decorate, or a port dropped past the bound).
        ``port=None`` matches any port.
        """
        candidates = self._candidates(address, port)
        if local_port is not None:
            owner = _port_owner(candidates, local_port, ts, window)
            if owner is not None:
                return owner
        best: tuple[int, float, int, float, int] | None = None
        best_proc: ProcessInfo | None = None
        for proc, dest in candidates:
            c_dist = interval_distance(dest.connect_activity, ts)
            s_dist = interval_distance(dest.send_activity, ts)
            if c_dist <= window:
                tier, dist = 0, c_dist
            elif s_dist <= window:
                tier, dist = 1, s_dist
            else:
                continue
            rank = (
                tier,
                dist,
                -dest.connects,
                proc.start_ts if proc.start_ts is not None else float("inf"),
                proc.pid,
            )
            if best is None or rank < best:
                best, best_proc = rank, proc
        return best_proc

    def who_owned(
        self, address: str, port: int | None, local_port: int, ts: float, window: float = 2.0
    ) -> ProcessInfo | None:
        """The process whose socket to ``address:port`` used the device-side
        ``local_port`` within ``window`` seconds of ``ts`` (the closest in
        time), or None: the exact half of :meth:`who_connected`, for callers
        that try several times (connect time, data time) before falling
        back to time alone."""
        return _port_owner(self._candidates(address, port), local_port, ts, window)

    def _candidates(self, address: str, port: int | None) -> tuple[tuple[ProcessInfo, Destination], ...]:
        candidates = self._by_address.get(normalize_address(address), ())
        if port is not None:
            candidates = tuple((p, d) for p, d in candidates if d.port == port)
        return candidates

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-serialisable form (lists, dicts, str, int, float, None)."""
        return {
            "processes": [p.to_dict() for p in self.processes],
            "store_readers": [
                {"pid": r.process.pid, "name": r.process.name, "store": r.store,
                 "first_ts": r.first_ts, "process": r.process.describe()}
                for r in self.store_readers()
            ],
            "connections": [
                {"pid": r.process.pid, "name": r.process.name, "address": r.address,
                 "port": r.port, "first_ts": r.first_ts, "bytes_sent": r.bytes_sent,
                 "process": r.process.describe()}
                for r in self.connections()
            ],
            "parse_stats": self.parse_stats.to_dict() if self.parse_stats else None,
            "pruned_processes": self.pruned_processes,
        }

def _port_owner(candidates: Iterable[tuple[ProcessInfo, Destination]], local_port: int,
                ts: float, window: float) -> ProcessInfo | None:
    """The process whose use of ``local_port`` is within ``window`` of ``ts``
    and closest to it (then more connects, earlier start, lower pid)."""
    best: tuple[float, int, float, int] | None = None
    best_proc: ProcessInfo | None = None
    for proc, dest in candidates:
        dist = span_distance(dest.port_spans(local_port), ts)
        if dist > window:
            continue
        rank = (dist, -dest.connects,
                proc.start_ts if proc.start_ts is not None else float("inf"), proc.pid)
        if best is None or rank < best:
            best, best_proc = rank, proc
    return best_proc


def _first_per_store(accesses: tuple[StoreAccess, ...]) -> list[StoreAccess]:
    first: dict[CanaryStore, StoreAccess] = {}
    for access in accesses:
        seen = first.get(access.store)
        if seen is None or access.first_ts < seen.first_ts:
            first[access.store] = access
    return list(first.values())


# --------------------------------------------------------------------------
# The aggregator.


class SummaryBuilder:
    """Feed events with :meth:`add` (or :meth:`add_all`), then :meth:`build`.

    ``activity_gap`` (seconds) is how close two calls to one destination must
    be to share an activity interval; ``max_intervals`` bounds the connect
    intervals kept per destination (a quarter of that for sends).  ``max_idle_processes`` bounds how many
    exited, childless processes that touched no store and no socket are
    kept (oldest dropped first, counted in ``Summary.pruned_processes``), so
    a service forking helpers for hours cannot grow memory without limit.
    ``max_local_ports`` bounds the device-side ports kept per destination
    (least recently used dropped first, counted in
    ``Destination.local_ports_dropped``; each keeps at most a few spans):
    about 200 bytes a port, so at most ~50 KiB per process and destination
    however many connections it opens.  A dropped port is no loss unless a
    flow on it is attributed later, and then time still decides.
    """

    def __init__(
        self,
        *,
        activity_gap: float = _DEFAULT_GAP,
        max_intervals: int = _DEFAULT_MAX_INTERVALS,
        max_idle_processes: int = _DEFAULT_MAX_IDLE,
        max_local_ports: int = _DEFAULT_MAX_LOCAL_PORTS,
    ) -> None:
        if activity_gap <= 0 or max_intervals < 1 or max_idle_processes < 0 or max_local_ports < 1:
            raise ValueError(
                "activity_gap must be > 0, max_intervals >= 1, max_idle_processes >= 0, "
                "max_local_ports >= 1"
            )
        self._max_ports = max_local_ports
        self._gap = activity_gap
        self._cap = max_intervals
        self._max_idle = max_idle_processes
        self._idle: deque[ProcState] = deque()
        self._pruned = 0
        self._tasks: dict[int, ProcState] = {}
        self._procs: dict[int, ProcState] = {}  # id(proc) -> proc, insertion = start order

    # -- task bookkeeping ----------------------------------------------------

    def _new(self, pid: int, ts: float | None) -> ProcState:
        proc = ProcState(pid, ts)
        self._procs[id(proc)] = proc
        self._tasks[pid] = proc
        return proc

    def _proc(self, tid: int, ts: float) -> ProcState:
        proc = self._tasks.get(tid)
        if proc is None:
            proc = self._new(tid, ts)
        return proc

    def _absorb(self, target: ProcState, stray: ProcState) -> None:
        """Fold a provisional process (really a thread) into its process."""
        target.absorb(stray)
        for tid, proc in list(self._tasks.items()):
            if proc is stray:
                self._tasks[tid] = target
        for proc in self._procs.values():
            if proc.parent is stray:
                proc.parent = target
        del self._procs[id(stray)]

    # -- events ----------------------------------------------------------------

    def add(self, event: Event) -> None:
        """Account one event."""
        if isinstance(event, Send):
            self._on_send(event)
        elif isinstance(event, Open):
            self._on_open(event)
        elif isinstance(event, Connect):
            self._on_connect(event)
        elif isinstance(event, Exec):
            self._on_exec(event)
        elif isinstance(event, Fork):
            self._on_fork(event)
        elif isinstance(event, Exit):
            self._on_exit(event)
        elif isinstance(event, Comm):
            self._on_comm(event)

    def add_all(self, events: Iterable[Event]) -> SummaryBuilder:
        """Account every event; returns self for chaining."""
        dispatch: dict[type, Callable[[Any], None]] = {
            Send: self._on_send,
            Open: self._on_open,
            Connect: self._on_connect,
            Exec: self._on_exec,
            Fork: self._on_fork,
            Exit: self._on_exit,
            Comm: self._on_comm,
        }
        for event in events:
            dispatch[type(event)](event)
        return self

    def _on_comm(self, ev: Comm) -> None:
        proc = self._proc(ev.pid, ev.ts)
        if ev.pid == proc.pid:
            proc.comm = ev.comm

    def _dest(self, proc: ProcState, address: str | None, port: int | None,
              family: str, ts: float) -> DestState:
        if address is not None and family in ("AF_INET", "AF_INET6"):
            address = normalize_ip(address)
        key = (address, port)
        dest = proc.dests.get(key)
        if dest is None:
            dest = DestState(address, port, family, ts, self._gap, self._cap)
            proc.dests[key] = dest
        else:
            dest.touch(ts)
        return dest

    def _on_send(self, ev: Send) -> None:
        proc = self._proc(ev.pid, ev.ts)
        if ev.address is None:
            proc.unattributed += ev.nbytes
            return
        dest = self._dest(proc, ev.address, ev.port, ev.family or "AF_UNKNOWN", ev.ts)
        dest.sends += 1
        dest.bytes_sent += ev.nbytes
        if ev.protocol:
            dest.protocols.add(ev.protocol)
        dest.send_activity.add(ev.ts)
        if ev.local_port is not None:
            dest.use_port(ev.local_port, ev.ts, self._max_ports)

    def _on_connect(self, ev: Connect) -> None:
        proc = self._proc(ev.pid, ev.ts)
        dest = self._dest(proc, ev.address, ev.port, ev.family, ev.ts)
        dest.connects += 1
        if ev.ok:
            dest.connects_ok += 1
        elif ev.in_progress:
            dest.connects_in_progress += 1
        else:
            dest.connects_failed += 1
        if ev.protocol:
            dest.protocols.add(ev.protocol)
        dest.connect_activity.add(ev.ts)
        if ev.local_port is not None and (ev.ok or ev.in_progress):
            dest.use_port(ev.local_port, ev.ts, self._max_ports)

    def _on_open(self, ev: Open) -> None:
        if ev.canary_store is None:
            return
        proc = self._proc(ev.pid, ev.ts)
        table = proc.stores if ev.ok else proc.failed
        detail = ev.resolved or ev.path
        key = (ev.canary_store, "open")
        acc = table.get(key)
        if acc is None:
            acc = table[key] = StoreHits(ev.ts, "open", detail)
        acc.hit(ev.ts, "open", detail)

    def _on_exec(self, ev: Exec) -> None:
        proc = self._proc(ev.pid, ev.ts)
        if not ev.ok:
            return
        proc.exe = ev.path
        proc.argv = ev.argv
        proc.exec_seen = True
        if ev.content_command and ev.canary_store is not None:
            detail = " ".join(ev.argv) if ev.argv else ev.path
            key = (ev.canary_store, "content")
            # The process that ran `content query` gets the rows (a pipe, its
            # stdout): it reads the store as surely as an open() would.
            for who in (proc, proc.parent):
                if who is None:
                    continue
                acc = who.stores.get(key)
                if acc is None:
                    acc = who.stores[key] = StoreHits(ev.ts, "content", detail)
                acc.hit(ev.ts, "content", detail)

    def _on_fork(self, ev: Fork) -> None:
        parent = self._proc(ev.parent, ev.ts)
        existing = self._tasks.get(ev.child)
        if ev.thread:
            if existing is not None and existing is not parent:
                if not existing.forked and existing.pid == ev.child and existing.alive:
                    self._absorb(parent, existing)  # its syscalls beat the clone line
            self._tasks[ev.child] = parent
            parent.threads.add(ev.child)
            return
        if (
            existing is not None
            and existing.pid == ev.child
            and not existing.forked
            and existing.alive
            and existing.parent is None
            and existing is not parent
        ):
            child = existing  # seen before its fork line: adopt it
        else:
            child = self._new(ev.child, ev.ts)
        child.forked = True
        child.parent = parent
        parent.children += 1
        if child.start_ts is None or ev.ts < child.start_ts:
            child.start_ts = ev.ts
        if not child.exec_seen:
            child.exe = child.exe or parent.exe
            child.argv = child.argv or parent.argv
        child.comm = child.comm or parent.comm

    def _on_exit(self, ev: Exit) -> None:
        proc = self._tasks.get(ev.pid)
        if proc is None:
            return
        del self._tasks[ev.pid]
        if ev.pid != proc.pid:
            return  # a thread ended; the process goes on
        proc.alive = False
        proc.exit_ts = ev.ts
        proc.exit_code = ev.code
        proc.exit_signal = ev.signal
        if proc.idle():
            self._idle.append(proc)
            while len(self._idle) > self._max_idle:
                old = self._idle.popleft()
                if old.idle() and id(old) in self._procs:
                    del self._procs[id(old)]  # ancestry via children stays intact
                    self._pruned += 1

    # -- result ------------------------------------------------------------------

    def build(self, parse_stats: ParseStats | None = None) -> Summary:
        """Freeze what has been seen so far (the builder stays usable)."""
        return Summary(
            tuple(p.freeze() for p in self._procs.values()), parse_stats, self._pruned
        )


def summarize(events: Iterable[Event], parse_stats: ParseStats | None = None) -> Summary:
    """Summary of an event stream."""
    return SummaryBuilder().add_all(events).build(parse_stats)


def summarize_lines(lines: Iterable[str], *, default_pid: int = 0) -> Summary:
    """Parse strace lines and summarise them, keeping the parse counters."""
    parser = StraceParser(default_pid=default_pid)
    builder = SummaryBuilder().add_all(parser.parse(lines))
    return builder.build(parser.stats)


def summarize_file(path: str, *, default_pid: int = 0) -> Summary:
    """Parse a trace file and summarise it, streaming."""
    with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:
        return summarize_lines(fh, default_pid=default_pid)
