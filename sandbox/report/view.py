"""What the HTML report shows, derived from the JSON report alone.

The HTML is a view of ``report.json`` and nothing else (no artifact is
re-read), so anyone can re-render it from a report they were sent.  This
module does the arithmetic -- device hours since the firmware started,
per-destination and per-process roll-ups -- so the rendering modules only
lay out and escape.  Everything here tolerates missing optional keys: the
schema guarantees the required ones, and a view must not crash on the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "Dest", "Mark", "Proc", "TimeAxis", "dest_group", "destinations", "device_hours_origin",
    "leaked_items", "parse_time", "processes", "split_hostport",
]

# A DNS label that carries data rather than naming a host: long, or hex.
_DATA_LABEL = re.compile(r"^(?:.{21,}|[0-9a-fA-F]{12,})$")
_PID_SUFFIX = re.compile(r"\s*\(pid (\d+)\)\s*$")
_DEFAULT_PORT = {"https": 443, "http": 80}


def parse_time(value: object) -> float | None:
    """POSIX seconds of an ISO 8601 device time, or None when absent or unparsable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def device_hours_origin(report: Mapping[str, Any]) -> float | None:
    """Device time (POSIX seconds) that device hour 0 stands for.

    The horizon counts from the moment the firmware started, so hour 0 is
    the ``firmware_started`` event; reports from before that event existed
    have ``horizon`` (device time and ``device_hours`` reached), which gives
    the same origin.  ``boot`` is only the last resort: the twin boots
    before the fast clock is set, so its device time is not on the same
    scale as the rest.
    """
    events = [e for e in report.get("timeline") or () if isinstance(e, Mapping)]
    for ev in events:
        if ev.get("event") == "firmware_started" and (t := parse_time(ev.get("device_time"))) is not None:
            return t
    for ev in events:
        hours = ev.get("device_hours")
        if ev.get("event") == "horizon" and isinstance(hours, (int, float)):
            t = parse_time(ev.get("device_time"))
            if t is not None:
                return t - float(hours) * 3600.0
    for name in ("process_start", "boot"):
        times = [t for ev in events if ev.get("event") == name
                 if (t := parse_time(ev.get("device_time"))) is not None]
        if times:
            return min(times)
    return None


@dataclass(frozen=True)
class TimeAxis:
    """Device times as hours since the firmware started."""

    origin: float | None

    def hours(self, device_time: object) -> float | None:
        t = parse_time(device_time)
        if t is None or self.origin is None:
            return None
        return (t - self.origin) / 3600.0


@dataclass(frozen=True)
class Mark:
    """One thing that happened on a row of the timeline, at a device hour."""

    hours: float
    kind: str  # "read", "leak", "flow", "connect", "tls"
    label: str


@dataclass
class Dest:
    """Everything that went to one destination (a DNS zone for data-carrying names)."""

    host: str
    port: int | None
    ips: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)
    bytes_out: int = 0
    flows: int = 0
    findings: int = 0
    items: set[tuple[str, str]] = field(default_factory=set)
    marks: list[Mark] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


@dataclass
class Proc:
    """One device process that read a canary store, connected out or leaked."""

    pid: int
    name: str
    argv: str
    reads: set[str] = field(default_factory=set)
    findings: int = 0
    marks: list[Mark] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name} (pid {self.pid})"


def split_hostport(value: str) -> tuple[str, int | None]:
    """``host:port`` (or ``[v6]:port``) into host and port; no port -> None."""
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and host:
        return host.strip("[]"), int(port)
    return value, None


def dest_group(host: str) -> str:
    """The name a destination is shown under: labels that carry data (DNS
    exfiltration puts the payload in them) become ``*``, so a thousand
    one-off names are one row, ``*.x.exfil.example.com``."""
    labels = host.split(".")
    if len(labels) < 3:
        return host
    out: list[str] = []
    for label in labels:
        star = _DATA_LABEL.match(label) is not None
        if star and out and out[-1] == "*":
            continue
        out.append("*" if star else label)
    return ".".join(out)


class _Dests:
    def __init__(self) -> None:
        self.by_key: dict[tuple[str, int | None], Dest] = {}

    def get(self, host: str, port: int | None) -> Dest:
        key = (dest_group(host), port)
        dest = self.by_key.get(key)
        if dest is None:
            dest = self.by_key[key] = Dest(key[0], port)
        dest.names.add(host)
        return dest

    def ports_of(self, host: str) -> list[int | None]:
        group = dest_group(host)
        return [port for (h, port) in self.by_key if h == group]


