"""The builder's mutable per-process and per-destination state.

Why mutable records apart from the frozen ones: the builder sees millions
of events, so it counts in place in slotted objects (a store's hits, a
destination's connects, bytes, activity and local ports, a process's
image and tree links) and only freezes them into :mod:`.processes` records
when a summary is asked for.  Each keeps counters, never events, so memory
grows with processes and distinct destinations, not with trace length.
"""

from __future__ import annotations

from .activity import Activity, add_to_spans
from .addresses import is_loopback
from .events import CanaryStore
from .processes import Ancestor, Destination, ProcessInfo, StoreAccess, display_name

__all__ = ["MAX_ANCESTRY", "DestState", "ProcState", "StoreHits"]

MAX_ANCESTRY = 64
"""Ancestors listed per process (a cycle or a very deep tree stops there)."""


class StoreHits:
    """How often a store was touched one way, and the earliest touch."""

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


class DestState:
    """Counters, activity and local ports of one (address, port) of one process."""

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
        self.connect_activity = Activity(gap, cap)
        # Sends only break ties in who_connected, so they get a coarser record.
        self.send_activity = Activity(gap, max(1, cap // 4))
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
        add_to_spans(spans, ts, ts, self.gap)

    def touch(self, ts: float) -> None:
        self.first_ts = min(self.first_ts, ts)
        self.last_ts = max(self.last_ts, ts)

    def merge_from(self, other: DestState) -> None:
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
                    add_to_spans(mine, spans[i], spans[i + 1], self.gap)

    def freeze(self) -> Destination:
        local = self.family not in ("AF_INET", "AF_INET6")
        return Destination(
            address=self.address,
            port=self.port,
            family=self.family,
            protocols=tuple(sorted(self.protocols)),
            local=local,
            loopback=not local and is_loopback(self.address),
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


class ProcState:
    """One process (thread group) being built: image, tree links, findings."""

    __slots__ = (
        "pid", "parent", "exe", "argv", "comm", "exec_seen", "forked", "start_ts",
        "exit_ts", "exit_code", "exit_signal", "threads", "stores", "failed",
        "dests", "unattributed", "alive", "children",
    )

    def __init__(self, pid: int, ts: float | None) -> None:
        self.pid = pid
        self.parent: ProcState | None = None
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
        self.stores: dict[tuple[CanaryStore, str], StoreHits] = {}
        self.failed: dict[tuple[CanaryStore, str], StoreHits] = {}
        self.dests: dict[tuple[str | None, int | None], DestState] = {}
        self.unattributed = 0
        self.alive = True
        self.children = 0

    def idle(self) -> bool:
        """Nothing to report and nobody below it in the tree."""
        return not (self.stores or self.failed or self.dests or self.unattributed
                    or self.children)

    def absorb(self, stray: ProcState) -> None:
        """Take over the findings and threads of ``stray``, a provisional
        process that turned out to be one of this process's threads."""
        for key, acc in stray.stores.items():
            mine = self.stores.get(key)
            if mine is None:
                self.stores[key] = acc
            else:
                mine.count += acc.count - 1
                mine.hit(acc.first_ts, acc.via, acc.detail)
        for key, acc in stray.failed.items():
            self.failed.setdefault(key, acc)
        for dkey, dest in stray.dests.items():
            mine_d = self.dests.get(dkey)
            if mine_d is None:
                self.dests[dkey] = dest
            else:
                mine_d.merge_from(dest)
        self.unattributed += stray.unattributed
        self.threads |= stray.threads

    def freeze(self) -> ProcessInfo:
        """The frozen record, with its ancestry as of now."""
        ancestry: list[Ancestor] = []
        seen = {id(self)}
        up = self.parent
        while up is not None and id(up) not in seen and len(ancestry) < MAX_ANCESTRY:
            seen.add(id(up))
            ancestry.append(Ancestor(up.pid, display_name(up.comm, up.exe, up.pid), up.exe))
            up = up.parent

        def accesses(table: dict[tuple[CanaryStore, str], StoreHits]) -> tuple[StoreAccess, ...]:
            items = [
                StoreAccess(store, acc.first_ts, acc.via, acc.detail, acc.count)
                for (store, _), acc in table.items()
            ]
            items.sort(key=lambda a: a.first_ts)
            return tuple(items)

        dests = sorted((d.freeze() for d in self.dests.values()), key=lambda d: d.first_ts)
        return ProcessInfo(
            pid=self.pid,
            parent=self.parent.pid if self.parent is not None else None,
            exe=self.exe,
            argv=self.argv,
            comm=self.comm,
            exec_seen=self.exec_seen,
            start_ts=self.start_ts,
            exit_ts=self.exit_ts,
            exit_code=self.exit_code,
            exit_signal=self.exit_signal,
            threads=tuple(sorted(self.threads)),
            ancestry=tuple(ancestry),
            stores=accesses(self.stores),
            failed_store_opens=accesses(self.failed),
            destinations=tuple(dests),
            unattributed_bytes=self.unattributed,
        )
