"""The frozen per-process records a summary is made of.

Why apart from :mod:`.summary`: these are the values every consumer holds
(the verdict, findings and report take a :class:`ProcessInfo` and its
:class:`Destination` rows), while the summary is the collection with its
lookups; and the builder's mutable state freezes into these without
needing the summary.  Each has ``to_dict`` for the report's JSON.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from .activity import Interval, PortUse, Span
from .events import CanaryStore

__all__ = [
    "Ancestor",
    "Destination",
    "ProcessInfo",
    "StoreAccess",
    "display_name",
]


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
        return display_name(self.comm, self.exe, self.pid)

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

def display_name(comm: str | None, exe: str | None, pid: int) -> str:
    """A short name for reports: comm, else exe basename, else pid."""
    if comm:
        return comm
    if exe:
        return exe.rsplit("/", 1)[-1] or exe
    return str(pid)
