"""Parsing ``dumpsys alarm``: which alarms are pending, for whom, and when.

The Android clock steps the wall clock to just past each pending RTC alarm
of the firmware, so it must read the pending list reliably on every release
it supports.  The format changed over the years (AOSP
``AlarmManagerService``/``alarm/Alarm.java``/``alarm/LazyAlarmStore.java``):

* API 30 (R): ``Pending alarm batches: N``, then ``Batch{... num=.. start=..
  end=..}:`` lines, each followed by ``RTC_WAKEUP #0: Alarm{hash type 0 when
  1700000000000 com.pkg}``; details ``type=0 expectedWhenElapsed=..
  whenElapsed=.. maxWhenElapsed=.. when=2023-11-14 22:13:20.000`` and
  ``window=+15m0s0ms repeatInterval=0 count=0 flags=0x1``.
* API 31+ (S and later, lazy store by default): ``N pending alarms:``, then
  ``RTC_WAKEUP #1: Alarm{hash type 0 origWhen 1700000000000 whenElapsed
  123456 com.pkg}``; details ``type=RTC_WAKEUP origWhen=2023-11-14
  22:13:20.000 window=0 exactAllowReason=.. repeatInterval=0 count=0
  flags=0x9``, ``policyWhenElapsed: requester=.. ...`` and ``whenElapsed=..
  maxWhenElapsed=..``.  The batching store, when a device enables it,
  still prints ``Pending alarm batches:``.

Alarm lists also appear under ``Past-due non-wakeup alarms:`` (non-wakeup
alarms held back while the screen is off) and ``Pending user blocked
background alarms:``; those are pending too and are kept, with their section.
For RTC types the header's ``when``/``origWhen`` is the wall-clock trigger in
epoch milliseconds; for ELAPSED types it is milliseconds since boot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .dumpsys_common import indent_of, parse_duration_ms

RTC_TYPES = frozenset({"RTC", "RTC_WAKEUP"})

_HEADER = re.compile(
    r"^(?P<label>RTC_WAKEUP|RTC|ELAPSED_WAKEUP|ELAPSED) #(?P<idx>\d+): Alarm\{(?P<hash>[0-9a-f]+) "
    r"type (?P<type>-?\d+) (?:origWhen|when) (?P<when>-?\d+)\s+(?:whenElapsed (?P<we>-?\d+)\s+)?(?P<pkg>[^\s}]*)\}\s*$"
)
_NOW = re.compile(r"nowRTC=(?P<rtc>\d+)=.*?nowELAPSED=(?P<el>\S+)")
_SECTIONS = (
    (re.compile(r"^Pending alarm batches: \d+"), "pending"),
    (re.compile(r"^\d+ pending alarms:"), "pending"),
    (re.compile(r"^Past-due non-wakeup alarms:"), "past_due_non_wakeup"),
    (re.compile(r"^Pending user blocked background alarms:"), "blocked_background"),
    (re.compile(r"^Pending alarms:"), "idle_pending"),
)
_BATCH = re.compile(r"^Batch\{[0-9a-f]+ num=\d+")
PENDING_SECTIONS = frozenset({"pending", "past_due_non_wakeup", "blocked_background", "idle_pending"})


@dataclass(frozen=True)
class PendingAlarm:
    """One alarm as printed; times in milliseconds."""

    section: str
    label: str  # RTC, RTC_WAKEUP, ELAPSED, ELAPSED_WAKEUP
    package: str
    when: int  # wall-clock epoch ms for RTC types, elapsed ms otherwise
    when_elapsed: int | None = None  # from the S+ header
    window_ms: int | None = None
    repeat_interval_ms: int = 0
    flags: int | None = None
    tag: str | None = None

    @property
    def is_rtc(self) -> bool:
        return self.label in RTC_TYPES

    @property
    def latest_wall_ms(self) -> int | None:
        """The latest wall-clock time at which an RTC alarm is delivered (trigger + window)."""
        if not self.is_rtc:
            return None
        return self.when + max(self.window_ms or 0, 0)


@dataclass(frozen=True)
class AlarmDump:
    now_rtc_ms: int | None
    now_elapsed_ms: int | None
    alarms: tuple[PendingAlarm, ...] = field(default_factory=tuple)

    def pending(self, packages: Iterable[str] | None = None) -> list[PendingAlarm]:
        """Alarms still to be delivered, optionally only those of ``packages``."""
        wanted = set(packages) if packages is not None else None
        return [
            a for a in self.alarms
            if a.section in PENDING_SECTIONS and (wanted is None or a.package in wanted)
        ]

    def rtc_due_ms(self, packages: Iterable[str]) -> list[int]:
        """Sorted latest-delivery wall-clock times of the packages' pending RTC alarms."""
        return sorted({t for a in self.pending(packages) if (t := a.latest_wall_ms) is not None})


def _apply_detail(fields: dict[str, object], line: str) -> None:
    text = line.strip()
    if text.startswith("tag="):
        fields["tag"] = text[4:]
        return
    if text.startswith("operation=") or text.startswith("listener=") or text.startswith("policyWhenElapsed:"):
        return
    m = re.search(r"(?:^|\s)window=(\S+)", text)
    if m:
        fields["window_ms"] = parse_duration_ms(m.group(1))
    m = re.search(r"repeatInterval=(-?\d+)", text)
    if m:
        fields["repeat_interval_ms"] = int(m.group(1))
    m = re.search(r"flags=0x([0-9a-fA-F]+)", text)
    if m:
        fields["flags"] = int(m.group(1), 16)


def parse_dumpsys_alarm(text: str) -> AlarmDump:
    """Parse the text of ``dumpsys alarm`` (any supported release)."""
    now_rtc: int | None = None
    now_elapsed: int | None = None
    alarms: list[PendingAlarm] = []
    section: str | None = None
    section_indent = -1
    current: dict[str, object] | None = None
    current_indent = -1

    def flush() -> None:
        nonlocal current
        if current is not None:
            alarms.append(PendingAlarm(**current))  # type: ignore[arg-type]
            current = None

    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        ind = indent_of(line)
        body = line.strip()
        if now_rtc is None and (m := _NOW.search(body)):
            now_rtc = int(m.group("rtc"))
            el = m.group("el")
            now_elapsed = int(el) if el.isdigit() else parse_duration_ms(el)
        header = _HEADER.match(body)
        if header:
            flush()
            when_elapsed = header.group("we")
            current = {
                "section": section or "other",
                "label": header.group("label"),
                "package": header.group("pkg"),
                "when": int(header.group("when")),
                "when_elapsed": int(when_elapsed) if when_elapsed is not None else None,
            }
            current_indent = ind
            continue
        if current is not None and ind > current_indent:
            _apply_detail(current, line)
            continue
        flush()
        for pattern, name in _SECTIONS:
            if pattern.match(body):
                section, section_indent = name, ind
                break
        else:
            if _BATCH.match(body):
                continue
            if section is not None and ind <= section_indent:
                section, section_indent = None, -1
    flush()
    return AlarmDump(now_rtc, now_elapsed, tuple(alarms))


__all__ = ["AlarmDump", "PendingAlarm", "PENDING_SECTIONS", "parse_dumpsys_alarm"]
