"""The fleet side of the orchestrator: workers, leases, heartbeats, completion.

Rules, in one place for every store backend:

* ``lease`` hands out QUEUED analyses the worker's profiles can run, highest
  priority first and oldest first within one, never more than the worker's free
  slots; each lease counts as one attempt.
* A lease lives until its deadline; a heartbeat naming it moves the deadline
  ``lease_seconds`` on.  ``expire_due`` re-queues the analysis of an expired
  lease, or fails it once ``max_attempts`` leases are used up.
* ``complete`` is idempotent: the first completion of an active lease decides
  the analysis; repeating it answers "duplicate"; a completion for a lease that
  expired, was cancelled or released is ignored with the reason, so a worker
  that lost its lease can never produce a second report.
* When the store was unreachable (a shared database restarting), no worker
  could heartbeat meanwhile, so the first ``expire_due`` after it answers
  again gives every active lease a full term first (as ``recover`` does after
  a restart): an outage longer than a lease term does not re-run everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import BinaryIO

from sandbox.model import Stage
from sandbox.settings import FleetSettings

from . import validation as v
from .errors import InvalidArgument, NotFound, PreconditionFailed, StoreUnavailable
from .events import EventBus
from .journal import Journal
from .model import (
    AnalysisState,
    ArtifactRecord,
    Completion,
    CompletionResult,
    HeartbeatResult,
    LeaseGrant,
    LeaseRecord,
    LeaseState,
    WorkerProgress,
    WorkerRecord,
    new_lease_id,
    new_worker_id,
)
from .store import Store, StoreTx

Clock = Callable[[], float]

_STALE_REASONS = {
    LeaseState.EXPIRED: "the lease expired and the analysis was queued again or failed; another worker owns it now",
    LeaseState.CANCELLED: "the analysis was cancelled",
    LeaseState.RELEASED: "the lease was already given back with a retryable error",
}


class Scheduler:
    def __init__(self, store: Store, bus: EventBus, settings: FleetSettings, clock: Clock = time.time) -> None:
        self._store = store
        self._bus = bus
        self._settings = settings
        self._clock = clock
        self._store_was_down = False

    @contextmanager
    def _tx(self) -> Iterator[StoreTx]:
        try:
            with self._store.transaction() as tx:
                yield tx
        except StoreUnavailable:
            self._store_was_down = True
            raise

    @property
    def lease_seconds(self) -> int:
        return self._settings.lease_seconds

    def register_worker(self, name: str, slots: int, profiles: Iterable[str]) -> WorkerRecord:
        rec = WorkerRecord(
            new_worker_id(), v.worker_name(name), v.slots(slots), v.profiles(profiles), self._clock(), self._clock()
        )
        with self._tx() as tx:
            tx.put_worker(rec)
        return rec

    def _worker(self, tx: StoreTx, worker_id: str) -> WorkerRecord:
        rec = tx.get_worker(v.worker_id(worker_id))
        if rec is None:
            raise NotFound(f"worker {worker_id} is not registered", fix="register the worker again")
        return rec

    def lease(self, worker_id: str, max_leases: int) -> list[LeaseGrant]:
        if not 1 <= max_leases <= v.MAX_SLOTS:
            raise InvalidArgument(f"max: {max_leases} is out of range 1..{v.MAX_SLOTS}")
        self.expire_due()
        now = self._clock()
        with self._tx() as tx:
            journal = Journal(tx, now)
            worker = self._worker(tx, worker_id)
            tx.put_worker(replace(worker, last_seen=now))
            free = worker.slots - len(tx.leases(state=LeaseState.ACTIVE, worker_id=worker.id))
            granted: list[LeaseGrant] = []
            for rec in tx.queued(worker.profiles, min(max_leases, free)) if free > 0 else []:
                attempt = rec.attempts + 1
                lease = LeaseRecord(
                    new_lease_id(), rec.id, worker.id, LeaseState.ACTIVE, now + self.lease_seconds, attempt, now
                )
                tx.insert_lease(lease)
                rec = journal.emit(
                    rec, Stage.LEASED, f"leased to worker {worker.name} (attempt {attempt} of {rec.max_attempts})",
                    state=AnalysisState.RUNNING, attempts=attempt, worker_id=worker.id, lease_id=lease.id,
                )
                granted.append(
                    LeaseGrant(rec.id, lease.id, lease.deadline, rec.scenario, rec.firmware_sha256, rec.labels, attempt)
                )
        journal.publish(self._bus)
        return granted

    def heartbeat(self, worker_id: str, progress: Iterable[WorkerProgress]) -> HeartbeatResult:
        progress = list(progress)
        v.heartbeat_leases(len(progress))
        for i, p in enumerate(progress):  # validate everything before changing anything
            v.lease_id(p.lease_id, f"leases[{i}].lease_id")
            if len(p.events) > v.MAX_EVENTS_PER_LEASE:
                raise InvalidArgument(f"leases[{i}].events: {len(p.events)}, at most {v.MAX_EVENTS_PER_LEASE}")
            for j, (stage, message, hours) in enumerate(p.events):
                v.worker_event(stage, message, hours, f"leases[{i}].events[{j}]")
        now = self._clock()
        cancelled: list[str] = []
        expired: list[str] = []
        with self._tx() as tx:
            journal = Journal(tx, now)
            worker = self._worker(tx, worker_id)
            tx.put_worker(replace(worker, last_seen=now))
            for p in progress:
                lease = tx.get_lease(p.lease_id)
                if lease is None or lease.worker_id != worker.id:
                    expired.append(p.lease_id)
                elif lease.state == LeaseState.CANCELLED:
                    cancelled.append(lease.id)
                elif lease.state != LeaseState.ACTIVE:
                    expired.append(lease.id)
                else:
                    tx.update_lease(replace(lease, deadline=now + self.lease_seconds))
                    rec = tx.get_analysis(lease.analysis_id)
                    for stage, message, hours in p.events:
                        if rec is not None:
                            rec = journal.emit(rec, stage, message, hours)
        journal.publish(self._bus)
        return HeartbeatResult(tuple(cancelled), tuple(expired))

    def _active_lease(self, tx: StoreTx, lease_id: str, worker_id: str | None = None) -> LeaseRecord:
        lease = tx.get_lease(v.lease_id(lease_id))
        if lease is None or (worker_id is not None and lease.worker_id != worker_id):
            raise NotFound(f"lease {lease_id} does not exist")
        if lease.state != LeaseState.ACTIVE:
            raise PreconditionFailed(f"lease {lease_id} is {lease.state.value}: {_STALE_REASONS.get(lease.state, '')}")
        return lease

    def open_firmware(self, worker_id: str, lease_id: str) -> BinaryIO:
        with self._tx() as tx:
            lease = self._active_lease(tx, lease_id, v.worker_id(worker_id))
            rec = tx.get_analysis(lease.analysis_id)
            assert rec is not None
        return self._store.blobs.open(rec.firmware_sha256)

    def upload_artifact(self, lease_id: str, name: str, chunks: Iterable[bytes]) -> ArtifactRecord:
        v.artifact_name(name)
        with self._tx() as tx:
            self._active_lease(tx, lease_id)
        blob = self._store.blobs.write(chunks, self._settings.max_artifact_bytes)
        with self._tx() as tx:
            lease = self._active_lease(tx, lease_id)
            rec = ArtifactRecord(lease.id, lease.analysis_id, name, blob.sha256, blob.size)
            tx.put_artifact(rec)
        return rec

    def complete(self, c: Completion) -> CompletionResult:
        v.lease_id(c.lease_id)
        if c.error is not None:
            v.error_text(c.error)
        else:
            if c.verdict is None:
                raise InvalidArgument("verdict: required when error is empty")
            v.report_json(c.report_json, self._settings.max_report_bytes)
        now = self._clock()
        with self._tx() as tx:
            journal = Journal(tx, now)
            lease = tx.get_lease(c.lease_id)
            if lease is None:
                raise NotFound(f"lease {c.lease_id} does not exist")
            rec = tx.get_analysis(lease.analysis_id)
            assert rec is not None
            if lease.state == LeaseState.COMPLETED:
                return CompletionResult(True, True, "", rec.state)
            if lease.state != LeaseState.ACTIVE:
                return CompletionResult(False, False, _STALE_REASONS[lease.state], rec.state)
            if c.error is None:
                assert c.verdict is not None
                tx.put_report(rec.id, c.report_json)
                tx.update_lease(replace(lease, state=LeaseState.COMPLETED))
                rec = journal.emit(
                    rec, Stage.FINISHED, f"verdict: {c.verdict.value}",
                    state=AnalysisState.SUCCEEDED, verdict=c.verdict, finished_at=now, error=None,
                )
            elif c.retryable and rec.attempts < rec.max_attempts:
                tx.update_lease(replace(lease, state=LeaseState.RELEASED))
                rec = journal.emit(
                    rec, Stage.QUEUED, f"attempt {rec.attempts} failed ({c.error}); queued again",
                    state=AnalysisState.QUEUED, worker_id=None, lease_id=None,
                )
            else:
                tx.update_lease(replace(lease, state=LeaseState.COMPLETED))
                rec = journal.emit(
                    rec, Stage.FAILED, c.error, state=AnalysisState.FAILED, error=c.error, finished_at=now
                )
        journal.publish(self._bus)
        return CompletionResult(True, False, "", rec.state)

    def expire_due(self) -> int:
        """Expire every lease past its deadline; return how many."""
        if self._store_was_down:
            self.recover()
            self._store_was_down = False
        now = self._clock()
        with self._tx() as tx:
            journal = Journal(tx, now)
            due = tx.leases(state=LeaseState.ACTIVE, deadline_before=now)
            for lease in due:
                tx.update_lease(replace(lease, state=LeaseState.EXPIRED))
                rec = tx.get_analysis(lease.analysis_id)
                if rec is None or rec.lease_id != lease.id or rec.state != AnalysisState.RUNNING:
                    continue
                worker = tx.get_worker(lease.worker_id)
                who = worker.name if worker else lease.worker_id
                if rec.attempts >= rec.max_attempts:
                    error = (
                        f"gave up after {rec.attempts} attempts: the lease of worker {who} expired "
                        f"(no heartbeat for {self.lease_seconds}s)"
                    )
                    journal.emit(rec, Stage.FAILED, error, state=AnalysisState.FAILED, error=error, finished_at=now)
                else:
                    journal.emit(
                        rec, Stage.QUEUED,
                        f"worker {who} stopped heartbeating; queued again ({rec.attempts} of {rec.max_attempts} attempts used)",
                        state=AnalysisState.QUEUED, worker_id=None, lease_id=None,
                    )
        journal.publish(self._bus)
        return len(due)

    def recover(self) -> int:
        """After a restart, give every active lease a full term so live workers can reconnect."""
        now = self._clock()
        with self._tx() as tx:
            active = tx.leases(state=LeaseState.ACTIVE)
            for lease in active:
                tx.update_lease(replace(lease, deadline=max(lease.deadline, now + self.lease_seconds)))
        return len(active)

    def cancel_lease(self, tx: StoreTx, lease_id: str) -> None:
        """Mark the active lease of a cancelled analysis; the worker hears at its next heartbeat."""
        lease = tx.get_lease(lease_id)
        if lease is not None and lease.state == LeaseState.ACTIVE:
            tx.update_lease(replace(lease, state=LeaseState.CANCELLED))
