"""The report's ``health`` section: what the firmware did to its device, and
how the sandbox held.

Hostile firmware is expected: a fork bomb, a memory hog, a disk filler, a
CPU spinner, a process that kills its tracer, a network flood.  Each is
contained by a limit (pids, memory, tmpfs sizes, CPU quota, strace's
kill-on-exit, the capture's size cap) and each must be *reported*, since
it is behaviour the analyst wants to know about and since it can make the
evidence incomplete.  The pipeline samples the facts from the host while
the device still runs (container state, cgroup counters, tmpfs use, how
each service ended, via ``hpctl status`` through the engine); this module
adds what the syscall traces say and turns it all into ``incidents``, each
a ``kind`` and a sentence.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import docker

from ..clock.mapping import ClockMapping
from ..containers.health import (
    ENGINE_ERRORS,
    MountUsage,
    cgroup_counters,
    container_state,
    mount_usage,
    rootfs_written_bytes,
    session_cpu,
)
from ..containers.device_container import ADB_PORT
from ..monitor.summary import Summary
from ..settings import Settings

MIB = 1024 * 1024
FLOOD_PACKETS = 100_000  # more device packets than this in one run: a flood
CPU_HOG = 0.8  # a service's processes runnable (busy) for this share of the run
CPU_HOG_MAX_BLOCKS = 200.0  # ... while blocking fewer times than this per second

_PID_RE = re.compile(r"\s*(?:\[pid\s+)?(\d+)")
_EXIT_RE = re.compile(r"\+\+\+ (?:exited with (-?\d+)|killed by (SIG[A-Z0-9]+))")
_ERR_RE = re.compile(r"= -1 (ENOSPC|EDQUOT|EAGAIN|ENOMEM) ")


def sample_container(client: docker.DockerClient, container_id: str, mounts: tuple[str, ...] = (),
                     sessions: tuple[int, ...] = ()) -> dict[str, Any]:
    """State, cgroup counters, tmpfs use, root file system writes and the CPU
    of the given sessions (service pids), now."""
    try:
        st = container_state(client, container_id)
    except ENGINE_ERRORS:
        return {"host_time": time.time(), "state": {"status": "unknown"}}
    out: dict[str, Any] = {
        "host_time": time.time(),
        "state": {"status": st.status, "exit_code": st.exit_code if not st.alive else None,
                  "oom_killed": st.oom_killed},
    }
    counters = cgroup_counters(st.pid)
    if counters is not None:
        out["cgroup"] = counters.to_dict()
    out["mounts"] = {p: u.to_dict() for p, u in mount_usage(st.pid, list(mounts)).items()}
    out["rootfs_written_bytes"] = rootfs_written_bytes(client, container_id)
    if sessions:
        out["sessions"] = {str(s): c.to_dict() for s, c in session_cpu(st.pid, list(sessions)).items()}
    return out


def trace_facts(path: Path) -> dict[str, Any]:
    """What one service's strace file says about how its processes ended."""
    pids: set[int] = set()
    ended: set[int] = set()
    killed: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    forks_refused = 0
    root: int | None = None
    root_end: str | None = None
    try:
        fh = open(path, encoding="utf-8", errors="replace", newline="\n")
    except OSError:
        return {"readable": False}
    with fh:
        for line in fh:
            m = _PID_RE.match(line)
            if not m:
                continue
            pid = int(m.group(1))
            pids.add(pid)
            if root is None:
                root = pid
            if "+++" in line:
                e = _EXIT_RE.search(line)
                if e:
                    ended.add(pid)
                    how = f"exited with {e.group(1)}" if e.group(1) is not None else f"killed by {e.group(2)}"
                    if e.group(2):
                        killed[e.group(2)] += 1
                    if pid == root:
                        root_end = how
                continue
            err = _ERR_RE.search(line)
            if err:
                errors[err.group(1)] += 1
                if err.group(1) == "EAGAIN" and ("clone" in line or "fork" in line):
                    forks_refused += 1
    return {
        "readable": True, "processes": len(pids), "unfinished": len(pids - ended), "root_pid": root,
        "root_end": root_end, "killed": dict(killed), "errors": dict(errors), "forks_refused": forks_refused,
    }


def _ended(exit_rec: object) -> str | None:
    if not isinstance(exit_rec, dict):
        return None
    if exit_rec.get("signal"):
        return f"killed by {exit_rec['signal']}"
    if exit_rec.get("code") is not None:
        return f"exited with {exit_rec['code']}"
    return None


