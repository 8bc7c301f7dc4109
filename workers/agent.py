"""The worker agent behind ``honeyphone worker``.

One control loop (the caller's thread) registers, leases work into free slots
and heartbeats; each leased analysis runs in its own thread through the
``Runner``.  Progress events are buffered per lease and ride on heartbeats,
sent early when there is news so that watchers see live progress.  Before a
completion the lease's remaining events are flushed, so the terminal event is
always the last one.

Failure handling:
* the orchestrator restarting: every call is retried while it is UNAVAILABLE;
  events stay buffered until a heartbeat gets through;
* the orchestrator saying a lease is cancelled or expired: the run's
  ``CancelToken`` is set and nothing more is sent for it;
* SIGTERM (``drain``): stop leasing, let running analyses finish, then return.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from sandbox.api.fleet_client import FleetClient, WorkerEventTuple, retry
from sandbox.model import AnalysisOutcome, AnalysisRequest, CancelToken, ProgressEvent, Runner, Stage
from sandbox.errors import BundleError, HoneyphoneError
from sandbox.orchestrator.model import LeaseGrant
from sandbox.settings import Settings

from .capacity import firmware_cache
from .inflight import InflightJournal

_log = logging.getLogger(__name__)

WORKER_STAGES = frozenset({Stage.BOOTING, Stage.PLANTING, Stage.FAST_FORWARDING, Stage.ANALYZING})
MAX_EVENTS_PER_BEAT = 1000
MIN_BEAT_SPACING_S = 0.25


class LeaseLost(Exception):
    """The orchestrator took the lease back (cancelled or expired); stop quietly."""


@dataclass(frozen=True)
class WorkerConfig:
    slots: int
    name: str
    profiles: tuple[str, ...]
    poll_s: float = 1.0  # how often an idle worker asks for work


@dataclass
class _Job:
    grant: LeaseGrant
    token: CancelToken = field(default_factory=CancelToken)
    events: list[WorkerEventTuple] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    lost: str = ""  # why the orchestrator took the lease back

    def add(self, ev: ProgressEvent) -> None:
        if ev.stage not in WORKER_STAGES:
            return  # the orchestrator records queued/leased/terminal events itself
        with self.lock:
            self.events.append((ev.stage, ev.message[:1024], ev.device_hours))
            if len(self.events) > 4 * MAX_EVENTS_PER_BEAT:  # the orchestrator is unreachable for long
                last_ff = max(i for i, e in enumerate(self.events) if e[0] == Stage.FAST_FORWARDING) \
                    if any(e[0] == Stage.FAST_FORWARDING for e in self.events) else -1
                self.events = [e for i, e in enumerate(self.events) if e[0] != Stage.FAST_FORWARDING or i == last_ff]

    def pending(self) -> list[WorkerEventTuple]:
        with self.lock:
            return self.events[:MAX_EVENTS_PER_BEAT]

    def sent(self, n: int) -> None:
        with self.lock:
            del self.events[:n]


def _retryable(exc: BaseException) -> bool:
    """Whether another attempt (maybe on another worker) could succeed."""
    return not isinstance(exc, BundleError)


class WorkerAgent:
    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        fleet: FleetClient,
        runner: Runner,
        cleanup: Callable[[list[str]], None] = lambda analysis_ids: None,
    ) -> None:
        self._settings = settings
        self._config = config
        self._fleet = fleet
        self._runner = runner
        self._cleanup = cleanup
        self._jobs: dict[str, _Job] = {}
        self._jobs_lock = threading.Lock()
        self._beat_lock = threading.Lock()
        self._wake = threading.Event()
        self._draining = threading.Event()
        self._abort = threading.Event()
        self.worker_id = ""
        self._lease_seconds = 30
        self._last_beat = 0.0
        self.completed = 0
        self._inflight: InflightJournal | None = None

    # -- control ---------------------------------------------------------------

    def drain(self) -> None:
        """Stop leasing; ``run`` returns once running analyses are done."""
        self._draining.set()
        self._wake.set()

    def abort(self) -> None:
        """Cancel running analyses too (a second SIGTERM); they are reported as retryable failures."""
        self._abort.set()
        self.drain()
        with self._jobs_lock:
            for job in self._jobs.values():
                job.token.cancel()

    @property
    def running(self) -> int:
        with self._jobs_lock:
            return len(self._jobs)

    def run(self) -> int:
        self._inflight = InflightJournal(self._settings)
        try:
            return self._run()
        finally:
            self._inflight.close()

    def _run(self) -> int:
        assert self._inflight is not None
        orphans = self._inflight.orphans()
        try:
            self._cleanup(orphans)
        except Exception as exc:  # a failed cleanup must not keep the worker down
            _log.warning("cleanup of leftovers of %s failed: %s", ", ".join(orphans) or "earlier runs", exc)
        self._register()
        next_lease = 0.0
        while not (self._draining.is_set() and self.running == 0):
            now = time.monotonic()
            if not self._draining.is_set() and now >= next_lease:
                if self._lease_more():
                    next_lease = now  # a slot may still be free: ask again soon
                else:
                    next_lease = now + self._config.poll_s
            self._beat_if_due()
            self._wake.wait(timeout=MIN_BEAT_SPACING_S)
            self._wake.clear()
        self._beat(force=True)
        return 0

    def _register(self) -> None:
        cfg = self._config
        reg = retry(lambda: self._fleet.register(cfg.name, cfg.slots, cfg.profiles), give_up_after=120)
        self.worker_id, self._lease_seconds = reg.worker_id, reg.lease_seconds
        _log.info("registered as %s (%d slots, profiles %s)", reg.worker_id, cfg.slots, ",".join(cfg.profiles))

    # -- leasing ---------------------------------------------------------------

    def _lease_more(self) -> bool:
        free = self._config.slots - self.running
        if free <= 0:
            return False
        try:
            grants = self._fleet.lease(self.worker_id, free)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # the orchestrator lost us (fresh store)
                self._register()
            else:
                _log.warning("leasing failed: %s", exc.details())
            return False
        for grant in grants:
            job = _Job(grant)
            with self._jobs_lock:
                self._jobs[grant.lease_id] = job
            threading.Thread(target=self._run_job, args=(job,), name=f"analysis-{grant.analysis_id}", daemon=True).start()
        return bool(grants)

    # -- heartbeats ------------------------------------------------------------

    def _beat_if_due(self) -> None:
        since = time.monotonic() - self._last_beat
        with self._jobs_lock:
            news = any(job.events for job in self._jobs.values())
        if since >= self._lease_seconds / 3 or (news and since >= MIN_BEAT_SPACING_S):
            self._beat()

    def _beat(self, jobs: list[_Job] | None = None, force: bool = False) -> bool:
        """Send pending events (of ``jobs``, default all) and extend their leases."""
        with self._beat_lock:
            if jobs is None:
                with self._jobs_lock:
                    jobs = [j for j in self._jobs.values() if not j.lost]
            if not jobs and not force:
                self._last_beat = time.monotonic()
                return True
            batch = {job.grant.lease_id: job.pending() for job in jobs}
            try:
                reply = self._fleet.heartbeat(self.worker_id, batch)
            except grpc.RpcError as exc:
                _log.warning("heartbeat failed (%s); keeping %d events", exc.code(), sum(map(len, batch.values())))
                return False
            self._last_beat = time.monotonic()
            self._lease_seconds = reply.lease_seconds or self._lease_seconds
            for job in jobs:
                job.sent(len(batch[job.grant.lease_id]))
            self._take_back(reply.cancelled, "cancelled")
            self._take_back(reply.expired, "expired")
            return True

    def _take_back(self, lease_ids: tuple[str, ...], why: str) -> None:
        with self._jobs_lock:
            for lease_id in lease_ids:
                job = self._jobs.get(lease_id)
                if job is not None and not job.lost:
                    job.lost = why
                    job.token.cancel()
                    _log.info("lease %s of analysis %s %s; stopping it", lease_id, job.grant.analysis_id, why)

    # -- one analysis ----------------------------------------------------------

    def _run_job(self, job: _Job) -> None:
        grant = job.grant
        assert self._inflight is not None
        self._inflight.start(grant.analysis_id)
        try:
            path = self._firmware(job)
            request = AnalysisRequest(grant.analysis_id, path, grant.scenario, grant.labels)
            try:
                outcome = self._runner(request, job.add, job.token)
                retryable = outcome.retryable
            except Exception as exc:
                _log.exception("runner failed on %s", grant.analysis_id)
                msg = exc.message if isinstance(exc, HoneyphoneError) else f"{type(exc).__name__}: {exc}"
                outcome = AnalysisOutcome(grant.analysis_id, None, {}, {}, error=msg)
                retryable = _retryable(exc)
            if job.lost:
                raise LeaseLost(job.lost)
            if job.token.cancelled:  # aborted by a second SIGTERM: let another worker redo it
                outcome, retryable = AnalysisOutcome(grant.analysis_id, None, {}, {}, error="worker shut down"), True
            try:
                self._finish(job, outcome, retryable)
            finally:
                if outcome.workdir is not None:  # reported (or lost): the scratch copy goes
                    shutil.rmtree(outcome.workdir, ignore_errors=True)
            self.completed += 1
        except LeaseLost as lost:
            _log.info("analysis %s: lease %s, result dropped", grant.analysis_id, lost)
        except Exception:
            _log.exception("analysis %s could not be reported", grant.analysis_id)
        finally:
            self._inflight.done(grant.analysis_id)
            with self._jobs_lock:
                self._jobs.pop(grant.lease_id, None)
            self._wake.set()

    def _call(self, job: _Job, fn: Callable[[], object]) -> object:
        """Retry while the orchestrator is unavailable; a stale lease becomes ``LeaseLost``."""
        try:
            return retry(fn, give_up_after=max(600.0, 4.0 * self._lease_seconds), stop=lambda: bool(job.lost))
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                job.lost = job.lost or "taken back"
                raise LeaseLost(exc.details()) from None
            raise
        except TimeoutError:
            raise LeaseLost(job.lost) from None

    def _firmware(self, job: _Job) -> Path:
        sha = job.grant.firmware_sha256
        cache = firmware_cache(self._settings)
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / sha
        if path.is_file():
            return path
        tmp = cache / f".{sha}.{job.grant.lease_id}.part"

        def download() -> None:
            with tmp.open("wb") as out:
                self._fleet.download_firmware(self.worker_id, job.grant.lease_id, out)

        try:
            self._call(job, download)
            digest = hashlib.sha256()
            with tmp.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
            if digest.hexdigest() != sha:
                raise HoneyphoneError(f"firmware download for {job.grant.analysis_id} does not match sha256 {sha}")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def _finish(self, job: _Job, outcome: AnalysisOutcome, retryable: bool) -> None:
        lease_id = job.grant.lease_id
        error = outcome.error
        if error is None and outcome.verdict is None:
            error, retryable = "the runner returned neither a verdict nor an error", False
        if error is None:
            for name, path in sorted(outcome.artifacts.items()):
                def upload(name: str = name, path: Path = path) -> None:
                    with path.open("rb") as f:
                        self._fleet.upload_artifact(lease_id, name, f)

                try:
                    self._call(job, upload)
                except (OSError, grpc.RpcError) as exc:
                    if isinstance(exc, grpc.RpcError) and exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                        raise
                    _log.warning("artifact %s of %s not uploaded: %s", name, job.grant.analysis_id, exc)
        while job.pending():  # events before the terminal one
            if job.lost:
                raise LeaseLost(job.lost)
            if not self._beat([job]):
                time.sleep(0.5)
        if job.lost:
            raise LeaseLost(job.lost)
        report = json.dumps(dict(outcome.report), sort_keys=True, default=str) if error is None else ""
        reply = self._call(
            job, lambda: self._fleet.complete(lease_id, outcome.verdict, report, error, retryable)
        )
        _log.info("analysis %s completed: %s", job.grant.analysis_id, reply)
