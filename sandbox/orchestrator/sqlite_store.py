"""The embedded default ``Store``: SQLite in WAL mode plus blobs on disk.

Layout under the data dir: ``orchestrator.sqlite3`` (tables) and ``blobs/``
(content-addressed firmware and artifacts).  WAL with ``synchronous=NORMAL``
survives a killed process without losing a committed transaction, which is the
crash the farm has to ride out; one connection behind one lock keeps the
transaction rules trivially serialisable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sandbox.model import Scenario, Stage, Verdict
from sandbox.errors import EnvironmentProblem

from .blobs import DiskBlobStore
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

SCHEMA_VERSION = 2  # 2: submissions (idempotency keys)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL,
  priority INTEGER NOT NULL,
  profile TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS analyses_queue ON analyses (state, profile, priority DESC, seq);
CREATE TABLE IF NOT EXISTS analysis_labels (
  seq INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (seq, key)
);
CREATE INDEX IF NOT EXISTS analysis_labels_kv ON analysis_labels (key, value);
CREATE TABLE IF NOT EXISTS events (
  analysis_id TEXT NOT NULL, sequence INTEGER NOT NULL, stage TEXT NOT NULL,
  message TEXT NOT NULL, device_hours REAL, time REAL NOT NULL,
  PRIMARY KEY (analysis_id, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
  id TEXT PRIMARY KEY, analysis_id TEXT NOT NULL, worker_id TEXT NOT NULL, state TEXT NOT NULL,
  deadline REAL NOT NULL, attempt INTEGER NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_state ON leases (state, deadline);
CREATE TABLE IF NOT EXISTS workers (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, slots INTEGER NOT NULL, profiles TEXT NOT NULL,
  registered_at REAL NOT NULL, last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS firmware (
  sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, filename TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (request_id TEXT PRIMARY KEY, analysis_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (analysis_id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
  lease_id TEXT NOT NULL, name TEXT NOT NULL, analysis_id TEXT NOT NULL, sha256 TEXT NOT NULL,
  size INTEGER NOT NULL, PRIMARY KEY (lease_id, name)
);
"""


def _analysis_doc(rec: AnalysisRecord) -> str:
    d: dict[str, Any] = asdict(rec)
    d["labels"] = dict(rec.labels)
    d["state"] = rec.state.value
    d["stage"] = rec.stage.value
    d["verdict"] = rec.verdict.value if rec.verdict else None
    d.pop("seq")
    return json.dumps(d, sort_keys=True)


def _analysis_from(seq: int, doc: str) -> AnalysisRecord:
    d = json.loads(doc)
    d["scenario"] = Scenario(**d["scenario"])
    d["state"] = AnalysisState(d["state"])
    d["stage"] = Stage(d["stage"])
    d["verdict"] = Verdict(d["verdict"]) if d["verdict"] else None
    return AnalysisRecord(seq=seq, **d)