def _mib(n: object) -> str:
    return f"{int(n) // MIB} MiB" if isinstance(n, int) else "?"


def _container_incidents(role: str, sample: dict[str, Any], start: dict[str, Any] | None,
                         cpus: float, inc: list[dict[str, Any]]) -> dict[str, Any]:
    who = "the device" if role == "device" else "the fakenet"
    cg: dict[str, Any] = sample.get("cgroup") or {}
    state: dict[str, Any] = sample.get("state") or {}
    view: dict[str, Any] = {"state": state}
    if cg:
        view["memory"] = {"limit_bytes": cg.get("memory_limit_bytes"), "peak_bytes": cg.get("memory_peak_bytes"),
                          "limit_hits": cg.get("memory_limit_hits"), "oom_kills": cg.get("oom_kills")}
        view["pids"] = {"limit": cg.get("pids_limit"), "peak": cg.get("pids_peak"),
                        "forks_refused": cg.get("pids_limit_hits")}
        cpu: dict[str, Any] = {"limit_cpus": cpus, "throttled_periods": cg.get("cpu_throttled_periods")}
        s_cg: dict[str, Any] = (start or {}).get("cgroup") or {}
        if start and cg.get("cpu_usage_ns") is not None and s_cg.get("cpu_usage_ns") is not None:
            wall = float(sample["host_time"]) - float(start["host_time"])
            used = (int(cg["cpu_usage_ns"]) - int(s_cg["cpu_usage_ns"])) / 1e9
            cpu["seconds"] = round(used, 3)
            if wall > 0 and cpus > 0:
                cpu["share_of_limit"] = round(used / (wall * cpus), 3)
        view["cpu"] = cpu
        oom = int(cg.get("oom_kills") or 0)
        if oom or state.get("oom_killed"):
            inc.append({"kind": "oom_kill", "container": role, "message":
                        f"the out-of-memory killer fired {oom or 1} time(s) in {who} (memory limit "
                        f"{_mib(cg.get('memory_limit_bytes'))}, peak {_mib(cg.get('memory_peak_bytes'))})"})
        elif int(cg.get("memory_limit_hits") or 0):
            inc.append({"kind": "memory_limit", "container": role, "message":
                        f"{who} reached its memory limit of {_mib(cg.get('memory_limit_bytes'))} "
                        f"{cg.get('memory_limit_hits')} time(s) (memory was reclaimed, nothing was killed)"})
        refused = int(cg.get("pids_limit_hits") or 0)
        limit = cg.get("pids_limit")
        if refused or (limit and cg.get("pids_peak") and int(cg["pids_peak"]) >= int(limit)):
            inc.append({"kind": "pids_limit", "container": role, "message":
                        f"{who} hit its limit of {limit} processes: {refused} fork(s) refused (a fork bomb?)"})
        # (No incident for a device at its CPU limit: a service that loops
        # without blocking is ``cpu_hog``, below.)
    mounts: dict[str, Any] = sample.get("mounts") or {}
    if mounts:
        view["storage"] = mounts
    for path, m in sorted(mounts.items()):
        if isinstance(m, dict) and m.get("full"):
            what = "the syscall traces and service logs may be incomplete" if path == "/data/honeyphone" \
                else "writes failed with ENOSPC"
            inc.append({"kind": "disk_full", "container": role, "path": path, "message":
                        f"{path} in {who} is full ({_mib(m.get('size_bytes'))}): {what} (a disk filler?)"})
    if sample.get("rootfs_written_bytes") is not None:
        view["rootfs_written_bytes"] = sample["rootfs_written_bytes"]
    return view


def _escape_incidents(summary: Summary, net: dict[str, Any], inc: list[dict[str, Any]]) -> None:
    """Connections aimed past the fakenet: at the host, another analysis, the
    engine's socket, or the twin's own adbd (an untraced root shell).  The
    containment stops them; the attempt itself is behaviour worth reporting."""
    try:
        own = ipaddress.ip_network(str(net["subnet"]))
        pool = ipaddress.ip_network(str(net["pool"]))
    except (KeyError, ValueError):
        return
    gateway, device = str(net.get("gateway")), str(net.get("device_ip"))
    seen: set[tuple[str, str]] = set()
    for proc in summary.processes:
        for d in proc.destinations:
            what: str | None = None
            addr = d.address or ""
            if d.local:
                if "docker" in addr or "containerd" in addr:
                    what = f"the container engine's socket {addr}"
            elif d.port == ADB_PORT and (d.loopback or addr == device):
                what = f"the twin's own adbd at {addr}:{d.port} (an untraced root shell)"
            elif addr == gateway:
                what = f"the host's bridge address {addr}:{d.port}"
            else:
                try:
                    ip = ipaddress.ip_address(addr)
                except ValueError:
                    continue
                if ip in pool and ip not in own:
                    what = f"{addr}:{d.port}, outside this analysis' network (another analysis?)"
            if what is None or (what, proc.name) in seen:
                continue
            seen.add((what, proc.name))
            inc.append({"kind": "escape_attempt", "process": proc.describe()[:160], "address": addr,
                        "port": d.port, "message": f"{proc.name} tried to reach {what}; the containment blocks it"})