def destinations(report: Mapping[str, Any], axis: TimeAxis) -> list[Dest]:
    """Destinations, most findings first, then by first activity."""
    acc = _Dests()
    network = report.get("network") or {}
    for value in network.get("destinations") or ():
        acc.get(*split_hostport(str(value)))
    for value, nbytes in (network.get("bytes_out_per_destination") or {}).items():
        acc.get(*split_hostport(str(value))).bytes_out += int(nbytes or 0)
    for f in report.get("findings") or ():
        d = f.get("destination") or {}
        host = d.get("host") or d.get("ip") or "?"
        dest = acc.get(str(host), _int_or_none(d.get("port")))
        if d.get("ip"):
            dest.ips.add(str(d["ip"]))
        dest.channels.add(str(f.get("channel", "")))
        dest.findings += 1
        canary = f.get("canary") or {}
        dest.items.add((str(canary.get("kind", "")), str(canary.get("item_id", ""))))
        if (h := axis.hours(f.get("device_time"))) is not None:
            dest.marks.append(Mark(h, "leak", _leak_label(f)))
    for ev in report.get("timeline") or ():
        if ev.get("event") != "network_flow" or not ev.get("host"):
            continue
        host = str(ev["host"])
        dest = acc.get(host, _flow_port(acc.ports_of(host), str(ev.get("scheme", ""))))
        dest.flows += 1
        if ev.get("scheme"):
            dest.channels.add(str(ev["scheme"]))
        if (h := axis.hours(ev.get("device_time"))) is not None:
            method, path = str(ev.get("method", "")), str(ev.get("path", ""))
            dest.marks.append(Mark(h, "flow", f"{method} {path}".strip() or "flow"))
    for t in network.get("tls_failures") or ():
        ip, port = split_hostport(str(t.get("orig_dst") or "?"))
        dest = acc.get(str(t.get("sni") or ip), port)
        if t.get("orig_dst"):
            dest.ips.add(ip)
        if (h := axis.hours(t.get("device_time"))) is not None:
            dest.marks.append(Mark(h, "tls", f"TLS handshake failed: {t.get('what') or t.get('error', '')}"))
    return sorted(acc.by_key.values(), key=lambda d: (-d.findings, _first(d.marks), d.label))


def _flow_port(known: list[int | None], scheme: str) -> int | None:
    """The port of a flow event (the timeline has the scheme, not the port):
    the destination's only port, else the scheme's default."""
    ports = [p for p in known if p is not None]
    if len(ports) == 1:
        return ports[0]
    default = _DEFAULT_PORT.get(scheme)
    return default if default is not None else (ports[0] if ports else None)


def _first(marks: Sequence[Mark]) -> float:
    return min((m.hours for m in marks), default=float("inf"))


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _leak_label(f: Mapping[str, Any]) -> str:
    c = f.get("canary") or {}
    return f"{c.get('kind', '?')} {c.get('item_id', '?')} {c.get('field', '?')}"


def _proc_from_text(text: str, pid: object) -> tuple[int | None, str, str]:
    """(pid, name, argv) from a summary's ``"argv... (pid N)"``."""
    m = _PID_SUFFIX.search(text)
    argv = text[: m.start()] if m else text
    pid_value = _int_or_none(pid)
    if pid_value is None and m:
        pid_value = int(m.group(1))
    first = argv.split(" ", 1)[0]
    return pid_value, first.rsplit("/", 1)[-1] or "?", argv


def processes(report: Mapping[str, Any], axis: TimeAxis) -> list[Proc]:
    """Processes in order of first activity."""
    procs: dict[int, Proc] = {}

    def get(pid: int, name: str, argv: str) -> Proc:
        proc = procs.get(pid)
        if proc is None:
            proc = procs[pid] = Proc(pid, name, argv)
        return proc

    for f in report.get("findings") or ():
        p = f.get("process")
        if not isinstance(p, Mapping) or _int_or_none(p.get("pid")) is None:
            continue
        argv = " ".join(str(a) for a in p.get("argv") or ()) or str(p.get("exe") or p.get("name") or "")
        proc = get(int(p["pid"]), str(p.get("name") or "?"), argv)
        proc.findings += 1
        if (h := axis.hours(f.get("device_time"))) is not None:
            proc.marks.append(Mark(h, "leak", _leak_label(f)))
    sys = report.get("syscalls") or {}
    for r in sys.get("store_readers") or ():
        pid, name, argv = _proc_from_text(str(r.get("process", "")), r.get("pid"))
        if pid is None:
            continue
        proc = get(pid, name, argv)
        proc.reads.add(str(r.get("store", "?")))
        if (h := axis.hours(r.get("device_time"))) is not None:
            proc.marks.append(Mark(h, "read", f"read the {r.get('store', '?')} store"))
    for c in sys.get("connections") or ():
        pid, name, argv = _proc_from_text(str(c.get("process", "")), c.get("pid"))
        if pid is None:
            continue
        proc = get(pid, name, argv)
        if (h := axis.hours(c.get("device_time"))) is not None:
            proc.marks.append(Mark(h, "connect", f"connect {c.get('address', '?')}:{c.get('port', '?')}, "
                                                 f"{c.get('bytes_sent', 0)} bytes sent"))
    return sorted(procs.values(), key=lambda p: (_first(p.marks), p.pid))


def leaked_items(findings: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Distinct leaked item ids per canary kind."""
    out: dict[str, set[str]] = {}
    for f in findings:
        c = f.get("canary") or {}
        out.setdefault(str(c.get("kind", "?")), set()).add(str(c.get("item_id", "?")))
    return out
