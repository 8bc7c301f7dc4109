"""From scanner hits to findings: which planted item left, where, when, how.

Why a layer above the scanner: the scanner answers "is this form in these
bytes"; a report must answer "which item leaked to whom", once per leak.

Matching rules (post-filter on scanner hits)
-------------------------------------------
* Digits-only number forms (``digits``, ``cc_digits``, ``no_country_code``)
  count only with a non-digit (or the edge of the decoded region) on both
  sides, as ``sandbox.canary.forms`` asks: ``5405550123`` inside
  ``155405550123999`` is another number.  For clear-text hits the whole
  payload is searched for a bounded occurrence (the scanner reports one
  occurrence per form and chain); for hits inside a decoded layer the
  scanner's excerpt (context around the match in that layer) is checked, so
  a layer whose *first* occurrence is unbounded hides a later bounded one
  (an accepted blind spot: it needs two copies of one number, one glued to
  other digits, in the same decoded layer).  Hashed forms need no boundary:
  a digest is the proof.

Deduplication
-------------
One leak shows up many times: in the pcap TCP stream *and* the decrypted
flow, as the e164 *and* the cc_digits form of the same number, as the full
SMS body *and* its token.  Matches are grouped by

    (item id, field, channel family, destination) -> leak events

* channel family: ``dns``; ``udp``; ``stream`` for http, https and raw tcp
  (the same connection may be labelled differently by the pcap and the
  fakenet);
* destination: ``(ip, port)``, except for DNS where it is the queried
  name's last two labels (the exfiltration domain; resolver addresses
  differ between the pcap and the DNS log);
* one leak event: within such a group, two matches belong to the same
  finding when they are linked, directly or through other matches, by

  - *device time*: consecutive matches at most ``window`` device seconds
    apart (default 60), so an upload repeated an hour later is a second
    finding.  Device time, not host time, because the twin's clock runs
    thousands of times faster than the host's: 47 device hours can be six
    host seconds;
  - *the same send seen by two layers*: a match in one artifact and a
    match in another artifact (pcap vs flows, pcap vs the DNS/TCP/UDP
    logs) from the same device socket that are each other's nearest in
    time and at most ``jitter`` host seconds apart (default 5).  Times are
    data times, except against the raw TCP log, which only knows when the
    connection was accepted: there connect times are compared.  This
    absorbs the host-side delay between the capture and the fakenet's
    logs, which the clock rate would otherwise blow up to device hours;
    "each other's nearest" keeps two uploads on one kept-alive connection
    apart (the scanner reports one copy per form per buffer, so a stream
    carrying both has one match).

Different items are always different findings (a number shared by a contact
and an SMS yields one finding for each: the report says every item it may
have come from), and so are different fields of one item (an SMS's address
and its body are two pieces of data).  A digest of an item and a copy of
its value are different findings too (``hashed`` is part of the group key):
a digest discloses a fingerprint, the copy the value itself.  Folding one
into the other made a finding's encoding depend on the canary values --
a contact's MD5 folded into the base64 of the same number only when an SMS
happened to come from that contact (the kitchen sink sends both), so the
same firmware reported different leak styles with different canaries.
Within a finding, evidence from one place (artifact, locator, encoding)
keeps only the longest form: a body hit makes its token and window hits
redundant there.

The primary evidence -- which gives the finding its canary form, encoding,
channel and destination -- is chosen by: decrypted flow before pcap before
the fakenet's raw logs (for https the flow is the only clear view), then
the shortest decode chain, then the longest form, then the earliest (a
finding's evidence is all hashed or none of it is, see above, so hashing
does not rank).  The destination host is the best-sourced name any
evidence has (``http-host``/``sni`` before ``flow``/``query`` before the
``dns`` guess).  ``process`` comes from the syscall summary's
``who_owned`` for the primary evidence's destination and device-side port
(the payload's client port: the local port of the device socket, which
strace's decoration shows too) at its connect time, then its data time,
then the other evidence's; failing that, from ``who_connected`` (time
alone) at those times; else null.  The port is what tells two processes
apart that reached the one fakenet address at the same moment; without it
(or when the trace never saw that port) the closest in time wins.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandbox.canary.forms import build_forms
from sandbox.canary.model import CanaryForm, CanarySet
from sandbox.clock.mapping import ClockMapping
from sandbox.detect.scan import Hit, Needle, ScanError, Scanner
from sandbox.detect.payloads import Payload
from sandbox.network.logs import split_hostport

if TYPE_CHECKING:
    from sandbox.monitor import ProcessInfo, Summary

__all__ = ["Detector", "Endpoint", "Evidence", "Finding", "Match", "ProcessRef", "ScanHealth", "detect",
           "device_port"]

_HASHED = re.compile(r"^(?:md5|sha1|sha256)-")
_DIGITS = frozenset("0123456789")
_SOURCE_RANK = {"flows": 0, "mitm_errors": 0, "pcap": 1}
_HOST_RANK = {"http-host": 0, "sni": 0, "flow": 1, "query": 1, "dns": 2}
_MAX_ATTRIBUTION_TRIES = 8
_MAX_ERROR_SAMPLES = 5


@dataclass
class ScanHealth:
    """How completely the payloads were scanned (a mutable accumulator).

    Why: a scan that failed or ran out of decoding budget saw less than the
    payload held; the report must say so, and a ``clean`` verdict must not
    rest on it.  ``failed`` scans raised :class:`ScanError` (their partial
    hits are kept, marked by ``partial_findings`` in the report);
    ``budget_exhausted`` scans left some regions undecoded.
    """

    payloads: int = 0
    failed: int = 0
    budget_exhausted: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed and not self.budget_exhausted

    def to_dict(self) -> dict[str, object]:
        return {"payloads": self.payloads, "failed": self.failed, "budget_exhausted": self.budget_exhausted,
                "errors": list(self.errors), "complete": self.complete}


@dataclass(frozen=True)
class Endpoint:
    """Where a leak went.  ``host_source`` says how the name was learned
    (``dns`` is a guess, see ``sources.py``)."""

    host: str | None
    ip: str
    port: int
    host_source: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"host": self.host, "ip": self.ip, "port": self.port, "host_source": self.host_source}


@dataclass(frozen=True)
class ProcessRef:
    """The device process that most plausibly sent a leak."""

    pid: int
    name: str
    exe: str | None
    argv: tuple[str, ...]
    description: str

    @classmethod
    def from_info(cls, info: ProcessInfo) -> ProcessRef:
        return cls(info.pid, info.name, info.exe, tuple(info.argv), info.describe())

    def to_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "name": self.name, "exe": self.exe, "argv": list(self.argv),
                "description": self.description}


@dataclass(frozen=True)
class Match:
    """One accepted scanner hit, placed in its artifact.  ``where`` is the
    payload's metadata (its bytes are dropped so findings stay small)."""

    form: CanaryForm
    encoding: tuple[str, ...]
    offset: int
    excerpt: str
    ts: float
    where: Payload

    @property
    def hashed(self) -> bool:
        return bool(self.encoding) and _HASHED.match(self.encoding[-1]) is not None


