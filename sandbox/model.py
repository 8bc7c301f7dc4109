"""The types every layer agrees on for one analysis.

The gRPC servicers convert protobuf messages to and from these frozen
dataclasses in one place; workers hand an ``AnalysisRequest`` to a
``Runner`` and get an ``AnalysisOutcome`` back.  Nothing here does I/O.

A foundation module (innermost layer, next to ``settings`` and ``errors``)
rather than part of ``core``: the orchestrator, the API, campaigns and
workers all speak these types, and none of them should need the pipeline's
package to name a verdict or a stage.  It imports nothing from ``sandbox``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Verdict(str, Enum):
    LEAK = "leak"
    SUSPICIOUS = "suspicious"
    CLEAN = "clean"


class Stage(str, Enum):
    """Lifecycle events of an analysis, in order."""

    QUEUED = "queued"
    LEASED = "leased"
    BOOTING = "booting"
    PLANTING = "planting"
    FAST_FORWARDING = "fast_forwarding"
    ANALYZING = "analyzing"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Scenario:
    hours: float = 96.0
    seed: int = 0
    contacts: int = 25
    sms: int = 40
    calls: int = 30
    locale: str = "en_US"
    profile: str = "twin"


@dataclass(frozen=True)
class AnalysisRequest:
    analysis_id: str
    bundle_path: Path  # a bundle directory or archive on the worker's disk
    scenario: Scenario = field(default_factory=Scenario)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgressEvent:
    stage: Stage
    message: str = ""
    device_hours: float | None = None  # fast-forward progress in device hours


@dataclass(frozen=True)
class AnalysisOutcome:
    """What a finished (or failed) analysis produced.

    ``report`` is the JSON report (a dict ready for ``json.dumps``);
    ``artifacts`` maps artifact names (``pcap``, ``flows``, ``syscalls``,
    ``dns``, ``report.html`` …) to files on the worker's disk.
    """

    analysis_id: str
    verdict: Verdict | None
    report: Mapping[str, object]
    artifacts: Mapping[str, Path]
    error: str | None = None  # set when the analysis could not be completed
    # The runner's scratch directory holding the artifacts; the worker removes
    # it once the outcome is reported, so finished runs don't fill its disk.
    workdir: Path | None = None
    retryable: bool = False  # with an error: another attempt (maybe on another worker) could succeed

    @property
    def completed(self) -> bool:
        return self.error is None


class CancelToken:
    """Set by the worker when the orchestrator cancels; runners poll it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


ProgressFn = Callable[[ProgressEvent], None]
Runner = Callable[[AnalysisRequest, ProgressFn, CancelToken], AnalysisOutcome]
