"""Process tree and per-process summary built from parser events.

Why a separate aggregator: the parser yields events and forgets them; this
keeps only counters per process and per destination, so memory grows with
the number of processes and distinct destinations, never with trace length.
Time stamps of activity are kept as merged intervals (a bounded list per
destination whose merge gap doubles when it fills), which is what
:meth:`Summary.who_connected` needs to match a network flow to a process.

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

from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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
from .addresses import normalize_ip
from .parser import ParseStats, StraceParser

__all__ = [
    "Ancestor",
    "ConnectionRow",
    "Destination",
    "ProcessInfo",
    "StoreAccess",
    "StoreReader",
    "Summary",
    "SummaryBuilder",
    "normalize_address",
    "summarize",
    "summarize_file",
    "summarize_lines",
]

_MAX_ANCESTRY = 64
_DEFAULT_GAP = 1.0
_DEFAULT_MAX_INTERVALS = 128
_DEFAULT_MAX_IDLE = 1024
_DEFAULT_MAX_LOCAL_PORTS = 256
_PORT_SPANS = 4


def normalize_address(address: str) -> str:
    """The form addresses take in summaries (IPv4-mapped IPv6 as IPv4)."""
    return normalize_ip(address)


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    return address.startswith("127.") or address == "::1"


# --------------------------------------------------------------------------
# Public, frozen results.


@dataclass(frozen=True, slots=True)
class StoreAccess:
    """A canary store a process touched.  ``via`` is ``"open"`` (it opened
    the database or a side file) or ``"content"`` (it ran the content CLI);
    ``detail`` is the file path or the command line."""

    store: CanaryStore
    first_ts: float
    via: str
    detail: str
    count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "store": self.store,
            "first_ts": self.first_ts,
            "via": self.via,
            "detail": self.detail,
            "count": self.count,
        }


Interval = tuple[float, float, int]
"""(start, end, number of calls) of merged activity."""

Span = tuple[float, float]
"""(first, last) time a local port was seen in use."""

PortUse = tuple[int, tuple[Span, ...]]
"""A local port and the spans it was in use, earliest first."""


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one process connected or sent.  ``local`` means not an IP
    socket (AF_UNIX, netlink); ``loopback`` is 127/8 or ::1.  Connect
    outcomes are split because a non-blocking connect's success is unknown.

    ``local_ports`` are the device-side ports this process used towards the
    destination, each with when (sorted by port; the most recently used ones
    when there were more than the builder keeps, ``local_ports_dropped``
    counting the rest)."""

    address: str | None
    port: int | None
    family: str
    protocols: tuple[str, ...]
    local: bool
    loopback: bool
    connects: int
    connects_ok: int
    connects_in_progress: int
    connects_failed: int
    sends: int
    bytes_sent: int
    first_ts: float
    last_ts: float
    connect_activity: tuple[Interval, ...]
    send_activity: tuple[Interval, ...]
    local_ports: tuple[PortUse, ...] = ()
    local_ports_dropped: int = 0

    def port_spans(self, local_port: int) -> tuple[Span, ...]:
        """When ``local_port`` was in use towards this destination (may be empty)."""
        i = bisect_left(self.local_ports, (local_port, ()))
        if i < len(self.local_ports) and self.local_ports[i][0] == local_port:
            return self.local_ports[i][1]
        return ()

    def to_dict(self) -> dict[str, object]:
        return {
            "address": self.address,
            "port": self.port,
            "family": self.family,
            "protocols": list(self.protocols),
            "local": self.local,
            "loopback": self.loopback,
            "connects": self.connects,
            "connects_ok": self.connects_ok,
            "connects_in_progress": self.connects_in_progress,
            "connects_failed": self.connects_failed,
            "sends": self.sends,
            "bytes_sent": self.bytes_sent,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "connect_activity": [list(i) for i in self.connect_activity],
            "send_activity": [list(i) for i in self.send_activity],
            "local_ports": [[port, [list(sp) for sp in spans]] for port, spans in self.local_ports],
            "local_ports_dropped": self.local_ports_dropped,
        }


