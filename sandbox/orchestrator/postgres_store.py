"""The shared ``Store``: PostgreSQL (psycopg 3), for several orchestrators on one database.

``honeyphone serve --store postgresql://…`` picks it; SQLite stays the embedded
default.  What changes when more than one orchestrator writes:

* **Row locks, not a global lock.**  SQLite serialises every transaction with
  one write lock; here two orchestrators run at once, so every read a
  transaction may act on locks its row (``SELECT … FOR UPDATE``).  An analysis
  row is always locked before the lease rows that point at it (``get_lease``
  locks the analysis first), so no two transactions wait on each other in a
  circle.  ``queued()`` takes ``FOR UPDATE SKIP LOCKED``: two orchestrators
  leasing at once each get different analyses, never the same one, and never
  wait for each other; ``leases(deadline_before=…)`` (the reaper) skips rows
  another orchestrator is already changing.  A worker's free slots are counted
  after ``put_worker`` has locked its row, so two leases for one worker
  through two orchestrators cannot overbook it.
* **Events across processes.**  ``append_event`` sends ``NOTIFY`` in the same
  statement, delivered when the transaction commits; ``listen()`` runs a thread
  on its own connection that hands every ``(analysis_id, sequence)`` to the
  local event bus, so a Watch on orchestrator B wakes for an event written
  through A.  Notifications sent while that connection is down are lost, so
  the store is ``shared`` and the service re-reads the events table whenever a
  watch has waited one poll interval.
* **Blobs in the database**, as rows of at most 1 MiB (``blob_chunks``), so
  every orchestrator reads what any other stored without a shared disk.
  An upload streams its rows into one transaction, on a connection of its own
  (a slow client must not hold a pooled one), keyed by a random upload id,
  and commits only once the sha256 is known and not yet stored, so a crashed
  or duplicate upload leaves nothing.  A blob may not exceed
  ``MAX_BLOB_BYTES`` (2 GiB) whatever the configured upload limits say.
* **Connections** per orchestrator: at most ``store_pool_size`` for
  requests, one per upload in progress (at most ``max_concurrent_uploads``)
  and one for LISTEN; size the server's ``max_connections`` for the sum over
  all orchestrators.
* **Outages.**  A dead connection is thrown away; the next transaction opens
  a new one (retrying ``BEGIN`` once, since after a server restart every
  pooled connection is stale).  While the server is down every transaction
  raises ``StoreUnavailable``, which the API answers as ``UNAVAILABLE``.
* **Migrations** are numbered, recorded in ``schema_migrations`` and run at
  start under ``pg_advisory_lock``, so orchestrators starting together apply
  each one exactly once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import Any, BinaryIO

import psycopg
from psycopg.rows import dict_row

from sandbox.model import Scenario, Stage, Verdict
from sandbox.errors import EnvironmentProblem

from .errors import LimitExceeded, NotFound, StoreUnavailable
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
from .store import BlobStore, StoreTx

_log = logging.getLogger(__name__)

CHANNEL = "honeyphone_events"
CHUNK_BYTES = 1024 * 1024
MAX_BLOB_BYTES = 2 * 1024 * 1024 * 1024
# pg_advisory_lock key of the migrations: "hpmigrat" as a big-endian int64.
MIGRATION_LOCK = int.from_bytes(b"hpmigrat", "big") & 0x7FFF_FFFF_FFFF_FFFF
SUBMISSION_LOCK = 0x6870_7375  # "hpsu": the first key of the two-key advisory locks on idempotency keys

# Each entry is applied once, in order, in its own transaction; never edit an
# entry that has shipped, append a new one.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE analyses (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL,
  priority INTEGER NOT NULL,
  profile TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX analyses_queue ON analyses (state, profile, priority DESC, seq);
CREATE TABLE analysis_labels (
  seq BIGINT NOT NULL REFERENCES analyses (seq), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (seq, key)
);
CREATE INDEX analysis_labels_kv ON analysis_labels (key, value);
CREATE TABLE events (
  analysis_id TEXT NOT NULL, sequence INTEGER NOT NULL, stage TEXT NOT NULL,
  message TEXT NOT NULL, device_hours DOUBLE PRECISION, time DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (analysis_id, sequence)
);
CREATE TABLE leases (
  id TEXT PRIMARY KEY, analysis_id TEXT NOT NULL, worker_id TEXT NOT NULL, state TEXT NOT NULL,
  deadline DOUBLE PRECISION NOT NULL, attempt INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX leases_state ON leases (state, deadline);
CREATE INDEX leases_worker ON leases (worker_id, state);
CREATE TABLE workers (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, slots INTEGER NOT NULL, profiles TEXT NOT NULL,
  registered_at DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL
);
CREATE TABLE firmware (
  sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, filename TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE reports (analysis_id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE artifacts (
  lease_id TEXT NOT NULL, name TEXT NOT NULL, analysis_id TEXT NOT NULL, sha256 TEXT NOT NULL,
  size BIGINT NOT NULL, PRIMARY KEY (lease_id, name)
);
CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, chunks INTEGER NOT NULL, upload TEXT NOT NULL UNIQUE
);
CREATE TABLE blob_chunks (
  upload TEXT NOT NULL, n INTEGER NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (upload, n)
);
"""),
    (2, """
CREATE TABLE submissions (request_id TEXT PRIMARY KEY, analysis_id TEXT NOT NULL);
"""),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


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