def _lease_from(row: sqlite3.Row) -> LeaseRecord:
    return LeaseRecord(
        row["id"], row["analysis_id"], row["worker_id"], LeaseState(row["state"]),
        row["deadline"], row["attempt"], row["created_at"],
    )


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def insert_analysis(self, rec: AnalysisRecord) -> AnalysisRecord:
        cur = self._c.execute(
            "INSERT INTO analyses (id, state, priority, profile, doc) VALUES (?, ?, ?, ?, ?)",
            (rec.id, rec.state.value, rec.priority, rec.scenario.profile, _analysis_doc(rec)),
        )
        seq = int(cur.lastrowid or 0)
        self._c.executemany(
            "INSERT INTO analysis_labels (seq, key, value) VALUES (?, ?, ?)",
            [(seq, k, v) for k, v in rec.labels.items()],
        )
        return replace(rec, seq=seq)

    def get_analysis(self, analysis_id: str) -> AnalysisRecord | None:
        row = self._c.execute("SELECT seq, doc FROM analyses WHERE id = ?", (analysis_id,)).fetchone()
        return _analysis_from(row["seq"], row["doc"]) if row else None

    def get_submission(self, request_id: str) -> str | None:
        row = self._c.execute("SELECT analysis_id FROM submissions WHERE request_id = ?", (request_id,)).fetchone()
        return str(row["analysis_id"]) if row else None

    def put_submission(self, request_id: str, analysis_id: str) -> None:
        self._c.execute("INSERT INTO submissions (request_id, analysis_id) VALUES (?, ?)", (request_id, analysis_id))

    def update_analysis(self, rec: AnalysisRecord) -> None:
        cur = self._c.execute(
            "UPDATE analyses SET state = ?, priority = ?, doc = ? WHERE id = ?",
            (rec.state.value, rec.priority, _analysis_doc(rec), rec.id),
        )
        if cur.rowcount != 1:
            raise KeyError(f"analysis {rec.id} does not exist")

    def list_analyses(
        self, *, state: AnalysisState | None, labels: Mapping[str, str], before_seq: int | None, limit: int
    ) -> list[AnalysisRecord]:
        sql = "SELECT seq, doc FROM analyses WHERE 1 = 1"
        args: list[object] = []
        if state is not None:
            sql += " AND state = ?"
            args.append(state.value)
        if before_seq is not None:
            sql += " AND seq < ?"
            args.append(before_seq)
        for k, v in sorted(labels.items()):
            sql += " AND seq IN (SELECT seq FROM analysis_labels WHERE key = ? AND value = ?)"
            args += [k, v]
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        return [_analysis_from(r["seq"], r["doc"]) for r in self._c.execute(sql, args)]

    def queued(self, profiles: Collection[str], limit: int) -> list[AnalysisRecord]:
        profiles = list(profiles)
        if not profiles:
            return []
        marks = ",".join("?" * len(profiles))
        rows = self._c.execute(
            f"SELECT seq, doc FROM analyses WHERE state = ? AND profile IN ({marks})"
            " ORDER BY priority DESC, seq LIMIT ?",
            [AnalysisState.QUEUED.value, *profiles, limit],
        )
        return [_analysis_from(r["seq"], r["doc"]) for r in rows]

    def append_event(
        self, analysis_id: str, stage: Stage, message: str, device_hours: float | None, time: float
    ) -> EventRecord:
        row = self._c.execute(
            "SELECT COALESCE(MAX(sequence), 0) AS last FROM events WHERE analysis_id = ?", (analysis_id,)
        ).fetchone()
        ev = EventRecord(analysis_id, int(row["last"]) + 1, stage, message, device_hours, time)
        self._c.execute(
            "INSERT INTO events (analysis_id, sequence, stage, message, device_hours, time) VALUES (?, ?, ?, ?, ?, ?)",
            (ev.analysis_id, ev.sequence, ev.stage.value, ev.message, ev.device_hours, ev.time),
        )
        return ev

    def events(self, analysis_id: str, from_sequence: int, limit: int) -> list[EventRecord]:
        rows = self._c.execute(
            "SELECT * FROM events WHERE analysis_id = ? AND sequence >= ? ORDER BY sequence LIMIT ?",
            (analysis_id, from_sequence, limit),
        )
        return [
            EventRecord(r["analysis_id"], r["sequence"], Stage(r["stage"]), r["message"], r["device_hours"], r["time"])
            for r in rows
        ]

    def insert_lease(self, rec: LeaseRecord) -> None:
        self._c.execute(
            "INSERT INTO leases (id, analysis_id, worker_id, state, deadline, attempt, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rec.id, rec.analysis_id, rec.worker_id, rec.state.value, rec.deadline, rec.attempt, rec.created_at),
        )

    def get_lease(self, lease_id: str) -> LeaseRecord | None:
        row = self._c.execute("SELECT * FROM leases WHERE id = ?", (lease_id,)).fetchone()
        return _lease_from(row) if row else None

    def update_lease(self, rec: LeaseRecord) -> None:
        cur = self._c.execute(
            "UPDATE leases SET state = ?, deadline = ?, worker_id = ? WHERE id = ?",
            (rec.state.value, rec.deadline, rec.worker_id, rec.id),
        )
        if cur.rowcount != 1:
            raise KeyError(f"lease {rec.id} does not exist")

    def leases(
        self, *, state: LeaseState, worker_id: str | None = None, deadline_before: float | None = None
    ) -> list[LeaseRecord]:
        sql = "SELECT * FROM leases WHERE state = ?"
        args: list[object] = [state.value]
        if worker_id is not None:
            sql += " AND worker_id = ?"
            args.append(worker_id)
        if deadline_before is not None:
            sql += " AND deadline < ?"
            args.append(deadline_before)
        return [_lease_from(r) for r in self._c.execute(sql + " ORDER BY created_at, id", args)]

    def put_worker(self, rec: WorkerRecord) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO workers (id, name, slots, profiles, registered_at, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (rec.id, rec.name, rec.slots, json.dumps(list(rec.profiles)), rec.registered_at, rec.last_seen),
        )

    def get_worker(self, worker_id: str) -> WorkerRecord | None:
        r = self._c.execute("SELECT * FROM workers WHERE id = ?", (worker_id,)).fetchone()
        if r is None:
            return None
        return WorkerRecord(
            r["id"], r["name"], r["slots"], tuple(json.loads(r["profiles"])), r["registered_at"], r["last_seen"]
        )

    def put_firmware(self, rec: FirmwareRecord) -> None:
        self._c.execute(
            "INSERT OR IGNORE INTO firmware (sha256, size, filename, created_at) VALUES (?, ?, ?, ?)",
            (rec.sha256, rec.size, rec.filename, rec.created_at),
        )

    def get_firmware(self, sha256: str) -> FirmwareRecord | None:
        r = self._c.execute("SELECT * FROM firmware WHERE sha256 = ?", (sha256,)).fetchone()
        return FirmwareRecord(r["sha256"], r["size"], r["filename"], r["created_at"]) if r else None

    def put_report(self, analysis_id: str, report_json: str) -> None:
        self._c.execute("INSERT OR REPLACE INTO reports (analysis_id, json) VALUES (?, ?)", (analysis_id, report_json))

    def get_report(self, analysis_id: str) -> str | None:
        r = self._c.execute("SELECT json FROM reports WHERE analysis_id = ?", (analysis_id,)).fetchone()
        return str(r["json"]) if r else None

    def put_artifact(self, rec: ArtifactRecord) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO artifacts (lease_id, name, analysis_id, sha256, size) VALUES (?, ?, ?, ?, ?)",
            (rec.lease_id, rec.name, rec.analysis_id, rec.sha256, rec.size),
        )

    def artifacts(self, lease_id: str) -> list[ArtifactRecord]:
        rows = self._c.execute("SELECT * FROM artifacts WHERE lease_id = ? ORDER BY name", (lease_id,))
        return [ArtifactRecord(r["lease_id"], r["analysis_id"], r["name"], r["sha256"], r["size"]) for r in rows]


class SqliteStore:
    """Opens (creating when needed) the store under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._blobs = DiskBlobStore(data_dir / "blobs")
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            data_dir / "orchestrator.sqlite3", isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise EnvironmentProblem(
                f"the store in {data_dir} has schema {version}, newer than this Honeyphone's {SCHEMA_VERSION}",
                fix="run the Honeyphone version that created it, or point --data-dir elsewhere",
            )
        with self._lock:
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    shared = False  # one orchestrator process owns it; its own event bus sees every event

    def listen(self, on_event: Callable[[str, int], None]) -> None:
        """Nothing to listen to: every event is written by this process."""

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