@dataclass(frozen=True, slots=True)
class Ancestor:
    """One step up the process tree."""

    pid: int
    name: str
    exe: str | None

    def to_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "name": self.name, "exe": self.exe}


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process (thread group).  ``ancestry`` is nearest parent first.
    ``exe``/``argv`` are from its last successful exec (or inherited from
    the parent at fork when it never exec'd: ``exec_seen`` tells which)."""

    pid: int
    parent: int | None
    exe: str | None
    argv: tuple[str, ...]
    comm: str | None
    exec_seen: bool
    start_ts: float | None
    exit_ts: float | None
    exit_code: int | None
    exit_signal: str | None
    threads: tuple[int, ...]
    ancestry: tuple[Ancestor, ...]
    stores: tuple[StoreAccess, ...]
    failed_store_opens: tuple[StoreAccess, ...]
    destinations: tuple[Destination, ...]
    unattributed_bytes: int

    @property
    def name(self) -> str:
        """A short name for reports: comm, else exe basename, else pid."""
        return _display_name(self.comm, self.exe, self.pid)

    def describe(self) -> str:
        """``"curl (pid 42), child of sh (pid 41) < sysoper (pid 7)"``."""
        text = f"{self.name} (pid {self.pid})"
        if self.ancestry:
            chain = " < ".join(f"{a.name} (pid {a.pid})" for a in self.ancestry)
            text += f", child of {chain}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "name": self.name,
            "parent": self.parent,
            "exe": self.exe,
            "argv": list(self.argv),
            "comm": self.comm,
            "exec_seen": self.exec_seen,
            "start_ts": self.start_ts,
            "exit_ts": self.exit_ts,
            "exit_code": self.exit_code,
            "exit_signal": self.exit_signal,
            "threads": list(self.threads),
            "ancestry": [a.to_dict() for a in self.ancestry],
            "stores": [s.to_dict() for s in self.stores],
            "failed_store_opens": [s.to_dict() for s in self.failed_store_opens],
            "destinations": [d.to_dict() for d in self.destinations],
            "unattributed_bytes": self.unattributed_bytes,
        }


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


def _interval_distance(intervals: tuple[Interval, ...], ts: float) -> float:
    if not intervals:
        return float("inf")
    i = bisect_right(intervals, (ts, float("inf"), 0)) - 1
    best = float("inf")
    for j in (i, i + 1):
        if 0 <= j < len(intervals):
            start, end, _ = intervals[j]
            if start <= ts <= end:
                return 0.0
            best = min(best, abs(ts - start), abs(ts - end))
    return best


def _span_distance(spans: tuple[Span, ...], ts: float) -> float:
    best = float("inf")
    for start, end in spans:  # a handful
        if start <= ts <= end:
            return 0.0
        best = min(best, abs(ts - start), abs(ts - end))
    return best


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
            c_dist = _interval_distance(dest.connect_activity, ts)
            s_dist = _interval_distance(dest.send_activity, ts)
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
        dist = _span_distance(dest.port_spans(local_port), ts)
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


def _display_name(comm: str | None, exe: str | None, pid: int) -> str:
    if comm:
        return comm
    if exe:
        return exe.rsplit("/", 1)[-1] or exe
    return str(pid)


# --------------------------------------------------------------------------
# The mutable aggregator.