def _lease_from(r: dict[str, Any]) -> LeaseRecord:
    return LeaseRecord(
        r["id"], r["analysis_id"], r["worker_id"], LeaseState(r["state"]), r["deadline"], r["attempt"], r["created_at"]
    )


_LEASE_COLS = "l.id, l.analysis_id, l.worker_id, l.state, l.deadline, l.attempt, l.created_at"
_Conn = psycopg.Connection[dict[str, Any]]


class _PgTx:
    def __init__(self, conn: _Conn) -> None:
        self._c = conn

    def _one(self, sql: str, args: Iterable[object]) -> dict[str, Any] | None:
        return self._c.execute(sql, tuple(args)).fetchone()

    def insert_analysis(self, rec: AnalysisRecord) -> AnalysisRecord:
        row = self._one(
            "INSERT INTO analyses (id, state, priority, profile, doc) VALUES (%s, %s, %s, %s, %s) RETURNING seq",
            (rec.id, rec.state.value, rec.priority, rec.scenario.profile, _analysis_doc(rec)),
        )
        assert row is not None
        seq = int(row["seq"])
        if rec.labels:
            with self._c.cursor() as cur:
                cur.executemany(
                    "INSERT INTO analysis_labels (seq, key, value) VALUES (%s, %s, %s)",
                    [(seq, k, v) for k, v in rec.labels.items()],
                )
        return replace(rec, seq=seq)

    def get_analysis(self, analysis_id: str) -> AnalysisRecord | None:
        row = self._one("SELECT seq, doc FROM analyses WHERE id = %s FOR UPDATE", (analysis_id,))
        return _analysis_from(row["seq"], row["doc"]) if row else None

    def get_submission(self, request_id: str) -> str | None:
        # Serialise submissions of one key (on any orchestrator) until this transaction ends.
        self._c.execute("SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))", (SUBMISSION_LOCK, request_id))
        row = self._one("SELECT analysis_id FROM submissions WHERE request_id = %s", (request_id,))
        return str(row["analysis_id"]) if row else None

    def put_submission(self, request_id: str, analysis_id: str) -> None:
        self._c.execute("INSERT INTO submissions (request_id, analysis_id) VALUES (%s, %s)", (request_id, analysis_id))

    def update_analysis(self, rec: AnalysisRecord) -> None:
        cur = self._c.execute(
            "UPDATE analyses SET state = %s, priority = %s, doc = %s WHERE id = %s",
            (rec.state.value, rec.priority, _analysis_doc(rec), rec.id),
        )
        if cur.rowcount != 1:
            raise KeyError(f"analysis {rec.id} does not exist")

    def list_analyses(
        self, *, state: AnalysisState | None, labels: Mapping[str, str], before_seq: int | None, limit: int
    ) -> list[AnalysisRecord]:
        sql = "SELECT seq, doc FROM analyses WHERE TRUE"
        args: list[object] = []
        if state is not None:
            sql += " AND state = %s"
            args.append(state.value)
        if before_seq is not None:
            sql += " AND seq < %s"
            args.append(before_seq)
        for k, v in sorted(labels.items()):
            sql += " AND seq IN (SELECT seq FROM analysis_labels WHERE key = %s AND value = %s)"
            args += [k, v]
        sql += " ORDER BY seq DESC LIMIT %s"
        args.append(limit)
        return [_analysis_from(r["seq"], r["doc"]) for r in self._c.execute(sql, args)]

    def queued(self, profiles: Collection[str], limit: int) -> list[AnalysisRecord]:
        profiles = list(profiles)
        if not profiles:
            return []
        rows = self._c.execute(
            "SELECT seq, doc FROM analyses WHERE state = %s AND profile = ANY(%s)"
            " ORDER BY priority DESC, seq LIMIT %s FOR UPDATE SKIP LOCKED",
            (AnalysisState.QUEUED.value, profiles, limit),
        )
        return [_analysis_from(r["seq"], r["doc"]) for r in rows]

    def append_event(
        self, analysis_id: str, stage: Stage, message: str, device_hours: float | None, time: float
    ) -> EventRecord:
        # One round trip: the next sequence, the insert and the NOTIFY (sent at commit).
        row = self._one(
            "WITH ev AS (INSERT INTO events (analysis_id, sequence, stage, message, device_hours, time)"
            " SELECT %s, COALESCE(MAX(sequence), 0) + 1, %s, %s, %s, %s FROM events WHERE analysis_id = %s"
            " RETURNING sequence)"
            " SELECT sequence, pg_notify(%s, %s::text || ':' || sequence::text) FROM ev",
            (analysis_id, stage.value, message, device_hours, time, analysis_id, CHANNEL, analysis_id),
        )
        assert row is not None
        return EventRecord(analysis_id, int(row["sequence"]), stage, message, device_hours, time)

    def events(self, analysis_id: str, from_sequence: int, limit: int) -> list[EventRecord]:
        rows = self._c.execute(
            "SELECT * FROM events WHERE analysis_id = %s AND sequence >= %s ORDER BY sequence LIMIT %s",
            (analysis_id, from_sequence, limit),
        )
        return [
            EventRecord(r["analysis_id"], r["sequence"], Stage(r["stage"]), r["message"], r["device_hours"], r["time"])
            for r in rows
        ]

    def insert_lease(self, rec: LeaseRecord) -> None:
        self._c.execute(
            "INSERT INTO leases (id, analysis_id, worker_id, state, deadline, attempt, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (rec.id, rec.analysis_id, rec.worker_id, rec.state.value, rec.deadline, rec.attempt, rec.created_at),
        )

    def get_lease(self, lease_id: str) -> LeaseRecord | None:
        # The analysis first, then the lease: the one lock order every transaction follows.
        self._c.execute(
            "SELECT 1 FROM analyses WHERE id = (SELECT analysis_id FROM leases WHERE id = %s) FOR UPDATE", (lease_id,)
        )
        row = self._one(f"SELECT {_LEASE_COLS} FROM leases l WHERE l.id = %s FOR UPDATE", (lease_id,))
        return _lease_from(row) if row else None

    def update_lease(self, rec: LeaseRecord) -> None:
        cur = self._c.execute(
            "UPDATE leases SET state = %s, deadline = %s, worker_id = %s WHERE id = %s",
            (rec.state.value, rec.deadline, rec.worker_id, rec.id),
        )
        if cur.rowcount != 1:
            raise KeyError(f"lease {rec.id} does not exist")

    def leases(
        self, *, state: LeaseState, worker_id: str | None = None, deadline_before: float | None = None
    ) -> list[LeaseRecord]:
        sql = f"SELECT {_LEASE_COLS} FROM leases l"
        args: list[object] = []
        if deadline_before is not None:  # the reaper: lock analysis and lease, skip what others hold
            sql += " JOIN analyses a ON a.id = l.analysis_id"
        sql += " WHERE l.state = %s"
        args.append(state.value)
        if worker_id is not None:
            sql += " AND l.worker_id = %s"
            args.append(worker_id)
        if deadline_before is not None:
            sql += " AND l.deadline < %s ORDER BY l.created_at, l.id FOR UPDATE OF a, l SKIP LOCKED"
            args.append(deadline_before)
        else:
            sql += " ORDER BY l.created_at, l.id"
        return [_lease_from(r) for r in self._c.execute(sql, args)]

    def put_worker(self, rec: WorkerRecord) -> None:
        self._c.execute(
            "INSERT INTO workers (id, name, slots, profiles, registered_at, last_seen) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, slots = EXCLUDED.slots,"
            " profiles = EXCLUDED.profiles, registered_at = EXCLUDED.registered_at, last_seen = EXCLUDED.last_seen",
            (rec.id, rec.name, rec.slots, json.dumps(list(rec.profiles)), rec.registered_at, rec.last_seen),
        )

    def get_worker(self, worker_id: str) -> WorkerRecord | None:
        r = self._one("SELECT * FROM workers WHERE id = %s", (worker_id,))
        if r is None:
            return None
        return WorkerRecord(r["id"], r["name"], r["slots"], tuple(json.loads(r["profiles"])), r["registered_at"], r["last_seen"])

    def put_firmware(self, rec: FirmwareRecord) -> None:
        self._c.execute(
            "INSERT INTO firmware (sha256, size, filename, created_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (sha256) DO NOTHING",
            (rec.sha256, rec.size, rec.filename, rec.created_at),
        )

    def get_firmware(self, sha256: str) -> FirmwareRecord | None:
        r = self._one("SELECT * FROM firmware WHERE sha256 = %s", (sha256,))
        return FirmwareRecord(r["sha256"], r["size"], r["filename"], r["created_at"]) if r else None

    def put_report(self, analysis_id: str, report_json: str) -> None:
        self._c.execute(
            "INSERT INTO reports (analysis_id, json) VALUES (%s, %s)"
            " ON CONFLICT (analysis_id) DO UPDATE SET json = EXCLUDED.json",
            (analysis_id, report_json),
        )

    def get_report(self, analysis_id: str) -> str | None:
        r = self._one("SELECT json FROM reports WHERE analysis_id = %s", (analysis_id,))
        return str(r["json"]) if r else None

    def put_artifact(self, rec: ArtifactRecord) -> None:
        self._c.execute(
            "INSERT INTO artifacts (lease_id, name, analysis_id, sha256, size) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (lease_id, name) DO UPDATE SET analysis_id = EXCLUDED.analysis_id,"
            " sha256 = EXCLUDED.sha256, size = EXCLUDED.size",
            (rec.lease_id, rec.name, rec.analysis_id, rec.sha256, rec.size),
        )

    def artifacts(self, lease_id: str) -> list[ArtifactRecord]:
        rows = self._c.execute("SELECT * FROM artifacts WHERE lease_id = %s ORDER BY name", (lease_id,))
        return [ArtifactRecord(r["lease_id"], r["analysis_id"], r["name"], r["sha256"], r["size"]) for r in rows]