@dataclass(frozen=True)
class Evidence:
    """Where one copy of the leaked value is, for an analyst to open."""

    artifact: str
    locator: str
    offset: int
    excerpt: str
    channel: str
    encoding: tuple[str, ...]
    form: str
    value: str
    host_time: float

    @classmethod
    def of(cls, m: Match) -> Evidence:
        return cls(m.where.artifact, m.where.locator, m.offset, m.excerpt, m.where.channel, m.encoding,
                   m.form.form, m.form.value, m.ts)

    def to_dict(self) -> dict[str, object]:
        return {"artifact": self.artifact, "locator": self.locator, "offset": self.offset,
                "excerpt": self.excerpt, "channel": self.channel, "encoding": list(self.encoding),
                "form": self.form, "value": self.value, "host_time": self.host_time}


@dataclass(frozen=True)
class Finding:
    """One planted item (one field of it) that left the device, once per leak."""

    canary: CanaryForm
    encoding: tuple[str, ...]
    channel: str
    destination: Endpoint
    host_time: float
    device_time: str
    process: ProcessRef | None
    evidence: tuple[Evidence, ...]
    evidence_omitted: int = 0

    def to_dict(self) -> dict[str, object]:
        c = self.canary
        return {
            "canary": {"kind": c.kind, "item_id": c.item_id, "field": c.field, "form": c.form, "value": c.value},
            "encoding": list(self.encoding),
            "channel": self.channel,
            "destination": self.destination.to_dict(),
            "device_time": self.device_time,
            "host_time": self.host_time,
            "process": self.process.to_dict() if self.process else None,
            "evidence": [e.to_dict() for e in self.evidence],
            "evidence_omitted": self.evidence_omitted,
        }


