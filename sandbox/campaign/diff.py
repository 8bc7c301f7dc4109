"""Baseline against each version: which leaks are new, which were fixed, where it now talks.

A release manager asks "did the new build stop sending SMS to that host, and
did it start sending anything anywhere else?"; the answer compares the sets
of (canary kind, destination host) pairs, not finding counts, which move
with the scenario's item counts and with retries inside the firmware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .model import Campaign, Leak, VersionResult


@dataclass(frozen=True)
class VersionDiff:
    baseline: str  # labels ("name version")
    version: str
    comparable: bool  # False when either analysis did not complete: nothing else here is meaningful
    new_leaks: tuple[Leak, ...] = ()
    fixed_leaks: tuple[Leak, ...] = ()
    kept_leaks: tuple[Leak, ...] = ()
    new_destinations: tuple[str, ...] = ()
    dropped_destinations: tuple[str, ...] = ()

    @property
    def regressed(self) -> bool:
        return bool(self.new_leaks)


def diff_versions(baseline: VersionResult, current: VersionResult) -> VersionDiff:
    if not (baseline.completed and current.completed):
        return VersionDiff(baseline.label, current.label, comparable=False)
    before, now = baseline.leak_set, current.leak_set
    old_dest, new_dest = set(baseline.destinations), set(current.destinations)
    return VersionDiff(
        baseline.label, current.label, comparable=True,
        new_leaks=tuple(sorted(now - before)), fixed_leaks=tuple(sorted(before - now)),
        kept_leaks=tuple(sorted(now & before)),
        new_destinations=tuple(sorted(new_dest - old_dest)), dropped_destinations=tuple(sorted(old_dest - new_dest)),
    )


def diff_campaign(campaign: Campaign) -> tuple[VersionDiff, ...]:
    """One diff per non-baseline version; none without a baseline."""
    if campaign.baseline is None:
        return ()
    return tuple(diff_versions(campaign.baseline, v) for v in campaign.candidates)


def group_leaks(leaks: Iterable[Leak]) -> str:
    """``call_log, contact, sms to bigdata.adups.com; sms to x.example``: kinds grouped per host."""
    by_host: dict[str, list[str]] = {}
    for leak in sorted(leaks):
        by_host.setdefault(leak.host, []).append(leak.kind)
    return "; ".join(f"{', '.join(kinds)} to {host}" for host, kinds in sorted(by_host.items()))


def describe(d: VersionDiff) -> list[str]:
    """Human lines for one diff, first the headline then one line per change."""
    head = f"{d.version} vs baseline {d.baseline}:"
    if not d.comparable:
        return [f"{head} not comparable (an analysis did not complete)"]
    lines = [head]
    lines.append(f"  new leaks:   {group_leaks(d.new_leaks)}" if d.new_leaks else "  new leaks:   none")
    if d.fixed_leaks:
        lines.append(f"  fixed:       {group_leaks(d.fixed_leaks)}")
    if d.kept_leaks:
        lines.append(f"  still leaks: {group_leaks(d.kept_leaks)}")
    lines.append(f"  new destinations: {', '.join(d.new_destinations) or 'none'}")
    if d.dropped_destinations:
        lines.append(f"  no longer contacted: {', '.join(d.dropped_destinations)}")
    return lines


def render_diffs(diffs: Iterable[VersionDiff]) -> str:
    return "\n".join(line for d in diffs for line in describe(d))
