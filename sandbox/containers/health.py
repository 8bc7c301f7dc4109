"""What the engine and the kernel say about an analysis' containers.

Three kinds of facts, read from the host so firmware cannot forge them:

* the container's state (``docker inspect``): running or not, exit code,
  whether the engine saw an out-of-memory kill;
* its cgroup counters (cgroup v1 or v2, found through the container's init
  pid in ``/proc/<pid>/cgroup``): memory peak, limit hits and OOM kills,
  pids peak and refused forks, CPU time and throttling.  They are
  cumulative for the container's life, so one sample at the end of the run
  says whether a limit was hit at any time;
* its storage: the bytes written to its root file system (``SizeRw``; on
  overlay2 over ext4 the engine cannot cap this, so the pipeline's watchdog
  does) and the use of its size-limited tmpfs mounts (``statvfs`` through
  ``/proc/<pid>/root``).

Every reader returns ``None`` (or leaves a field ``None``) for what it cannot
read instead of raising, except for an engine that does not answer at all.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ..errors import HoneyphoneError

CGROUP_ROOT = Path("/sys/fs/cgroup")


class EngineUnavailable(HoneyphoneError):
    """The Docker engine did not answer (stopped, restarting, socket gone)."""


ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, ConnectionError)


class EngineWatch:
    """Notices the engine going away (stopped or restarting), even when it is back before anyone looks.

    A restart is not always seen as an error: the engine keeps serving the
    connections it has while it stops every container, and the client's
    pool reconnects to the new engine without a word, so a watcher may just
    find its containers exited (code 0 after a SIGTERM) on a healthy engine.
    Two facts tell an engine restart from a container's own death:

    * an event stream held open from ``start()`` on ends only when the
      engine process exits (or the connection to it breaks);
    * while it shuts down, the engine takes no new connection (it closes its
      socket first, then stops the containers, then exits).

    ``went_away()`` checks both; call it when a container was found dead.
    ``close()`` ends the stream (so does garbage collection of the watch).
    """

    def __init__(self, client: docker.DockerClient, fresh: Callable[[], str | None]) -> None:
        self._client = client
        self._fresh = fresh
        self._state = _StreamState()

    def start(self) -> None:
        """Open the event stream (idempotent); an engine that does not answer counts as gone."""
        st = self._state
        with st.lock:
            if st.stream is not None or st.ended is not None or st.closed:
                return
            try:
                # Daemon events (a configuration reload) are rare: the stream idles until it ends.
                st.stream = self._client.events(decode=True, filters={"type": "daemon"})
            except ENGINE_ERRORS as exc:
                st.ended = f"it did not answer ({exc})"
                return
            # The thread holds the state, not the watch, so that dropping the watch closes the stream.
            threading.Thread(target=_follow, args=(st, st.stream, time.time()), name="engine-watch",
                             daemon=True).start()
            weakref.finalize(self, _close, st)

    def went_away(self) -> str | None:
        """Why the engine is known to have gone away since ``start()``; None when it did not."""
        with self._state.lock:
            if self._state.ended is not None:
                return self._state.ended
        why = self._fresh()
        if why is not None:
            return f"it was shutting down: a new connection failed: {why}"
        return None

    def close(self) -> None:
        _close(self._state)


@dataclass
class _StreamState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    stream: Any = None
    ended: str | None = None
    closed: bool = False


def _follow(st: _StreamState, stream: Any, started: float) -> None:
    try:
        for _event in stream:
            pass
        how = "its event stream ended"
    except Exception as exc:  # the connection broke: the engine went away all the same
        how = f"its event stream broke ({exc})"
    with st.lock:
        if not st.closed and st.ended is None:
            st.ended = f"{how} {time.time() - started:.1f}s after the watch began: it stopped or restarted"


def _close(st: _StreamState) -> None:
    with st.lock:
        st.closed = True
        stream, st.stream = st.stream, None
    if stream is not None:
        try:
            stream.close()
        except Exception:
            pass


@dataclass(frozen=True)
class ContainerState:
    status: str  # created | running | paused | restarting | exited | dead | gone
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    pid: int = 0

    @property
    def alive(self) -> bool:
        return self.status in ("created", "running")

    def describe(self) -> str:
        """``exit code 137, killed by the out-of-memory killer`` and the like."""
        if self.status == "gone":
            return "the container was removed"
        parts = []
        if self.exit_code is not None and self.status not in ("created", "running"):
            parts.append(f"exit code {self.exit_code}")
            if self.exit_code > 128 and self.exit_code - 128 in _SIGNALS:
                parts[-1] += f" = {_SIGNALS[self.exit_code - 128]}"
        if self.oom_killed:
            parts.append("the out-of-memory killer fired")
        if self.error:
            parts.append(self.error)
        return ", ".join(parts) or self.status


_SIGNALS = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}


def container_state(client: docker.DockerClient, container_id: str) -> ContainerState:
    """The container's state; ``status="gone"`` once it was removed.  Raises
    ``EngineUnavailable`` when the engine does not answer."""
    try:
        attrs = client.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return ContainerState("gone")
    except ENGINE_ERRORS as exc:
        raise EngineUnavailable(f"the Docker engine does not answer ({exc})") from exc
    st = attrs.get("State") or {}
    return ContainerState(
        status=str(st.get("Status") or "unknown"),
        exit_code=int(st["ExitCode"]) if st.get("ExitCode") is not None else None,
        oom_killed=bool(st.get("OOMKilled")),
        error=str(st.get("Error") or ""),
        pid=int(st.get("Pid") or 0),
    )


def rootfs_written_bytes(client: docker.DockerClient, container_id: str) -> int | None:
    """Bytes the container wrote to its own layer (``docker ps --size``)."""
    try:
        rows = client.api.containers(all=True, size=True, filters={"id": container_id})
    except ENGINE_ERRORS:
        return None
    for row in rows:
        if str(row.get("Id", "")).startswith(container_id) or container_id.startswith(str(row.get("Id", ""))):
            return int(row.get("SizeRw") or 0)  # the engine omits a zero
    return None


@dataclass(frozen=True)
class CgroupCounters:
    memory_limit_bytes: int | None = None
    memory_peak_bytes: int | None = None
    memory_limit_hits: int | None = None  # v1 memory.failcnt, v2 memory.events "max"
    oom_kills: int | None = None
    pids_limit: int | None = None
    pids_current: int | None = None
    pids_peak: int | None = None
    pids_limit_hits: int | None = None  # forks refused by pids.max
    cpu_usage_ns: int | None = None
    cpu_periods: int | None = None
    cpu_throttled_periods: int | None = None
    cpu_throttled_ns: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    if text == "max":
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def _keyed(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def cgroup_dirs(pid: int) -> dict[str, Path]:
    """Controller name -> the cgroup directory of ``pid`` on the host (v1 and v2)."""
    text = _read(Path(f"/proc/{pid}/cgroup"))
    if not text:
        return {}
    dirs: dict[str, Path] = {}
    unified: str | None = None
    for line in text.splitlines():
        hid, _, rest = line.partition(":")
        ctrls, _, path = rest.partition(":")
        del hid
        if ctrls == "":
            unified = path
            continue
        for ctrl in ctrls.split(","):
            mount = CGROUP_ROOT / ctrls
            if not mount.is_dir():
                mount = CGROUP_ROOT / ctrl
            dirs[ctrl] = mount / path.lstrip("/")
    if unified is not None:
        base = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").exists() else CGROUP_ROOT / "unified"
        udir = base / unified.lstrip("/")
        for ctrl in ("memory", "pids", "cpu"):
            if ctrl not in dirs and (udir / f"{ctrl}.max").exists():
                dirs[ctrl] = udir
        dirs.setdefault("unified", udir)
    return dirs


def cgroup_counters(pid: int) -> CgroupCounters | None:
    """The cumulative resource counters of the cgroup ``pid`` is in."""
    if pid <= 0:
        return None
    dirs = cgroup_dirs(pid)
    if not dirs:
        return None
    mem, pids, cpu = dirs.get("memory"), dirs.get("pids"), dirs.get("cpu")
    acct = dirs.get("cpuacct")
    v2 = mem is not None and (mem / "memory.max").exists()
    kw: dict[str, int | None] = {}
    if mem is not None:
        if v2:
            events = _keyed(_read(mem / "memory.events"))
            kw.update(memory_limit_bytes=_int(_read(mem / "memory.max")),
                      memory_peak_bytes=_int(_read(mem / "memory.peak")),
                      memory_limit_hits=events.get("max"), oom_kills=events.get("oom_kill"))
        else:
            oom = _keyed(_read(mem / "memory.oom_control"))
            kw.update(memory_limit_bytes=_int(_read(mem / "memory.limit_in_bytes")),
                      memory_peak_bytes=_int(_read(mem / "memory.max_usage_in_bytes")),
                      memory_limit_hits=_int(_read(mem / "memory.failcnt")), oom_kills=oom.get("oom_kill"))
    if pids is not None:
        kw.update(pids_limit=_int(_read(pids / "pids.max")), pids_current=_int(_read(pids / "pids.current")),
                  pids_peak=_int(_read(pids / "pids.peak")),
                  pids_limit_hits=_keyed(_read(pids / "pids.events")).get("max"))
    if cpu is not None:
        stat = _keyed(_read(cpu / "cpu.stat"))
        if "usage_usec" in stat:  # v2
            kw.update(cpu_usage_ns=stat["usage_usec"] * 1000, cpu_periods=stat.get("nr_periods"),
                      cpu_throttled_periods=stat.get("nr_throttled"),
                      cpu_throttled_ns=stat["throttled_usec"] * 1000 if "throttled_usec" in stat else None)
        else:
            kw.update(cpu_periods=stat.get("nr_periods"), cpu_throttled_periods=stat.get("nr_throttled"),
                      cpu_throttled_ns=stat.get("throttled_time"))
    if kw.get("cpu_usage_ns") is None and acct is not None:
        kw["cpu_usage_ns"] = _int(_read(acct / "cpuacct.usage"))
    return CgroupCounters(**kw)


@dataclass(frozen=True)
class MountUsage:
    path: str
    size_bytes: int
    used_bytes: int

    @property
    def full(self) -> bool:
        """Less than 1% (or one 64 KiB block) left."""
        free = self.size_bytes - self.used_bytes
        return self.size_bytes > 0 and free <= max(self.size_bytes // 100, 64 * 1024)

    def to_dict(self) -> dict[str, object]:
        return {"size_bytes": self.size_bytes, "used_bytes": self.used_bytes, "full": self.full}


def mount_usage(pid: int, paths: list[str]) -> dict[str, MountUsage]:
    """``statvfs`` of mounts inside the container (through ``/proc/<pid>/root``)."""
    out: dict[str, MountUsage] = {}
    if pid <= 0:
        return out
    for p in paths:
        try:
            st = os.statvfs(f"/proc/{pid}/root{p}")
        except OSError:
            continue
        size = st.f_blocks * st.f_frsize
        out[p] = MountUsage(p, size, size - st.f_bfree * st.f_frsize)
    return out


@dataclass(frozen=True)
class SessionCpu:
    """CPU use of the live processes of one session (a firmware service and its children)."""

    processes: int
    cpu_seconds: float  # user + system time
    runnable_seconds: float  # running or waiting for a CPU (schedstat): ~wall time per spinning process
    voluntary_switches: int = 0  # the process blocked (sleep, I/O): a busy loop has almost none
    involuntary_switches: int = 0  # preempted

    def to_dict(self) -> dict[str, float | int]:
        return {"processes": self.processes, "cpu_seconds": round(self.cpu_seconds, 3),
                "runnable_seconds": round(self.runnable_seconds, 3),
                "voluntary_switches": self.voluntary_switches, "involuntary_switches": self.involuntary_switches}


def session_cpu(pid: int, sessions: list[int]) -> dict[int, SessionCpu]:
    """Per session id (as the container sees it), the CPU its live processes used.

    Reads the container's cgroup member list and each member's ``/proc``
    entries on the host.  "Runnable" time (``schedstat``: on a CPU plus
    waiting for one) tells a busy loop from a sleeper even when the host is
    so loaded that the loop got little CPU.
    """
    dirs = cgroup_dirs(pid) if pid > 0 else {}
    base = dirs.get("pids") or dirs.get("unified")
    procs = _read(base / "cgroup.procs") if base else None
    if not procs:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    acc: dict[int, list[float]] = {s: [0, 0.0, 0.0, 0, 0] for s in sessions}
    for line in procs.split():
        try:
            status = Path(f"/proc/{line}/status").read_text(encoding="ascii", errors="replace")
            stat = Path(f"/proc/{line}/stat").read_text(encoding="ascii", errors="replace")
            sched = Path(f"/proc/{line}/schedstat").read_text(encoding="ascii").split()
        except OSError:
            continue
        sid = None
        switches = [0, 0]
        for row in status.splitlines():
            if row.startswith("NSsid:"):
                sid = int(row.split()[-1])
            elif row.startswith("voluntary_ctxt_switches:"):
                switches[0] = int(row.split()[-1])
            elif row.startswith("nonvoluntary_ctxt_switches:"):
                switches[1] = int(row.split()[-1])
        if sid not in acc or stat.partition("(")[2].rpartition(")")[0] == "strace":
            continue  # the tracer is not the firmware
        fields = stat.rsplit(")", 1)[-1].split()
        try:
            cpu = (int(fields[11]) + int(fields[12])) / tick
            runnable = (int(sched[0]) + int(sched[1])) / 1e9
        except (IndexError, ValueError):
            continue
        a = acc[sid]
        a[0] += 1
        a[1] += cpu
        a[2] += runnable
        a[3] += switches[0]
        a[4] += switches[1]
    return {s: SessionCpu(int(a[0]), a[1], a[2], int(a[3]), int(a[4])) for s, a in acc.items()}