def clock_caveats(clock: object) -> list[str]:
    """Verdict reasons the device clock adds: the verdict text says when the
    timing was not the phone's (the fallback ran, processes saw real time)."""
    if not isinstance(clock, dict):
        return []
    out: list[str] = []
    fb = clock.get("fallback")
    if isinstance(fb, dict):
        out.append(f"the device was never idle for long, so the device clock's fallback ran at {fb.get('rate', 0):g}x "
                   f"for {fb.get('real_seconds', 0)} real s (while no exchange was in flight) to reach the horizon")
    uncovered = sorted({str(u.get("comm")) for u in clock.get("uncovered") or [] if isinstance(u, dict)})
    if uncovered:
        out.append(f"{len(uncovered)} process(es) ran outside the device clock, on real time: {', '.join(uncovered[:8])}")
    if clock.get("reached_horizon") is False:
        out.append(f"the device clock stopped at {clock.get('device_hours')} device hours, short of the horizon")
    return out


def _clock_incidents(clock: dict[str, Any], inc: list[dict[str, Any]]) -> None:
    """What the twin's event-driven clock could not do as designed: each one
    weakens the timing evidence, so each is said, never left to a counter."""
    fb = clock.get("fallback")
    if isinstance(fb, dict):
        inc.append({"kind": "clock_fallback", "message":
                    f"the device was never idle for long, so the clock's fallback ran it at {fb.get('rate', 0):g}x "
                    f"for {fb.get('real_seconds', 0)} real s while no exchange was in flight, from device hour "
                    f"{float(fb.get('started_device_s') or 0) / 3600:.2f} ({fb.get('why', '')}); "
                    "waits shorter than the fallback's step then ran faster than on a phone"})
    for u in clock.get("uncovered") or []:
        inc.append({"kind": "clock_uncovered", "process": str(u.get("comm")), "message":
                    f"process {u.get('comm')} ({u.get('exe') or '?'}, pid {u.get('pid')}) does not carry the device "
                    f"clock ({u.get('why')}): it saw real time and its waits ran in real time"})
    for e in clock.get("errors") or []:
        inc.append({"kind": "clock_error", "message": f"the device clock controller reported: {e}"})
    if clock.get("reached_horizon") is False:
        inc.append({"kind": "clock_short", "message":
                    f"the device clock reached {clock.get('device_hours')} device hours, not the horizon"})


