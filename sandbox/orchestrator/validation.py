"""Bounds and formats for every request field, with messages that name the field.

The rules live in the orchestrator, not in the servicers, so that every way in
(gRPC today, anything else tomorrow) enforces the same contract.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping

from sandbox.model import Scenario, Stage

from .errors import InvalidArgument, LimitExceeded

PROFILES = ("twin", "android")
WORKER_STAGES = frozenset({Stage.BOOTING, Stage.PLANTING, Stage.FAST_FORWARDING, Stage.ANALYZING})
MIN_HOURS, MAX_HOURS = 1.0, 720.0
MAX_COUNT = 10_000
MIN_PRIORITY, MAX_PRIORITY = -100, 100
MAX_LABELS, MAX_LABEL_VALUE = 32, 256
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
MAX_SLOTS = 256
MAX_EVENT_MESSAGE = 1024
MAX_EVENTS_PER_LEASE = 1000
MAX_FILENAME = 255
MAX_ERROR = 4096
MAX_SEQUENCE = 2**63 - 1  # SQLite's INTEGER; sequences and page positions never get near it

_ANALYSIS_ID = re.compile(r"[0-9a-f]{16}")
_WORKER_ID = re.compile(r"w-[0-9a-f]{16}")
_LEASE_ID = re.compile(r"l-[0-9a-f]{16}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LABEL_KEY = re.compile(r"[a-z0-9][a-z0-9._/-]{0,62}")
_LOCALE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
_WORKER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ARTIFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _match(pattern: re.Pattern[str], value: str, field: str, what: str) -> str:
    if not pattern.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "…"
        raise InvalidArgument(f"{field}: {shown!r} is not {what}")
    return value


def analysis_id(value: str, field: str = "id") -> str:
    return _match(_ANALYSIS_ID, value, field, "an analysis id (16 lowercase hex digits)")


def worker_id(value: str, field: str = "worker_id") -> str:
    return _match(_WORKER_ID, value, field, "a worker id ('w-' and 16 lowercase hex digits)")


def lease_id(value: str, field: str = "lease_id") -> str:
    return _match(_LEASE_ID, value, field, "a lease id ('l-' and 16 lowercase hex digits)")


def sha256(value: str, field: str = "firmware_sha256") -> str:
    return _match(_SHA256, value, field, "a sha256 digest (64 lowercase hex digits)")


def request_id(value: str, field: str = "request_id") -> str:
    """Empty (no idempotency key) or a key a client may reuse to retry a submission."""
    return _match(_REQUEST_ID, value, field, "an idempotency key ([A-Za-z0-9._:-]{1,128})") if value else value


def artifact_name(value: str, field: str = "name") -> str:
    return _match(_ARTIFACT_NAME, value, field, "an artifact name ([A-Za-z0-9][A-Za-z0-9._-]{0,63})")


def worker_name(value: str, field: str = "name") -> str:
    return _match(_WORKER_NAME, value, field, "a worker name (1-64 of [A-Za-z0-9._-])")


def _count(value: int, field: str) -> None:
    if not 0 <= value <= MAX_COUNT:
        raise InvalidArgument(f"{field}: {value} is out of range 0..{MAX_COUNT}")


def scenario(s: Scenario, field: str = "scenario") -> Scenario:
    if not (math.isfinite(s.hours) and MIN_HOURS <= s.hours <= MAX_HOURS):
        raise InvalidArgument(f"{field}.hours: {s.hours} is out of range {MIN_HOURS:g}..{MAX_HOURS:g}")
    if not 0 <= s.seed < 2**63:
        raise InvalidArgument(f"{field}.seed: {s.seed} is out of range 0..2^63-1")
    _count(s.contacts, f"{field}.contacts")
    _count(s.sms, f"{field}.sms")
    _count(s.calls, f"{field}.calls")
    _match(_LOCALE, s.locale, f"{field}.locale", "a locale like 'en_US'")
    profile(s.profile, f"{field}.profile")
    return s


def profile(value: str, field: str = "profile") -> str:
    if value not in PROFILES:
        raise InvalidArgument(f"{field}: {value!r} is not one of {', '.join(PROFILES)}")
    return value


def profiles(values: Iterable[str], field: str = "profiles") -> tuple[str, ...]:
    out = tuple(values)
    if not out:
        raise InvalidArgument(f"{field}: name at least one of {', '.join(PROFILES)}")
    for i, v in enumerate(out):
        profile(v, f"{field}[{i}]")
    if len(set(out)) != len(out):
        raise InvalidArgument(f"{field}: duplicate profiles in {list(out)}")
    return out


def priority(value: int, field: str = "priority") -> int:
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidArgument(f"{field}: {value} is out of range {MIN_PRIORITY}..{MAX_PRIORITY}")
    return value


def labels(values: Mapping[str, str], field: str = "labels") -> dict[str, str]:
    if len(values) > MAX_LABELS:
        raise InvalidArgument(f"{field}: {len(values)} labels, at most {MAX_LABELS} allowed")
    for k, v in values.items():
        _match(_LABEL_KEY, k, f"{field} key", "a label key ([a-z0-9][a-z0-9._/-]{0,62})")
        if len(v) > MAX_LABEL_VALUE:
            raise InvalidArgument(f"{field}[{k}]: value is {len(v)} chars, at most {MAX_LABEL_VALUE}")
        if not v.isprintable():
            raise InvalidArgument(f"{field}[{k}]: value contains control characters")
    return dict(sorted(values.items()))


def page_size(value: int, field: str = "page_size") -> int:
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"{field}: {value} is out of range 1..{MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})")
    return value


def sequence(value: int, field: str = "from_sequence") -> int:
    if not 0 <= value <= MAX_SEQUENCE:
        raise InvalidArgument(f"{field}: {value} is out of range 0..2^63-1")
    return value


def heartbeat_leases(count: int, field: str = "leases") -> None:
    if count > MAX_SLOTS:
        raise InvalidArgument(f"{field}: {count} leases, a worker holds at most {MAX_SLOTS}")


def slots(value: int, field: str = "slots") -> int:
    if not 1 <= value <= MAX_SLOTS:
        raise InvalidArgument(f"{field}: {value} is out of range 1..{MAX_SLOTS}")
    return value


def filename(value: str, field: str = "filename") -> str:
    if len(value) > MAX_FILENAME or not value.isprintable() or "/" in value or "\\" in value:
        raise InvalidArgument(f"{field}: must be a plain file name of at most {MAX_FILENAME} printable characters")
    return value


def worker_event(stage: Stage, message: str, device_hours: float | None, field: str) -> None:
    if stage not in WORKER_STAGES:
        allowed = ", ".join(sorted(s.name for s in WORKER_STAGES))
        raise InvalidArgument(f"{field}.stage: {stage.name} is not a worker stage ({allowed})")
    if len(message) > MAX_EVENT_MESSAGE:
        raise InvalidArgument(f"{field}.message: {len(message)} chars, at most {MAX_EVENT_MESSAGE}")
    if device_hours is not None and not (math.isfinite(device_hours) and 0 <= device_hours <= MAX_HOURS):
        raise InvalidArgument(f"{field}.device_hours: {device_hours} is out of range 0..{MAX_HOURS:g}")


def report_json(value: str, limit: int, field: str = "report_json") -> str:
    if len(value.encode()) > limit:
        raise LimitExceeded(f"{field}: {len(value.encode())} bytes, the limit is {limit}")
    try:
        doc = json.loads(value)
    except ValueError as exc:
        raise InvalidArgument(f"{field}: not valid JSON ({exc})") from None
    except RecursionError:
        raise InvalidArgument(f"{field}: JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{field}: must be a JSON object, got {type(doc).__name__}")
    return value


def error_text(value: str, field: str = "error") -> str:
    if len(value) > MAX_ERROR:
        raise InvalidArgument(f"{field}: {len(value)} chars, at most {MAX_ERROR}")
    return value
