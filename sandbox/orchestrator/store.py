"""The storage contract every backend implements.

The orchestrator's rules (leases, re-queueing, idempotent completion) are
written once in :mod:`.scheduler` and :mod:`.service` on top of these plain
reads and writes; a backend only has to make a ``transaction()`` atomic and
isolated.  Blobs (firmware and artifact bytes) live beside the tables in a
content-addressed :class:`BlobStore`, written before the row that names them,
so a row never points at missing bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol

from sandbox.model import Stage

from .model import (
    AnalysisRecord,
    AnalysisState,
    ArtifactRecord,
    BlobInfo,
    EventRecord,
    FirmwareRecord,
    LeaseRecord,
    LeaseState,
    WorkerRecord,
)


class BlobStore(Protocol):
    def write(self, chunks: Iterable[bytes], limit: int) -> BlobInfo:
        """Store the bytes; raise ``LimitExceeded`` (storing nothing) past ``limit``."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def open(self, sha256: str) -> BinaryIO:
        """Raise ``NotFound`` when absent."""
        ...


class StoreTx(Protocol):
    """Reads and writes inside one transaction."""

    def insert_analysis(self, rec: AnalysisRecord) -> AnalysisRecord:
        """Insert and return the record with its ``seq`` assigned."""
        ...

    def get_analysis(self, analysis_id: str) -> AnalysisRecord | None: ...

    def get_submission(self, request_id: str) -> str | None:
        """The analysis a submission with this idempotency key created.

        Two transactions asking for the same key at once are serialised until
        the first one ends, so a retry racing its original creates nothing.
        """
        ...

    def put_submission(self, request_id: str, analysis_id: str) -> None: ...

    def update_analysis(self, rec: AnalysisRecord) -> None: ...

    def list_analyses(
        self, *, state: AnalysisState | None, labels: Mapping[str, str], before_seq: int | None, limit: int
    ) -> list[AnalysisRecord]:
        """Newest first (descending ``seq``), only those with ``seq < before_seq``."""
        ...

    def queued(self, profiles: Collection[str], limit: int) -> list[AnalysisRecord]:
        """QUEUED analyses of these profiles: highest priority first, then oldest."""
        ...

    def append_event(
        self, analysis_id: str, stage: Stage, message: str, device_hours: float | None, time: float
    ) -> EventRecord:
        """Append with the next sequence number (1 for the first event)."""
        ...

    def events(self, analysis_id: str, from_sequence: int, limit: int) -> list[EventRecord]: ...

    def insert_lease(self, rec: LeaseRecord) -> None: ...

    def get_lease(self, lease_id: str) -> LeaseRecord | None: ...

    def update_lease(self, rec: LeaseRecord) -> None: ...

    def leases(
        self, *, state: LeaseState, worker_id: str | None = None, deadline_before: float | None = None
    ) -> list[LeaseRecord]: ...

    def put_worker(self, rec: WorkerRecord) -> None: ...

    def get_worker(self, worker_id: str) -> WorkerRecord | None: ...

    def put_firmware(self, rec: FirmwareRecord) -> None:
        """Insert, or keep the existing record of the same digest."""
        ...

    def get_firmware(self, sha256: str) -> FirmwareRecord | None: ...

    def put_report(self, analysis_id: str, report_json: str) -> None: ...

    def get_report(self, analysis_id: str) -> str | None: ...

    def put_artifact(self, rec: ArtifactRecord) -> None:
        """Insert or replace (same lease and name)."""
        ...

    def artifacts(self, lease_id: str) -> list[ArtifactRecord]:
        """By name."""
        ...


class Store(Protocol):
    @property
    def blobs(self) -> BlobStore: ...

    @property
    def shared(self) -> bool:
        """True when other orchestrators write to the same store (PostgreSQL).

        Their events reach this process only through ``listen``, which may miss
        some while the database is unreachable, so watchers re-read the store
        after each poll interval instead of trusting the local bus alone.
        """
        ...

    def listen(self, on_event: Callable[[str, int], None]) -> None:
        """Call ``on_event(analysis_id, sequence)`` for events other processes commit (no-op when not shared)."""
        ...

    def transaction(self) -> AbstractContextManager[StoreTx]:
        """Atomic and serialised: commits on normal exit, rolls back on an exception."""
        ...

    def close(self) -> None: ...


def read_chunks(stream: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    """Yield a blob in chunks and close it, also when the consumer stops early."""
    with stream:
        while chunk := stream.read(chunk_size):
            yield chunk