# ---------------------------------------------------------------------------


def _bounded(before: str, after: str) -> bool:
    """No digit right before or after (an empty string is the region's edge)."""
    return before not in _DIGITS and after not in _DIGITS


def _excerpt_bounded(value: str, excerpt: str) -> bool:
    marker = f"«{value}»"
    i = excerpt.find(marker)
    if i < 0:
        return True  # cannot tell; the scanner found exactly the value
    j = i + len(marker)
    return _bounded(excerpt[i - 1:i], excerpt[j:j + 1])


def _raw_excerpt(data: bytes, start: int, end: int) -> str:
    def show(b: bytes) -> str:
        return "".join(c if c.isprintable() else "·" for c in b.decode("utf-8", "replace"))

    return f"{show(data[max(0, start - 60):start])}«{show(data[start:end])}»{show(data[end:end + 60])}"


class Detector:
    """Scanner built once from a canary set's forms; reusable across analyses'
    payload streams of the *same* set.  ``health`` accumulates how completely
    payloads were scanned; share a detector between threads only if a shared
    ``health`` is what you want (the scanner itself is thread-safe)."""

    def __init__(
        self,
        canaries: CanarySet,
        *,
        window: float = 60.0,
        jitter: float = 5.0,
        attribution_window: float = 2.0,
        max_evidence: int = 50,
        scanner: Scanner | None = None,
    ) -> None:
        self.forms = build_forms(canaries)
        self.window = window
        self.jitter = jitter
        self.attribution_window = attribution_window
        self.max_evidence = max_evidence
        self.scanner = scanner or Scanner([Needle(f.value, f) for f in self.forms])
        self.scanned = 0
        self.health = ScanHealth()

    # -- matching ---------------------------------------------------------------

    def matches(self, payload: Payload) -> list[Match]:
        """Accepted hits in one payload (see the module docstring for the filter)."""
        if not payload.data:
            return []
        self.scanned += 1
        self.health.payloads += 1
        where = dataclasses.replace(payload, data=b"", times=())
        out = []
        try:
            hits = self.scanner.scan(payload.data)
            if not self.scanner.last_stats.complete:
                self.health.budget_exhausted += 1
        except ScanError as exc:  # counted and reported; its verified hits stay evidence
            self.health.failed += 1
            if len(self.health.errors) < _MAX_ERROR_SAMPLES:
                self.health.errors.append(f"{payload.artifact} {payload.locator}: {exc}")
            hits = exc.partial
        for hit in hits:
            form = hit.ref
            if not isinstance(form, CanaryForm):
                continue
            placed = self._place(form, hit, payload)
            if placed is None:
                continue
            offset, excerpt = placed
            out.append(Match(form, payload.pre_chain + hit.chain, payload.base_offset + offset, excerpt,
                             payload.ts_at(offset), where))
        return out

    @staticmethod
    def _place(form: CanaryForm, hit: Hit, payload: Payload) -> tuple[int, str] | None:
        """``(offset in data, excerpt)`` of an accepted hit, None if rejected."""
        value = form.value
        if not value.isdigit() or (hit.chain and _HASHED.match(hit.chain[-1])):
            return hit.offset, hit.excerpt
        if hit.chain:
            return (hit.offset, hit.excerpt) if _excerpt_bounded(value, hit.excerpt) else None
        data, raw = payload.data, value.encode()
        end = hit.offset + len(raw)
        if data[hit.offset:end] == raw and _bounded(chr(data[hit.offset - 1]) if hit.offset else "",
                                                    chr(data[end]) if end < len(data) else ""):
            return hit.offset, hit.excerpt
        m = re.search(rb"(?<![0-9])" + re.escape(raw) + rb"(?![0-9])", data)
        return (m.start(), _raw_excerpt(data, m.start(), m.end())) if m else None

    # -- grouping -------------------------------------------------------------------

    def detect(
        self, payloads: Iterable[Payload], mapping: ClockMapping, syscalls: Summary | None
    ) -> list[Finding]:
        matches = [m for p in payloads for m in self.matches(p)]
        return self.findings(matches, mapping, syscalls)

    def findings(self, matches: Sequence[Match], mapping: ClockMapping, syscalls: Summary | None) -> list[Finding]:
        """Group matches into findings (see the module docstring)."""
        groups: dict[tuple[object, ...], list[Match]] = {}
        for m in matches:
            groups.setdefault(_group_key(m), []).append(m)
        out = []
        for group in groups.values():
            for cluster in _clusters(group, mapping, self.window, self.jitter):
                out.append(self._finding(cluster, mapping, syscalls))
        out.sort(key=lambda f: (f.host_time, f.canary.kind, f.canary.item_id, f.canary.field))
        return out

    def _finding(self, cluster: list[Match], mapping: ClockMapping, syscalls: Summary | None) -> Finding:
        kept = sorted(_collapse(cluster), key=_primary_rank)
        primary = kept[0]
        host_time = min(m.ts for m in cluster)
        named = [m for m in cluster if m.where.host]
        best = min(named, key=lambda m: _HOST_RANK.get(m.where.host_source or "", 3)) if named else primary
        dest = Endpoint(best.where.host, primary.where.ip, primary.where.port, best.where.host_source)
        process = _attribute(syscalls, kept, self.attribution_window) if syscalls is not None else None
        shown = kept[: self.max_evidence]
        return Finding(
            canary=primary.form,
            encoding=primary.encoding,
            channel=primary.where.channel,
            destination=dest,
            host_time=host_time,
            device_time=mapping.device_iso(host_time),
            process=process,
            evidence=tuple(Evidence.of(m) for m in shown),
            evidence_omitted=len(kept) - len(shown),
        )


