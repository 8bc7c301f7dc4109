"""The client side of the orchestrator: firmware, submissions, queries, watching, cancelling.

Everything a ``honeyphone submit`` user can do goes through here; the gRPC
servicer only translates.  Page tokens are opaque to clients (``p1.<seq>``,
base64url-encoded) so the paging scheme can change without breaking them.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import BinaryIO

from sandbox.model import Scenario, Stage
from sandbox.settings import FleetSettings

from . import validation as v
from .errors import InvalidArgument, NotFound, PreconditionFailed
from .events import EventBus
from .journal import Journal
from .model import (
    TERMINAL_STAGES,
    AnalysisRecord,
    AnalysisState,
    ArtifactRecord,
    EventRecord,
    FirmwareRecord,
    Page,
    new_analysis_id,
)
from .scheduler import Clock, Scheduler
from .store import Store, StoreTx

WATCH_BATCH = 500


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"p1.{seq}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, seq = raw.split(".", 1)
        if prefix != "p1" or not seq.isascii() or not seq.isdigit() or int(seq) > v.MAX_SEQUENCE:
            raise ValueError(raw)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("page_token: not a token this server issued") from None


class AnalysisService:
    def __init__(
        self, store: Store, bus: EventBus, scheduler: Scheduler, settings: FleetSettings, clock: Clock = time.time
    ) -> None:
        self._store = store
        self._bus = bus
        self._scheduler = scheduler
        self._settings = settings
        self._clock = clock

    def upload_firmware(self, filename: str, chunks: Iterable[bytes]) -> FirmwareRecord:
        v.filename(filename)
        blob = self._store.blobs.write(chunks, self._settings.max_firmware_bytes)
        rec = FirmwareRecord(blob.sha256, blob.size, filename, self._clock())
        with self._store.transaction() as tx:
            tx.put_firmware(rec)
            stored = tx.get_firmware(blob.sha256)
        assert stored is not None
        return stored

    def submit(
        self, firmware_sha256: str, scenario: Scenario, priority: int, labels: Mapping[str, str],
        request_id: str = "",
    ) -> AnalysisRecord:
        """Queue an analysis; with ``request_id``, a repeat returns the first one's analysis instead."""
        v.sha256(firmware_sha256)
        v.scenario(scenario)
        v.priority(priority)
        clean_labels = v.labels(labels)
        v.request_id(request_id)
        now = self._clock()
        with self._store.transaction() as tx:
            if request_id and (first := tx.get_submission(request_id)) is not None:
                rec = self._get(tx, first)
                if (rec.firmware_sha256, rec.scenario, rec.priority, dict(rec.labels)) != (
                    firmware_sha256, scenario, priority, clean_labels,
                ):
                    raise PreconditionFailed(
                        f"request_id {request_id!r} was already used for another submission (analysis {rec.id})",
                        fix="use a new request_id for a new submission",
                    )
                return rec
            if tx.get_firmware(firmware_sha256) is None:
                raise NotFound(
                    f"firmware {firmware_sha256} was never uploaded", fix="upload it with UploadFirmware first"
                )
            journal = Journal(tx, now)
            rec = tx.insert_analysis(
                AnalysisRecord(
                    id=new_analysis_id(), firmware_sha256=firmware_sha256, scenario=scenario, priority=priority,
                    labels=clean_labels, state=AnalysisState.QUEUED, created_at=now, updated_at=now,
                    max_attempts=self._settings.max_attempts,
                )
            )
            if request_id:
                tx.put_submission(request_id, rec.id)
            rec = journal.emit(rec, Stage.QUEUED, f"queued with priority {priority}")
        journal.publish(self._bus)
        return rec

    def _get(self, tx: StoreTx, analysis_id: str) -> AnalysisRecord:
        rec = tx.get_analysis(v.analysis_id(analysis_id))
        if rec is None:
            raise NotFound(f"analysis {analysis_id} does not exist")
        return rec

    def get(self, analysis_id: str) -> tuple[AnalysisRecord, list[ArtifactRecord]]:
        with self._store.transaction() as tx:
            rec = self._get(tx, analysis_id)
            return rec, self._artifacts(tx, rec)

    @staticmethod
    def _artifacts(tx: StoreTx, rec: AnalysisRecord) -> list[ArtifactRecord]:
        if rec.state != AnalysisState.SUCCEEDED or rec.lease_id is None:
            return []
        return tx.artifacts(rec.lease_id)

    def list(
        self, state: AnalysisState | None, labels: Mapping[str, str], page_size: int, page_token: str
    ) -> tuple[Page, dict[str, list[ArtifactRecord]]]:
        size = v.page_size(page_size)
        before = _decode_token(page_token)
        wanted = v.labels(labels)
        with self._store.transaction() as tx:
            recs = tx.list_analyses(state=state, labels=wanted, before_seq=before, limit=size + 1)
            arts = {r.id: self._artifacts(tx, r) for r in recs[:size]}
        more = len(recs) > size
        recs = recs[:size]
        token = _encode_token(recs[-1].seq) if more and recs else ""
        return Page(tuple(recs), token), arts

    def cancel(self, analysis_id: str) -> AnalysisRecord:
        now = self._clock()
        with self._store.transaction() as tx:
            journal = Journal(tx, now)
            rec = self._get(tx, analysis_id)
            if rec.state == AnalysisState.CANCELLED:
                return rec
            if rec.state.terminal:
                raise PreconditionFailed(f"analysis {rec.id} already {rec.state.value}; it cannot be cancelled")
            if rec.lease_id is not None and rec.state == AnalysisState.RUNNING:
                self._scheduler.cancel_lease(tx, rec.lease_id)
            rec = journal.emit(rec, Stage.CANCELLED, "cancelled", state=AnalysisState.CANCELLED, finished_at=now)
        journal.publish(self._bus)
        return rec

    def report(self, analysis_id: str) -> tuple[AnalysisRecord, str]:
        with self._store.transaction() as tx:
            rec = self._get(tx, analysis_id)
            doc = tx.get_report(rec.id) if rec.state == AnalysisState.SUCCEEDED else None
        if doc is None:
            detail = f": {rec.error}" if rec.error else ""
            raise PreconditionFailed(f"analysis {rec.id} is {rec.state.value}; no report{detail}")
        return rec, doc

    def open_artifact(self, analysis_id: str, name: str) -> BinaryIO:
        v.artifact_name(name)
        with self._store.transaction() as tx:
            rec = self._get(tx, analysis_id)
            arts = {a.name: a for a in self._artifacts(tx, rec)}
        if name not in arts:
            have = ", ".join(arts) or "none"
            raise NotFound(f"analysis {rec.id} has no artifact {name!r} (it has: {have})")
        return self._store.blobs.open(arts[name].sha256)

    def watch(
        self, analysis_id: str, from_sequence: int, is_active: Callable[[], bool], poll_s: float = 1.0
    ) -> Iterator[EventRecord]:
        """Events from ``from_sequence`` on, live, until the terminal one (or the caller leaves)."""
        v.analysis_id(analysis_id)
        v.sequence(from_sequence)
        with self._store.transaction() as tx:
            self._get(tx, analysis_id)
        return self._watch(analysis_id, max(from_sequence, 1), is_active, poll_s)

    def _watch(
        self, analysis_id: str, next_seq: int, is_active: Callable[[], bool], poll_s: float
    ) -> Iterator[EventRecord]:
        with self._bus.subscribe(analysis_id) as sub:
            while True:
                with self._store.transaction() as tx:
                    batch = tx.events(analysis_id, next_seq, WATCH_BATCH)
                    terminal_state = not batch and self._get(tx, analysis_id).state.terminal
                for ev in batch:
                    yield ev
                    if ev.stage in TERMINAL_STAGES:
                        return
                if terminal_state:  # resumed past the terminal event
                    return
                if batch:
                    next_seq = batch[-1].sequence + 1
                    if len(batch) == WATCH_BATCH:
                        continue
                while not sub.wait(next_seq - 1, poll_s):
                    if not is_active() or self._bus.closed:
                        return
                    if self._store.shared:  # another orchestrator's event may have slipped past the bus
                        break
                if self._bus.closed:
                    return
