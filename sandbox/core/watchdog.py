"""Watching an analysis' own resources while it runs, and naming what died.

The device and the fakenet are containers, the capture is the host's
tcpdump, the artifacts live on one disk.  Any of them can die under an
analysis (killed, out of memory, the disk full, the engine restarting).
Without a watch the run would wait out its fast-forward and then fail on a
confusing adb error, or worse finish "clean" with half the evidence.  So:

* during fast-forward the pipeline polls ``tripped()`` (rate-limited) from
  ``run_until``'s ``should_stop`` hook and stops at once when something
  died, raising ``AnalysisFault`` with the precise reason;
* after any other error, ``explain()`` says which death (or full disk, or
  silent engine) caused it, so the outcome names the cause, not the symptom;
* a container found dead is blamed on the engine when the engine is known
  to have stopped or restarted meanwhile (``EngineWatch``: its event stream
  ended, or it refuses new connections while shutting down), since a
  restart stops every container with a plain exit code 0 and the engine
  may be back by the next poll;
* it also enforces the two storage limits the engine cannot: bytes the
  device or fakenet wrote to their root file system (``rootfs_write_bytes``,
  over a baseline taken when the firmware starts) and the pcap's size
  (``capture_bytes``: tcpdump is then stopped cleanly, which is noted, not
  a failure).
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from ..containers.engine import fresh_connection_error
from ..containers.health import (
    ENGINE_ERRORS,
    EngineUnavailable,
    EngineWatch,
    container_state,
    rootfs_written_bytes,
)
from ..errors import HoneyphoneError
from ..network.capture import Capture
from ..settings import Settings
from ..model import ProgressEvent, ProgressFn, Stage

MIB = 1024 * 1024
# Below this many free bytes the artifact disk counts as full.
MIN_FREE_BYTES = 256 * 1024

STAGE_WORDS = {
    Stage.QUEUED: "start-up", Stage.LEASED: "start-up", Stage.BOOTING: "boot", Stage.PLANTING: "planting",
    Stage.FAST_FORWARDING: "fast-forward", Stage.ANALYZING: "artifact collection",
    Stage.FINISHED: "the end", Stage.FAILED: "the end", Stage.CANCELLED: "the end",
}
ROLE_WORDS = {"device": "the device container", "fakenet": "the fakenet container"}


class AnalysisFault(HoneyphoneError):
    """A resource of the analysis died or a hard limit was passed.

    ``retryable``: whether another attempt could succeed.  Not when the
    firmware itself caused it (a root file system filled, an out-of-memory
    death of the whole device): it would do the same again.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def _signal_name(returncode: int) -> str:
    import signal

    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def disk_full_error(exc: BaseException | None) -> OSError | None:
    """The ENOSPC/EDQUOT ``OSError`` in ``exc``'s cause chain, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc
        if "No space left on device" in str(exc):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        exc = exc.__cause__ or exc.__context__
    return None


def _engine_error(exc: BaseException | None) -> BaseException | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (EngineUnavailable, *ENGINE_ERRORS)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


@dataclass
class Note:
    """Something the watchdog did that the report should mention."""

    kind: str
    message: str
    host_time: float


class Watchdog:
    def __init__(self, client: docker.DockerClient, settings: Settings, artifacts_dir: Path,
                 *, interval: float = 1.0, size_interval: float = 2.0) -> None:
        self._client = client
        self._limits = settings.device_limits
        # A dead container may only be the engine restarting (it stops them all): this tells.
        self._engine = EngineWatch(client, lambda: fresh_connection_error(settings))
        self._artifacts = artifacts_dir
        self._interval = interval
        self._size_interval = size_interval
        self.stage = Stage.QUEUED
        self._containers: dict[str, str] = {}
        self._rootfs_base: dict[str, int] = {}
        self._capture: Capture | None = None
        self._fault: AnalysisFault | None = None
        self._last = 0.0
        self._last_size = 0.0
        self.notes: list[Note] = []

    # -- what to watch ---------------------------------------------------------

    def track(self, progress: ProgressFn) -> ProgressFn:
        """``progress``, recording the stage each event announces."""

        def tracked(ev: ProgressEvent) -> None:
            self.stage = ev.stage
            if ev.stage in (Stage.FINISHED, Stage.FAILED, Stage.CANCELLED):
                self._engine.close()  # the outcome is decided: nothing more to explain
            progress(ev)

        return tracked

    def watch(self, role: str, container_id: str) -> None:
        self._engine.start()
        self._containers[role] = container_id

    def unwatch(self, role: str) -> None:
        """Before stopping a container on purpose."""
        self._containers.pop(role, None)

    def watch_capture(self, capture: Capture | None) -> None:
        self._capture = capture

    def baseline(self) -> None:
        """Root file system bytes already written (boot, bundle, CA): the limit counts from here."""
        for role, cid in self._containers.items():
            self._rootfs_base[role] = rootfs_written_bytes(self._client, cid) or 0
        self._last_size = time.monotonic()

    # -- checks ----------------------------------------------------------------

    @property
    def fault(self) -> AnalysisFault | None:
        return self._fault

    def tripped(self) -> bool:
        """Rate-limited poll for ``should_stop`` hooks: True once something died."""
        if self._fault is None:
            self._limit_capture()  # a stat per tick: a flood grows the pcap fast
            if time.monotonic() - self._last >= self._interval:
                self.poll()
        return self._fault is not None

    def check(self) -> None:
        """Poll now and raise the fault, if any."""
        if self._fault is None:
            self.poll(sizes=True)
        if self._fault is not None:
            raise self._fault

    def poll(self, *, sizes: bool = False) -> AnalysisFault | None:
        self._last = time.monotonic()
        if self._fault is None:
            self._limit_capture()
            reason = self._find_death()
            if reason is None and (sizes or self._last - self._last_size >= self._size_interval):
                self._last_size = self._last
                reason = self._find_overuse()
            if reason is not None:
                self._fault = AnalysisFault(reason[0], retryable=reason[1])
        return self._fault

    def _during(self) -> str:
        return f"during {STAGE_WORDS.get(self.stage, str(self.stage.value))}"

    def _find_death(self, *, ignore_gone: bool = False) -> tuple[str, bool] | None:
        for role, cid in list(self._containers.items()):
            try:
                st = container_state(self._client, cid)
            except EngineUnavailable as exc:
                return f"the Docker engine stopped answering {self._during()} ({exc.__cause__ or exc})", True
            if st.status == "gone" and ignore_gone:
                continue  # after an error, a failed boot's own cleanup may have removed it
            if not st.alive:
                engine = self._engine.went_away()
                if engine is not None:  # the engine stopped or restarted and took the container down
                    return (f"the Docker engine stopped answering {self._during()} ({engine}; "
                            f"{ROLE_WORDS.get(role, role)} went down with it: {st.describe()})"), True
                return f"{ROLE_WORDS.get(role, role)} died {self._during()} ({st.describe()})", not st.oom_killed
        cap = self._capture
        if cap is not None:
            rc = cap.died()
            if rc is not None:
                how = f"killed by {_signal_name(rc)}" if rc < 0 else f"exit code {rc}"
                tail = cap.stderr_tail()
                full = self._disk_full_now()
                if full:
                    return full
                return (f"the packet capture (tcpdump on {cap.iface}) died {self._during()} ({how}"
                        + (f": {tail}" if tail and rc > 0 else "") + ")"), True
        return self._disk_full_now()

    def _disk_full_now(self) -> tuple[str, bool] | None:
        try:
            st = os.statvfs(self._artifacts)
        except OSError:
            return None
        free = st.f_bavail * st.f_frsize
        if free < MIN_FREE_BYTES:
            return f"the artifact disk is full {self._during()} ({free} bytes free under {self._artifacts})", True
        return None

    def _find_overuse(self) -> tuple[str, bool] | None:
        limit = self._limits.rootfs_write_bytes
        for role, cid in list(self._containers.items()):
            base = self._rootfs_base.get(role)
            if base is None:
                continue
            written = rootfs_written_bytes(self._client, cid)
            if written is not None and written - base > limit:
                return (f"{ROLE_WORDS.get(role, role)} wrote {(written - base) // MIB} MiB to its root file "
                        f"system {self._during()}, over its {limit // MIB} MiB limit (a disk filler?); "
                        "the analysis was stopped to protect the host's disk"), False
        return None

    def _limit_capture(self) -> None:
        """Stop tcpdump cleanly once the pcap passes its size limit (noted, not a failure)."""
        cap = self._capture
        if cap is None or cap.stopped or cap.died() is not None:
            return
        try:
            size = cap.path.stat().st_size
        except OSError:
            return
        if size > self._limits.capture_bytes:
            cap.stop()
            self.notes.append(Note(
                "capture_limit",
                f"the packet capture was stopped {self._during()} at {size // MIB} MiB, its "
                f"{self._limits.capture_bytes // MIB} MiB limit (a network flood?); the fakenet's logs "
                "cover the rest of the run",
                time.time()))

    # -- after an error --------------------------------------------------------

    def explain(self, exc: BaseException) -> str | None:
        """The precise cause behind ``exc``: a fault, a full disk, the engine, a death."""
        if isinstance(exc, AnalysisFault):
            return exc.message
        full = disk_full_error(exc)
        if full is not None:
            where = f": {full.filename}" if full.filename else ""
            return (f"the artifact disk is full {self._during()} "
                    f"({full.strerror or 'No space left on device'}{where})")
        engine = _engine_error(exc)
        answered = isinstance(engine, docker.errors.APIError)  # the engine answered, with an error
        if engine is not None and not answered:
            return f"the Docker engine stopped answering {self._during()} ({engine})"
        reason = self._fault.message if self._fault is not None else None
        if reason is None:
            try:
                found = self._find_death(ignore_gone=True)
            except Exception:  # explaining must never raise
                found = None
            if found is None:  # no death behind it; an engine error still says what happened
                if isinstance(engine, docker.errors.NotFound):
                    return (f"a container or network of the analysis disappeared {self._during()} "
                            f"(the engine said: {engine})")
                if answered:
                    return f"the Docker engine refused a request {self._during()} ({engine})"
                return None
            reason = found[0]
        first = (exc.message if isinstance(exc, HoneyphoneError) else str(exc)).strip().splitlines()
        return reason + (f"; then: {first[0][:200]}" if first else "")
