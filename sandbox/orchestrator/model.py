"""Frozen records the store persists and the orchestrator hands out.

Every change is a new record (``dataclasses.replace``), so a record read from
the store can be shared between threads without locks.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from sandbox.model import Scenario, Stage, Verdict


class AnalysisState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_STATES


_TERMINAL_STATES = frozenset({AnalysisState.SUCCEEDED, AnalysisState.FAILED, AnalysisState.CANCELLED})
TERMINAL_STAGES = frozenset({Stage.FINISHED, Stage.FAILED, Stage.CANCELLED})


class LeaseState(str, Enum):
    ACTIVE = "active"
    COMPLETED = "completed"  # its completion was accepted
    EXPIRED = "expired"  # not heartbeaten in time; the analysis went back to the queue
    CANCELLED = "cancelled"  # the user cancelled the analysis
    RELEASED = "released"  # the worker gave it back (failed, retryable)


def new_analysis_id() -> str:
    """16 hex digits: random in the first 12, which Docker names and bridges use."""
    return secrets.token_hex(8)


def new_worker_id() -> str:
    return "w-" + secrets.token_hex(8)


def new_lease_id() -> str:
    return "l-" + secrets.token_hex(8)


@dataclass(frozen=True)
class AnalysisRecord:
    id: str
    firmware_sha256: str
    scenario: Scenario
    priority: int
    labels: Mapping[str, str]
    state: AnalysisState
    created_at: float
    updated_at: float
    max_attempts: int
    seq: int = 0  # creation order, assigned by the store; pages and FIFO order use it
    attempts: int = 0
    verdict: Verdict | None = None
    error: str | None = None
    stage: Stage = Stage.QUEUED
    device_hours: float | None = None
    worker_id: str | None = None
    lease_id: str | None = None  # the active lease, or the one whose completion was accepted
    finished_at: float | None = None


@dataclass(frozen=True)
class EventRecord:
    analysis_id: str
    sequence: int
    stage: Stage
    message: str
    device_hours: float | None
    time: float


@dataclass(frozen=True)
class LeaseRecord:
    id: str
    analysis_id: str
    worker_id: str
    state: LeaseState
    deadline: float
    attempt: int
    created_at: float


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    name: str
    slots: int
    profiles: tuple[str, ...]
    registered_at: float
    last_seen: float


@dataclass(frozen=True)
class FirmwareRecord:
    sha256: str
    size: int
    filename: str
    created_at: float


@dataclass(frozen=True)
class ArtifactRecord:
    lease_id: str
    analysis_id: str
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int


@dataclass(frozen=True)
class Page:
    analyses: tuple[AnalysisRecord, ...]
    next_page_token: str = ""


@dataclass(frozen=True)
class LeaseGrant:
    """What a worker is told about a lease it was given."""

    analysis_id: str
    lease_id: str
    deadline: float
    scenario: Scenario
    firmware_sha256: str
    labels: Mapping[str, str]
    attempt: int


@dataclass(frozen=True)
class WorkerProgress:
    """One heartbeat's news about one lease."""

    lease_id: str
    events: tuple[tuple[Stage, str, float | None], ...] = field(default=())


@dataclass(frozen=True)
class HeartbeatResult:
    cancelled: tuple[str, ...]
    expired: tuple[str, ...]


@dataclass(frozen=True)
class Completion:
    """What a worker reports when a lease's analysis ends."""

    lease_id: str
    verdict: Verdict | None
    report_json: str
    error: str | None = None
    retryable: bool = False


@dataclass(frozen=True)
class CompletionResult:
    accepted: bool
    duplicate: bool
    ignored_reason: str
    state: AnalysisState