class _Activity:
    """Merged time intervals with a bounded count: when full, the merge gap
    doubles and the list is re-merged, so adding stays amortised O(1).
    Typed arrays: 24 bytes per interval instead of ~100 for boxed floats."""

    __slots__ = ("starts", "ends", "counts", "gap", "cap")

    def __init__(self, gap: float, cap: int) -> None:
        self.starts = array("d")
        self.ends = array("d")
        self.counts = array("q")
        self.gap = gap
        self.cap = cap

    def add(self, ts: float, count: int = 1) -> None:
        starts, ends, counts = self.starts, self.ends, self.counts
        if starts and ts >= starts[-1]:
            if ts <= ends[-1] + self.gap:
                if ts > ends[-1]:
                    ends[-1] = ts
                counts[-1] += count
                return
            starts.append(ts)
            ends.append(ts)
            counts.append(count)
        else:
            i = bisect_right(starts, ts) - 1
            if i >= 0 and ts <= ends[i] + self.gap:
                ends[i] = max(ends[i], ts)
                counts[i] += count
            elif i + 1 < len(starts) and starts[i + 1] - self.gap <= ts:
                starts[i + 1] = ts
                counts[i + 1] += count
            else:
                starts.insert(i + 1, ts)
                ends.insert(i + 1, ts)
                counts.insert(i + 1, count)
            self._remerge()
        if len(starts) > self.cap:
            while len(self.starts) > self.cap:
                self.gap *= 2
                self._remerge()

    def _remerge(self) -> None:
        if not self.starts:
            return
        starts = array("d", self.starts[:1])
        ends = array("d", self.ends[:1])
        counts = array("q", self.counts[:1])
        for s, e, c in zip(self.starts[1:], self.ends[1:], self.counts[1:]):
            if s <= ends[-1] + self.gap:
                ends[-1] = max(ends[-1], e)
                counts[-1] += c
            else:
                starts.append(s)
                ends.append(e)
                counts.append(c)
        self.starts, self.ends, self.counts = starts, ends, counts

    def merge_from(self, other: _Activity) -> None:
        for s, e, c in zip(other.starts, other.ends, other.counts):
            self.add(s, c)
            if e > s:
                self.add(e, 0)

    def freeze(self) -> tuple[Interval, ...]:
        return tuple(zip(self.starts, self.ends, self.counts))


def _add_to_spans(spans: list[float], start: float, end: float, gap: float) -> None:
    """Add ``[start, end]`` to a port's flat, sorted ``[start0, end0, start1,
    end1, ...]``: it joins a span it is within ``gap`` of, else is one of its
    own; past ``_PORT_SPANS`` spans the two closest merge (one process reusing
    one port later: coarser is fine, it is still the same process)."""
    if not spans or start > spans[-1] + gap:
        spans += (start, end)
    elif start >= spans[-2]:
        if end > spans[-1]:
            spans[-1] = end
        return
    else:
        pairs = sorted([(spans[i], spans[i + 1]) for i in range(0, len(spans), 2)] + [(start, end)])
        merged: list[list[float]] = []
        for start, end in pairs:
            if merged and start <= merged[-1][1] + gap:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        spans[:] = [x for pair in merged for x in pair]
    while len(spans) > 2 * _PORT_SPANS:
        gaps = [spans[i + 1] - spans[i] for i in range(1, len(spans) - 2, 2)]
        i = 2 * gaps.index(min(gaps)) + 1  # end of the span before the smallest gap
        del spans[i:i + 2]