def health_section(raw: dict[str, Any], syscalls_dir: Path, mapping: ClockMapping,
                   summary: Summary | None = None) -> dict[str, Any]:
    """The report's ``health``: per container, per service, the capture, and incidents."""
    inc: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    cpus = float(raw.get("device_cpus") or 0)
    for role in ("device", "fakenet"):
        sample = raw.get(role)
        if isinstance(sample, dict):
            out[role] = _container_incidents(role, sample, raw.get(f"{role}_start"), cpus, inc)
    services: list[dict[str, Any]] = []
    for row in raw.get("services") or []:
        name = str(row.get("name"))
        facts = trace_facts(syscalls_dir / f"{name}.strace")
        ended = _ended(row.get("exit"))
        svc: dict[str, Any] = {"name": name, "pid": row.get("pid"), "running": bool(row.get("running")),
                               "ended": ended, **{k: v for k, v in facts.items() if k != "readable"}}
        exit_rec = row.get("exit")
        if isinstance(exit_rec, dict) and exit_rec.get("ts"):
            svc["device_time"] = mapping.device_iso(float(exit_rec["ts"]))
        by_signal = isinstance(exit_rec, dict) and bool(exit_rec.get("signal"))
        tracer_killed = by_signal and facts.get("readable") and (
            facts.get("root_end") is None or int(facts.get("unfinished") or 0) > 0)
        svc["tracer_killed"] = bool(tracer_killed)
        dev, dev0 = raw.get("device") or {}, raw.get("device_start") or {}
        cpu = (dev.get("sessions") or {}).get(str(row.get("pid")))
        if isinstance(cpu, dict) and dev.get("host_time") is not None and dev0.get("host_time") is not None:
            wall = float(dev["host_time"]) - float(dev0["host_time"])
            busy = float(cpu.get("runnable_seconds") or 0) / wall if wall > 0 else 0.0
            svc["cpu"] = {**cpu, "busy_share_of_run": round(busy, 3)}
            blocks = int(cpu.get("voluntary_switches") or 0) / wall if wall > 0 else 0.0
            # Busy and hardly ever blocking: a loop.  (Periodic firmware may be
            # busy too, but it sleeps, i.e. blocks, many times a second.)
            if busy >= CPU_HOG and blocks < CPU_HOG_MAX_BLOCKS:
                inc.append({"kind": "cpu_hog", "service": name, "message":
                            f"the processes of service {name} were busy (on a CPU or waiting for one) "
                            f"for {busy:.0%} of the run ({cpu.get('processes')} process(es), "
                            f"{cpu.get('cpu_seconds')} CPU seconds; "
                            "a CPU spinner?); the device's CPU quota contained it"})
        when = f" at {svc['device_time']}" if "device_time" in svc else ""
        if tracer_killed:
            inc.append({"kind": "tracer_killed", "service": name, "message":
                        f"the tracer (strace) of service {name} was {ended}{when}; every process it traced "
                        "died with it (kill-on-exit), so nothing ran untraced, but the service stopped early"})
        elif ended is not None and str(facts.get("root_end") or "").startswith("killed by"):
            # (only a service that ended during the run: the pipeline's own stop is no incident)
            inc.append({"kind": "service_killed", "service": name, "message":
                        f"service {name} was {facts['root_end']}{when}"})
        if int(facts.get("forks_refused") or 0) and not any(i["kind"] == "pids_limit" for i in inc):
            inc.append({"kind": "pids_limit", "service": name, "message":
                        f"service {name} had {facts['forks_refused']} fork(s) refused (EAGAIN): the pids limit"})
        errors = facts.get("errors") or {}
        if errors.get("ENOSPC") and not any(i["kind"] == "disk_full" for i in inc):
            inc.append({"kind": "disk_full", "service": name, "message":
                        f"service {name} had {errors['ENOSPC']} write(s) fail with ENOSPC (a disk filler?)"})
        services.append(svc)
    out["services"] = services
    cap = raw.get("capture")
    if isinstance(cap, dict):
        out["capture"] = cap
        packets = int(cap.get("packets") or 0)
        if int(cap.get("dropped_by_kernel") or 0):
            inc.append({"kind": "capture_drops", "message":
                        f"the packet capture lost {cap['dropped_by_kernel']} packet(s) (kernel drops)"})
        if packets > FLOOD_PACKETS or cap.get("stopped_at_limit"):
            inc.append({"kind": "network_flood", "message":
                        f"the device sent a flood of traffic: {packets} packets captured"
                        + (" before the capture reached its size limit" if cap.get("stopped_at_limit") else "")})
    if isinstance(raw.get("limits"), dict):
        out["limits"] = raw["limits"]
    if isinstance(raw.get("network"), dict):
        out["network"] = raw["network"]  # subnet, gateway (the host), fakenet and device addresses
        if summary is not None:
            _escape_incidents(summary, raw["network"], inc)
    if isinstance(raw.get("clock"), dict):
        out["clock"] = raw["clock"]
        _clock_incidents(raw["clock"], inc)
    for note in raw.get("notes") or []:
        inc.append({"kind": str(note.get("kind")), "message": str(note.get("message"))})
    out["incidents"] = inc
    return out


def limits_view(settings: Settings) -> dict[str, Any]:
    lim = settings.device_limits
    return {"memory_bytes": lim.memory_bytes, "cpus": lim.nano_cpus / 1e9, "pids": lim.pids,
            "data_bytes": lim.data_bytes, "trace_bytes": lim.trace_bytes, "tmp_bytes": lim.tmp_bytes,
            "rootfs_write_bytes": lim.rootfs_write_bytes, "capture_bytes": lim.capture_bytes}


__all__ = ["MountUsage", "health_section", "limits_view", "sample_container", "trace_facts"]
