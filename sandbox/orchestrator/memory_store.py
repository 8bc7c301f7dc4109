"""An in-memory ``Store``: the second backend of the contract suite, and fast tests.

Transactions are serialised by one lock; each write records how to undo it,
so an exception inside ``transaction()`` leaves the store as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar

from sandbox.model import Stage

from .blobs import MemoryBlobStore
from .model import (
    AnalysisRecord,
    AnalysisState,
    ArtifactRecord,
    EventRecord,
    FirmwareRecord,
    LeaseRecord,
    LeaseState,
    WorkerRecord,
)
from .store import BlobStore, StoreTx

_Undo = Callable[[], None]
T = TypeVar("T")


def _setter(table: dict[str, T], key: str) -> _Undo:
    """An undo action restoring ``table[key]`` to what it is now."""
    if key in table:
        old = table[key]

        def restore() -> None:
            table[key] = old
    else:

        def restore() -> None:
            table.pop(key, None)

    return restore


class _MemoryTx:
    def __init__(self, store: MemoryStore) -> None:
        self._s = store
        self.undo: list[_Undo] = []

    def _put(self, table: dict[str, T], key: str, value: T) -> None:
        self.undo.append(_setter(table, key))
        table[key] = value

    def insert_analysis(self, rec: AnalysisRecord) -> AnalysisRecord:
        s = self._s
        if rec.id in s.analyses:
            raise KeyError(f"analysis {rec.id} exists")
        old_seq = s.seq

        def restore_seq() -> None:
            s.seq = old_seq

        self.undo.append(restore_seq)
        s.seq += 1
        rec = replace(rec, seq=s.seq)
        self._put(s.analyses, rec.id, rec)
        return rec

    def get_analysis(self, analysis_id: str) -> AnalysisRecord | None:
        return self._s.analyses.get(analysis_id)

    def get_submission(self, request_id: str) -> str | None:
        return self._s.submissions.get(request_id)

    def put_submission(self, request_id: str, analysis_id: str) -> None:
        if request_id in self._s.submissions:
            raise KeyError(f"submission {request_id} exists")
        self._put(self._s.submissions, request_id, analysis_id)

    def update_analysis(self, rec: AnalysisRecord) -> None:
        if rec.id not in self._s.analyses:
            raise KeyError(f"analysis {rec.id} does not exist")
        self._put(self._s.analyses, rec.id, rec)

    def list_analyses(
        self, *, state: AnalysisState | None, labels: Mapping[str, str], before_seq: int | None, limit: int
    ) -> list[AnalysisRecord]:
        out = [
            a
            for a in self._s.analyses.values()
            if (state is None or a.state == state)
            and (before_seq is None or a.seq < before_seq)
            and all(a.labels.get(k) == v for k, v in labels.items())
        ]
        out.sort(key=lambda a: -a.seq)
        return out[:limit]

    def queued(self, profiles: Collection[str], limit: int) -> list[AnalysisRecord]:
        out = [
            a
            for a in self._s.analyses.values()
            if a.state == AnalysisState.QUEUED and a.scenario.profile in profiles
        ]
        out.sort(key=lambda a: (-a.priority, a.seq))
        return out[:limit]

    def append_event(
        self, analysis_id: str, stage: Stage, message: str, device_hours: float | None, time: float
    ) -> EventRecord:
        events = self._s.events.setdefault(analysis_id, [])
        ev = EventRecord(analysis_id, len(events) + 1, stage, message, device_hours, time)
        events.append(ev)

        def drop() -> None:
            events.pop()

        self.undo.append(drop)
        return ev

    def events(self, analysis_id: str, from_sequence: int, limit: int) -> list[EventRecord]:
        events = self._s.events.get(analysis_id, [])
        start = max(from_sequence, 1) - 1
        return events[start : start + limit]

    def insert_lease(self, rec: LeaseRecord) -> None:
        if rec.id in self._s.leases:
            raise KeyError(f"lease {rec.id} exists")
        self._put(self._s.leases, rec.id, rec)

    def get_lease(self, lease_id: str) -> LeaseRecord | None:
        return self._s.leases.get(lease_id)

    def update_lease(self, rec: LeaseRecord) -> None:
        if rec.id not in self._s.leases:
            raise KeyError(f"lease {rec.id} does not exist")
        self._put(self._s.leases, rec.id, rec)

    def leases(
        self, *, state: LeaseState, worker_id: str | None = None, deadline_before: float | None = None
    ) -> list[LeaseRecord]:
        return [
            rec
            for rec in self._s.leases.values()
            if rec.state == state
            and (worker_id is None or rec.worker_id == worker_id)
            and (deadline_before is None or rec.deadline < deadline_before)
        ]

    def put_worker(self, rec: WorkerRecord) -> None:
        self._put(self._s.workers, rec.id, rec)

    def get_worker(self, worker_id: str) -> WorkerRecord | None:
        return self._s.workers.get(worker_id)

    def put_firmware(self, rec: FirmwareRecord) -> None:
        if rec.sha256 not in self._s.firmware:
            self._put(self._s.firmware, rec.sha256, rec)

    def get_firmware(self, sha256: str) -> FirmwareRecord | None:
        return self._s.firmware.get(sha256)

    def put_report(self, analysis_id: str, report_json: str) -> None:
        self._put(self._s.reports, analysis_id, report_json)

    def get_report(self, analysis_id: str) -> str | None:
        return self._s.reports.get(analysis_id)

    def put_artifact(self, rec: ArtifactRecord) -> None:
        self._put(self._s.artifacts, f"{rec.lease_id}\0{rec.name}", rec)

    def artifacts(self, lease_id: str) -> list[ArtifactRecord]:
        out = [a for a in self._s.artifacts.values() if a.lease_id == lease_id]
        return sorted(out, key=lambda a: a.name)


class MemoryStore:
    """Everything in dicts; gone when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._blobs = MemoryBlobStore()
        self.seq = 0
        self.analyses: dict[str, AnalysisRecord] = {}
        self.events: dict[str, list[EventRecord]] = {}
        self.leases: dict[str, LeaseRecord] = {}
        self.workers: dict[str, WorkerRecord] = {}
        self.firmware: dict[str, FirmwareRecord] = {}
        self.reports: dict[str, str] = {}
        self.artifacts: dict[str, ArtifactRecord] = {}
        self.submissions: dict[str, str] = {}

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    shared = False  # one orchestrator process owns it; its own event bus sees every event

    def listen(self, on_event: Callable[[str, int], None]) -> None:
        """Nothing to listen to: every event is written by this process."""

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        with self._lock:
            tx = _MemoryTx(self)
            try:
                yield tx
            except BaseException:
                for undo in reversed(tx.undo):
                    undo()
                raise

    def close(self) -> None:
        pass