class _Dest:
    __slots__ = (
        "address", "port", "family", "protocols", "connects", "connects_ok",
        "connects_in_progress", "connects_failed", "sends", "bytes_sent",
        "first_ts", "last_ts", "connect_activity", "send_activity", "ports",
        "ports_dropped", "gap",
    )

    def __init__(self, address: str | None, port: int | None, family: str,
                 ts: float, gap: float, cap: int) -> None:
        self.address = address
        self.port = port
        self.family = family
        self.protocols: set[str] = set()
        self.connects = 0
        self.connects_ok = 0
        self.connects_in_progress = 0
        self.connects_failed = 0
        self.sends = 0
        self.bytes_sent = 0
        self.first_ts = ts
        self.last_ts = ts
        self.connect_activity = _Activity(gap, cap)
        # Sends only break ties in who_connected, so they get a coarser record.
        self.send_activity = _Activity(gap, max(1, cap // 4))
        # local port -> flat spans, least recently used first
        self.ports: dict[int, list[float]] = {}
        self.ports_dropped = 0
        self.gap = gap

    def use_port(self, local_port: int, ts: float, max_ports: int) -> None:
        """The device socket's ``local_port`` was in use at ``ts``."""
        ports = self.ports
        spans = ports.get(local_port)
        if spans is None:
            spans = ports[local_port] = []
            if len(ports) > max_ports:
                del ports[next(iter(ports))]
                self.ports_dropped += 1
        elif next(reversed(ports)) != local_port:
            ports[local_port] = ports.pop(local_port)  # most recently used last
        _add_to_spans(spans, ts, ts, self.gap)

    def touch(self, ts: float) -> None:
        self.first_ts = min(self.first_ts, ts)
        self.last_ts = max(self.last_ts, ts)

    def merge_from(self, other: _Dest) -> None:
        self.protocols |= other.protocols
        self.connects += other.connects
        self.connects_ok += other.connects_ok
        self.connects_in_progress += other.connects_in_progress
        self.connects_failed += other.connects_failed
        self.sends += other.sends
        self.bytes_sent += other.bytes_sent
        self.touch(other.first_ts)
        self.touch(other.last_ts)
        self.connect_activity.merge_from(other.connect_activity)
        self.send_activity.merge_from(other.send_activity)
        self.ports_dropped += other.ports_dropped
        for port, spans in other.ports.items():
            mine = self.ports.get(port)
            if mine is None:
                self.ports[port] = list(spans)
            else:
                for i in range(0, len(spans), 2):
                    _add_to_spans(mine, spans[i], spans[i + 1], self.gap)

    def freeze(self) -> Destination:
        local = self.family not in ("AF_INET", "AF_INET6")
        return Destination(
            address=self.address,
            port=self.port,
            family=self.family,
            protocols=tuple(sorted(self.protocols)),
            local=local,
            loopback=not local and _is_loopback(self.address),
            connects=self.connects,
            connects_ok=self.connects_ok,
            connects_in_progress=self.connects_in_progress,
            connects_failed=self.connects_failed,
            sends=self.sends,
            bytes_sent=self.bytes_sent,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            connect_activity=self.connect_activity.freeze(),
            send_activity=self.send_activity.freeze(),
            local_ports=tuple(
                (port, tuple((spans[i], spans[i + 1]) for i in range(0, len(spans), 2)))
                for port, spans in sorted(self.ports.items())
            ),
            local_ports_dropped=self.ports_dropped,
        )


class _Access:
    __slots__ = ("first_ts", "via", "detail", "count")

    def __init__(self, ts: float, via: str, detail: str) -> None:
        self.first_ts = ts
        self.via = via
        self.detail = detail
        self.count = 0

    def hit(self, ts: float, via: str, detail: str) -> None:
        self.count += 1
        if ts < self.first_ts:
            self.first_ts, self.via, self.detail = ts, via, detail


class _Proc:
    __slots__ = (
        "pid", "parent", "exe", "argv", "comm", "exec_seen", "forked", "start_ts",
        "exit_ts", "exit_code", "exit_signal", "threads", "stores", "failed",
        "dests", "unattributed", "alive", "children",
    )

    def __init__(self, pid: int, ts: float | None) -> None:
        self.pid = pid
        self.parent: _Proc | None = None
        self.exe: str | None = None
        self.argv: tuple[str, ...] = ()
        self.comm: str | None = None
        self.exec_seen = False
        self.forked = False
        self.start_ts = ts
        self.exit_ts: float | None = None
        self.exit_code: int | None = None
        self.exit_signal: str | None = None
        self.threads: set[int] = set()
        self.stores: dict[tuple[CanaryStore, str], _Access] = {}
        self.failed: dict[tuple[CanaryStore, str], _Access] = {}
        self.dests: dict[tuple[str | None, int | None], _Dest] = {}
        self.unattributed = 0
        self.alive = True
        self.children = 0

    def idle(self) -> bool:
        """Nothing to report and nobody below it in the tree."""
        return not (self.stores or self.failed or self.dests or self.unattributed
                    or self.children)


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
        self._idle: deque[_Proc] = deque()
        self._pruned = 0
        self._tasks: dict[int, _Proc] = {}
        self._procs: dict[int, _Proc] = {}  # id(proc) -> proc, insertion = start order

    # -- task bookkeeping ----------------------------------------------------

    def _new(self, pid: int, ts: float | None) -> _Proc:
        proc = _Proc(pid, ts)
        self._procs[id(proc)] = proc
        self._tasks[pid] = proc
        return proc

    def _proc(self, tid: int, ts: float) -> _Proc:
        proc = self._tasks.get(tid)
        if proc is None:
            proc = self._new(tid, ts)
        return proc

    def _absorb(self, target: _Proc, stray: _Proc) -> None:
        """Fold a provisional process (really a thread) into its process."""
        for key, acc in stray.stores.items():
            mine = target.stores.get(key)
            if mine is None:
                target.stores[key] = acc
            else:
                mine.count += acc.count - 1
                mine.hit(acc.first_ts, acc.via, acc.detail)
        for key, acc in stray.failed.items():
            target.failed.setdefault(key, acc)
        for dkey, dest in stray.dests.items():
            mine_d = target.dests.get(dkey)
            if mine_d is None:
                target.dests[dkey] = dest
            else:
                mine_d.merge_from(dest)
        target.unattributed += stray.unattributed
        target.threads |= stray.threads
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

    def _dest(self, proc: _Proc, address: str | None, port: int | None,
              family: str, ts: float) -> _Dest:
        if address is not None and family in ("AF_INET", "AF_INET6"):
            address = normalize_ip(address)
        key = (address, port)
        dest = proc.dests.get(key)
        if dest is None:
            dest = _Dest(address, port, family, ts, self._gap, self._cap)
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
            acc = table[key] = _Access(ev.ts, "open", detail)
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
                    acc = who.stores[key] = _Access(ev.ts, "content", detail)
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
            tuple(self._freeze(p) for p in self._procs.values()), parse_stats, self._pruned
        )

    def _freeze(self, proc: _Proc) -> ProcessInfo:
        ancestry: list[Ancestor] = []
        seen = {id(proc)}
        up = proc.parent
        while up is not None and id(up) not in seen and len(ancestry) < _MAX_ANCESTRY:
            seen.add(id(up))
            ancestry.append(Ancestor(up.pid, _display_name(up.comm, up.exe, up.pid), up.exe))
            up = up.parent

        def accesses(table: dict[tuple[CanaryStore, str], _Access]) -> tuple[StoreAccess, ...]:
            items = [
                StoreAccess(store, acc.first_ts, acc.via, acc.detail, acc.count)
                for (store, _), acc in table.items()
            ]
            items.sort(key=lambda a: a.first_ts)
            return tuple(items)

        dests = sorted((d.freeze() for d in proc.dests.values()), key=lambda d: d.first_ts)
        return ProcessInfo(
            pid=proc.pid,
            parent=proc.parent.pid if proc.parent is not None else None,
            exe=proc.exe,
            argv=proc.argv,
            comm=proc.comm,
            exec_seen=proc.exec_seen,
            start_ts=proc.start_ts,
            exit_ts=proc.exit_ts,
            exit_code=proc.exit_code,
            exit_signal=proc.exit_signal,
            threads=tuple(sorted(proc.threads)),
            ancestry=tuple(ancestry),
            stores=accesses(proc.stores),
            failed_store_opens=accesses(proc.failed),
            destinations=tuple(dests),
            unattributed_bytes=proc.unattributed,
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