def _family(channel: str) -> str:
    return channel if channel in ("dns", "udp") else "stream"


def _base_domain(host: str | None) -> str:
    labels = [label for label in (host or "").lower().rstrip(".").split(".") if label]
    return ".".join(labels[-2:])


def _group_key(m: Match) -> tuple[object, ...]:
    family = _family(m.where.channel)
    dest: object = _base_domain(m.where.host) if family == "dns" else (m.where.ip, m.where.port)
    return (m.form.item_id, m.form.field, family, dest, m.hashed)


def _clusters(group: list[Match], mapping: ClockMapping, window: float, jitter: float) -> list[list[Match]]:
    """Split one group into leak events (see the module docstring)."""
    ms = sorted(group, key=lambda m: m.ts)
    parent = list(range(len(ms)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def link(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    device = [mapping.to_device(m.ts) for m in ms]
    order = sorted(range(len(ms)), key=lambda i: device[i])
    for a, b in zip(order, order[1:]):
        if device[b] - device[a] <= window:
            link(a, b)
    sockets: dict[str, dict[str, list[int]]] = {}
    for i, m in enumerate(ms):
        if m.where.client:
            sockets.setdefault(m.where.client, {}).setdefault(m.where.artifact, []).append(i)
    for layers in sockets.values():
        for artifact, mine in layers.items():
            for other, theirs in layers.items():
                if other <= artifact:
                    continue
                when = _conn_time if "tcp" in (artifact, other) else _data_time
                there = _nearest(ms, mine, theirs, when)
                back = _nearest(ms, theirs, mine, when)
                for i, j in there.items():
                    if back.get(j) == i and abs(when(ms[i]) - when(ms[j])) <= jitter:
                        link(i, j)
    out: dict[int, list[Match]] = {}
    for i, m in enumerate(ms):
        out.setdefault(find(i), []).append(m)
    return list(out.values())


def _nearest(ms: list[Match], mine: list[int], theirs: list[int],
             when: Callable[[Match], float]) -> dict[int, int]:
    """For each of ``mine``, the closest in time of ``theirs`` (ties: lowest index)."""
    targets = sorted((when(ms[j]), j) for j in theirs)
    times = [t for t, _ in targets]
    out = {}
    for i in mine:
        t = when(ms[i])
        k = bisect.bisect_left(times, t)
        lo = bisect.bisect_left(times, times[k - 1]) if k > 0 else k  # first of a run of equal times
        cands = [c for c in (lo, k) if 0 <= c < len(times)]
        out[i] = targets[min(cands, key=lambda c: (abs(times[c] - t), targets[c][1]))][1]
    return out


def _conn_time(m: Match) -> float:
    """When the match's connection opened (the same in every layer), else its data time."""
    return m.where.connect_ts if m.where.connect_ts is not None else m.ts


def _data_time(m: Match) -> float:
    return m.ts


def _collapse(cluster: list[Match]) -> list[Match]:
    """Per (artifact, locator, encoding), drop hits whose value is inside a
    longer kept one at the same place (the same bytes seen as a shorter form)."""
    places: dict[tuple[str, str, tuple[str, ...]], list[Match]] = {}
    for m in sorted(cluster, key=lambda m: (-len(m.form.value), m.ts, m.offset)):
        kept = places.setdefault((m.where.artifact, m.where.locator, m.encoding), [])
        if not any(_covers(k, m) for k in kept):
            kept.append(m)
    return [m for kept in places.values() for m in kept]


def _covers(big: Match, small: Match) -> bool:
    if small.form.value not in big.form.value:
        return False
    if big.encoding:  # decoded layers report the region's offset, not the match's
        return big.offset == small.offset
    return big.offset <= small.offset < big.offset + len(big.form.value.encode())


def _primary_rank(m: Match) -> tuple[float, int, int, float, int]:
    source = _SOURCE_RANK.get(m.where.artifact, 2) + (0.5 if "[alternate" in m.where.locator else 0.0)
    return (source, len(m.encoding), -len(m.form.value), m.ts, m.offset)


def device_port(client: str | None) -> int | None:
    """The device socket's port from a payload's or log record's ``client``
    (``"10.213.0.3:40000"``, ``"fd00::3:40000"``), None when unknown."""
    hp = split_hostport(client)
    return hp[1] if hp is not None and 0 < hp[1] < 65536 else None


def _attribute(summary: Summary, matches: list[Match], window: float) -> ProcessRef | None:
    """First by device port at any of the evidence's times (a socket may
    sit idle between its connect and its send), then by time alone."""
    asks: list[tuple[str, int, int | None, float]] = []
    for m in matches:
        where = m.where
        if not where.ip:
            continue
        local_port = device_port(where.client)
        for ts in (where.connect_ts, m.ts):
            ask = (where.ip, where.port, local_port, ts) if ts is not None else None
            if ask is not None and ask not in asks:
                asks.append(ask)
        if len(asks) >= _MAX_ATTRIBUTION_TRIES:
            break
    asks = asks[:_MAX_ATTRIBUTION_TRIES]
    for ip, port, local_port, ts in asks:
        if local_port is not None:
            info = summary.who_owned(ip, port, local_port, ts, window)
            if info is not None:
                return ProcessRef.from_info(info)
    for ip, port, _, ts in asks:
        info = summary.who_connected(ip, port, ts, window)
        if info is not None:
            return ProcessRef.from_info(info)
    return None


def detect(
    canaries: CanarySet,
    payloads: Iterable[Payload],
    mapping: ClockMapping,
    syscalls: Summary | None,
    *,
    window: float = 60.0,
    jitter: float = 5.0,
    health: ScanHealth | None = None,
) -> list[Finding]:
    """Every canary leak in ``payloads``, deduplicated; see the module docstring.
    Pass ``health`` to learn how completely they were scanned."""
    detector = Detector(canaries, window=window, jitter=jitter)
    if health is not None:
        detector.health = health
    return detector.detect(payloads, mapping, syscalls)