def _unavailable(exc: BaseException) -> StoreUnavailable:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreUnavailable(
        f"the PostgreSQL store is unavailable ({first})",
        fix="check that the database server is up and reachable; the orchestrator reconnects by itself",
    )


class _Pool:
    """At most ``size`` connections; idle ones are reused, broken ones dropped.

    psycopg_pool would do, but what matters here is small and specific: never
    hand out a connection known to be broken, and never block a request for
    longer than ``wait_s`` (the caller answers UNAVAILABLE instead).
    """

    def __init__(self, dsn: str, size: int, connect_timeout_s: float, wait_s: float) -> None:
        # The server drops our session, and with it any row lock it holds,
        # when this host vanishes mid-transaction (keepalives) or a
        # transaction sits idle far longer than any upload may (5 min).
        opts = "-c idle_in_transaction_session_timeout=300000 -c tcp_keepalives_idle=30"
        opts += " -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
        given = psycopg.conninfo.conninfo_to_dict(dsn).get("options")
        self._options = f"{given} {opts}" if given else opts
        self._dsn = dsn
        self._connect_timeout = max(1, round(connect_timeout_s))
        self._wait_s = wait_s
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue[_Conn] = queue.LifoQueue()
        self.closed = False

    def connect(self) -> _Conn:
        try:
            return psycopg.connect(
                self._dsn, autocommit=True, row_factory=dict_row, connect_timeout=self._connect_timeout,
                application_name="honeyphone-orchestrator", options=self._options,
            )
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc

    def get(self) -> _Conn:
        if self.closed:
            raise StoreUnavailable("the store is closed")
        if not self._slots.acquire(timeout=self._wait_s):
            raise StoreUnavailable(f"every database connection stayed busy for {self._wait_s:g}s")
        try:
            while True:
                try:
                    conn = self._idle.get_nowait()
                except queue.Empty:
                    return self.connect()
                if not conn.closed and not conn.broken:
                    return conn
        except BaseException:
            self._slots.release()
            raise

    def put(self, conn: _Conn, *, broken: bool = False) -> None:
        try:
            if broken or conn.closed or conn.broken or self.closed:
                conn.close()
            elif conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.close()  # never hand on a connection in the middle of something
            else:
                self._idle.put(conn)
        finally:
            self._slots.release()

    def adopt(self, conn: _Conn) -> None:
        """Keep a connection opened outside ``get`` (the migrations') for later transactions."""
        self._idle.put(conn)

    def drop_idle(self) -> None:
        """After one connection died, the others (same server) most likely did too."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def close(self) -> None:
        self.closed = True
        self.drop_idle()


class _ChunkReader(io.RawIOBase):
    """Reads a blob one chunk row at a time, each in its own short transaction."""

    def __init__(self, pool: _Pool, sha256: str, upload: str, chunks: int) -> None:
        self._pool = pool
        self._sha = sha256
        self._upload = upload
        self._chunks = chunks
        self._n = 0
        self._buf = b""

    def readable(self) -> bool:
        return True

    def _fetch(self) -> bytes:
        conn = self._pool.get()
        broken = False
        try:
            row = conn.execute(
                "SELECT data FROM blob_chunks WHERE upload = %s AND n = %s", (self._upload, self._n)
            ).fetchone()
        except psycopg.OperationalError as exc:
            broken = True
            raise _unavailable(exc) from exc
        finally:
            self._pool.put(conn, broken=broken)
        if row is None:
            raise NotFound(f"chunk {self._n} of blob {self._sha} is missing from the store")
        self._n += 1
        return bytes(row["data"])

    def readinto(self, b: Any) -> int:
        if not self._buf:
            if self._n >= self._chunks:
                return 0
            self._buf = self._fetch()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class PgBlobStore:
    """Content-addressed blobs as 1 MiB rows of ``blob_chunks``.

    An upload lasts as long as its client keeps sending, so it gets a
    connection of its own, outside the pool: slow uploads cannot starve the
    short transactions every other call needs.  (The API already caps
    concurrent uploads at ``FleetSettings.max_concurrent_uploads``.)
    """

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool

    def write(self, chunks: Iterable[bytes], limit: int) -> BlobInfo:
        limit = min(limit, MAX_BLOB_BYTES)
        upload = uuid.uuid4().hex  # the chunks' key: the digest is only known at the end
        digest = hashlib.sha256()
        size = 0
        n = 0
        buf = bytearray()
        conn = self._pool.connect()
        try:
            conn.execute("BEGIN")
            try:

                def flush(data: bytes) -> None:
                    nonlocal n
                    conn.execute("INSERT INTO blob_chunks (upload, n, data) VALUES (%s, %s, %s)", (upload, n, data))
                    n += 1

                for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise LimitExceeded(
                            f"upload is larger than the limit of {limit} bytes",
                            fix="raise the limit in the orchestrator settings or upload something smaller",
                        )
                    digest.update(chunk)
                    buf += chunk
                    while len(buf) >= CHUNK_BYTES:
                        flush(bytes(buf[:CHUNK_BYTES]))
                        del buf[:CHUNK_BYTES]
                if buf or n == 0:
                    flush(bytes(buf))
                sha = digest.hexdigest()
                claimed = conn.execute(
                    "INSERT INTO blobs (sha256, size, chunks, upload) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (sha256) DO NOTHING",
                    (sha, size, n, upload),
                ).rowcount
                if claimed:
                    conn.execute("COMMIT")
                else:  # the same bytes are already stored: keep that copy
                    conn.execute("ROLLBACK")
                return BlobInfo(sha, size)
            except BaseException:
                if not conn.broken:
                    conn.execute("ROLLBACK")
                raise
        except psycopg.OperationalError as exc:
            if conn.broken or conn.closed:
                self._pool.drop_idle()
            raise _unavailable(exc) from exc
        finally:
            conn.close()

    def _find(self, sha256: str) -> tuple[str, int] | None:
        """The upload key and the number of chunks of a stored blob."""
        conn = self._pool.get()
        broken = False
        try:
            row = conn.execute("SELECT upload, chunks FROM blobs WHERE sha256 = %s", (sha256,)).fetchone()
        except psycopg.OperationalError as exc:
            broken = True
            raise _unavailable(exc) from exc
        finally:
            self._pool.put(conn, broken=broken)
        return (str(row["upload"]), int(row["chunks"])) if row else None

    def exists(self, sha256: str) -> bool:
        return self._find(sha256) is not None

    def open(self, sha256: str) -> BinaryIO:
        found = self._find(sha256)
        if found is None:
            raise NotFound(f"blob {sha256} is missing from the store")
        return io.BufferedReader(_ChunkReader(self._pool, sha256, *found), CHUNK_BYTES)


def migrate(conn: _Conn) -> int:
    """Apply the missing migrations under the advisory lock; return the schema version."""
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
        )
        row = conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").fetchone()
        current = int(row["v"]) if row else 0
        if current > SCHEMA_VERSION:
            raise EnvironmentProblem(
                f"the PostgreSQL store has schema {current}, newer than this Honeyphone's {SCHEMA_VERSION}",
                fix="run the Honeyphone version that created it, or point --store at another database",
            )
        for version, sql in MIGRATIONS:
            if version <= current:
                continue
            with conn.transaction():
                conn.execute(sql)  # our own constant DDL
                conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, now())", (version,))
            _log.info("PostgreSQL store: applied migration %d", version)
        return SCHEMA_VERSION
    finally:
        if not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


class PostgresStore:
    """Connects to ``dsn`` (``postgresql://user@host:port/db``) and migrates the schema."""

    shared = True  # other orchestrators write to the same database

    def __init__(
        self, dsn: str, *, pool_size: int = 16, connect_timeout_s: float = 5.0, pool_wait_s: float = 10.0
    ) -> None:
        self.dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        self._pool = _Pool(dsn, pool_size, connect_timeout_s, pool_wait_s)
        self._blobs = PgBlobStore(self._pool)
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        try:
            conn = self._pool.connect()
        except StoreUnavailable as exc:
            raise EnvironmentProblem(
                f"{exc} at start; cannot migrate the schema",
                fix="start the database (or fix --store / HONEYPHONE_STORE), then start the orchestrator again",
            ) from exc
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._pool.adopt(conn)

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    def _begin(self) -> _Conn:
        """A connection inside ``BEGIN``; a stale pooled connection gets one retry with a fresh one."""
        for attempt in range(2):
            conn = self._pool.get()
            try:
                conn.execute("BEGIN")
                return conn
            except psycopg.OperationalError as exc:
                self._pool.put(conn, broken=True)
                self._pool.drop_idle()
                if attempt == 1:
                    raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        conn = self._begin()
        broken = False
        try:
            try:
                yield _PgTx(conn)
            except BaseException:
                if not conn.broken:
                    try:
                        conn.execute("ROLLBACK")
                    except psycopg.OperationalError:
                        broken = True
                raise
            conn.execute("COMMIT")
        except psycopg.OperationalError as exc:  # also deadlocks and lost connections: retryable
            broken = broken or conn.broken or conn.closed
            if broken:
                self._pool.drop_idle()
            raise _unavailable(exc) from exc
        finally:
            self._pool.put(conn, broken=broken or conn.broken)

    def listen(self, on_event: Callable[[str, int], None]) -> None:
        """Hand every event any orchestrator commits to ``on_event(analysis_id, sequence)``, until ``close``."""
        if self._listener is not None:
            raise RuntimeError("already listening")
        ready = threading.Event()
        self._listener = threading.Thread(
            target=self._listen, args=(on_event, ready), name="pg-listen", daemon=True
        )
        self._listener.start()
        # Once this returns, every event committed from now on reaches on_event
        # (unless the database goes away: then watchers' re-reads cover it).
        ready.wait(self._connect_timeout_s + 1)

    def _listen(self, on_event: Callable[[str, int], None], ready: threading.Event) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                conn = self._pool.connect()
            except StoreUnavailable:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            try:
                with conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            analysis_id, _, seq = note.payload.rpartition(":")
                            if analysis_id and seq.isdigit():
                                on_event(analysis_id, int(seq))
            except psycopg.OperationalError:
                _log.warning("PostgreSQL store: the LISTEN connection dropped; reconnecting")
                time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._pool.close()
