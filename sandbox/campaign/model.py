"""What a campaign found, version by version, as frozen records.

A campaign runs several firmware versions under one scenario so their reports
can be compared; the comparison (``diff``), the text table, the JUnit file
and the HTML page all read these records and never the raw report again, so
every output agrees on what "leaked" means: a planted canary of some kind
seen going to some destination host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sandbox.model import Scenario, Verdict

EXIT_CLEAN, EXIT_LEAK, EXIT_INCOMPLETE, EXIT_SUSPICIOUS = 0, 1, 2, 3


@dataclass(frozen=True, order=True)
class Leak:
    """One kind of personal data reaching one destination host: the unit a diff compares."""

    kind: str
    host: str

    def __str__(self) -> str:
        return f"{self.kind} to {self.host}"


@dataclass(frozen=True)
class LeakDetail:
    """The first finding of a (kind, host) pair, and how many findings share it."""

    leak: Leak
    port: int | None
    channel: str
    encoding: tuple[str, ...]
    device_time: str
    process: str
    count: int

    def describe(self) -> str:
        where = self.leak.host + (f":{self.port}" if self.port else "")
        how = " > ".join(self.encoding) if self.encoding else "clear text"
        who = f" by {self.process}" if self.process else ""
        when = f" at device time {self.device_time}" if self.device_time else ""
        return f"{self.leak.kind} sent to {where} over {self.channel or '?'} as {how}{when}{who} ({self.count} finding(s))"


@dataclass(frozen=True)
class VersionResult:
    """One firmware version's analysis: its verdict, what leaked where, or why it did not complete."""

    bundle: str
    name: str
    version: str
    verdict: Verdict | None
    error: str | None = None
    analysis_id: str = ""
    leaks: tuple[LeakDetail, ...] = ()
    destinations: tuple[str, ...] = ()
    findings: int = 0
    reasons: tuple[str, ...] = ()
    seconds: float = 0.0
    # Local copies of the version's own reports: {"json": path, "html": path}.
    files: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def completed(self) -> bool:
        return self.verdict is not None and self.error is None

    @property
    def leak_set(self) -> frozenset[Leak]:
        return frozenset(d.leak for d in self.leaks)

    @property
    def leaked_kinds(self) -> tuple[str, ...]:
        return tuple(sorted({d.leak.kind for d in self.leaks}))


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: object) -> Sequence[object]:
    return value if isinstance(value, (list, tuple)) else ()


def leak_details(findings: Iterable[object]) -> tuple[LeakDetail, ...]:
    """Group findings by (canary kind, destination host), keeping the earliest in device time."""
    first: dict[Leak, Mapping[str, object]] = {}
    counts: dict[Leak, int] = {}
    for raw in findings:
        f = _map(raw)
        dest = _map(f.get("destination"))
        kind = _str(_map(f.get("canary")).get("kind")) or "unknown"
        host = _str(dest.get("host")) or _str(dest.get("ip")) or "unknown"
        leak = Leak(kind, host)
        counts[leak] = counts.get(leak, 0) + 1
        seen = first.get(leak)
        if seen is None or _str(f.get("device_time")) < _str(seen.get("device_time")):
            first[leak] = f
    out = []
    for leak in sorted(first):
        f = first[leak]
        port = _map(f.get("destination")).get("port")
        proc = _map(f.get("process"))
        out.append(LeakDetail(
            leak=leak, port=port if isinstance(port, int) else None, channel=_str(f.get("channel")),
            encoding=tuple(_str(e) for e in _seq(f.get("encoding"))), device_time=_str(f.get("device_time")),
            process=_str(proc.get("description")) or _str(proc.get("name")), count=counts[leak],
        ))
    return tuple(out)


def report_destinations(report: Mapping[str, object]) -> tuple[str, ...]:
    """``host:port`` of everything the device talked to (the report's network section, else its findings)."""
    listed = [_str(d) for d in _seq(_map(report.get("network")).get("destinations"))]
    if any(listed):
        return tuple(sorted({d for d in listed if d}))
    found = set()
    for raw in _seq(report.get("findings")):
        dest = _map(_map(raw).get("destination"))
        host = _str(dest.get("host")) or _str(dest.get("ip"))
        if host:
            port = dest.get("port")
            found.add(f"{host}:{port}" if isinstance(port, int) else host)
    return tuple(sorted(found))


def version_from_report(
    bundle: str, report: Mapping[str, object], verdict: Verdict | None, *, name: str, version: str,
    analysis_id: str = "", error: str | None = None, seconds: float = 0.0, files: Mapping[str, str] | None = None,
) -> VersionResult:
    """Build a ``VersionResult``; the report's ``firmware`` section wins over the given name/version."""
    fw = _map(report.get("firmware"))
    findings = _seq(report.get("findings"))
    return VersionResult(
        bundle=bundle, name=_str(fw.get("name")) or name, version=_str(fw.get("version")) or version,
        verdict=verdict, error=error, analysis_id=analysis_id, leaks=leak_details(findings),
        destinations=report_destinations(report), findings=len(findings),
        reasons=tuple(_str(r) for r in _seq(report.get("verdict_reasons"))[:3]), seconds=seconds,
        files=dict(files or {}),
    )


def exit_code(results: Iterable[VersionResult]) -> int:
    """As ``analyze``: 1 if any leaks, else 3 if any is suspicious, else 2 if any did not complete, else 0."""
    rs = list(results)
    if any(r.verdict == Verdict.LEAK for r in rs):
        return EXIT_LEAK
    if any(r.verdict == Verdict.SUSPICIOUS for r in rs):
        return EXIT_SUSPICIOUS
    if any(not r.completed for r in rs):
        return EXIT_INCOMPLETE
    return EXIT_CLEAN


@dataclass(frozen=True)
class Campaign:
    """Every version of one campaign, all run under the same scenario (and seed)."""

    scenario: Scenario
    baseline: VersionResult | None
    candidates: tuple[VersionResult, ...]
    campaign_id: str = ""

    @property
    def results(self) -> tuple[VersionResult, ...]:
        """The baseline first (when there is one), then the other versions in the order given."""
        return ((self.baseline,) if self.baseline else ()) + self.candidates

    @property
    def exit_code(self) -> int:
        return exit_code(self.results)
