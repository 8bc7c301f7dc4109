"""The report's health section from recorded facts: which incidents are
raised, and which are not (issue 9).  No Docker: samples are dicts as the
pipeline records them, traces are strace text as the twin writes it."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from sandbox.clock.mapping import ClockMapping
from sandbox.containers.health import ContainerState, MountUsage, cgroup_dirs
from sandbox.core.health import health_section, trace_facts
from sandbox.core.watchdog import disk_full_error
from sandbox.errors import DeviceError
from sandbox.monitor.summary import summarize_lines

MIB = 1024 * 1024
IDENTITY = ClockMapping.identity()


def _trace(tmp: Path, name: str, text: str) -> Path:
    d = tmp / "syscalls"
    d.mkdir(exist_ok=True)
    (d / f"{name}.strace").write_text(text)
    return d


def _kinds(health: dict[str, Any]) -> list[str]:
    return [i["kind"] for i in health["incidents"]]


def _sample(t: float, **cg: int) -> dict[str, Any]:
    base = {"memory_limit_bytes": 1024 * MIB, "memory_peak_bytes": 100 * MIB, "memory_limit_hits": 0,
            "oom_kills": 0, "pids_limit": 512, "pids_peak": 10, "pids_limit_hits": 0, "cpu_usage_ns": 0,
            "cpu_throttled_periods": 0}
    return {"host_time": t, "state": {"status": "running"}, "cgroup": {**base, **cg}, "mounts": {}}


def test_a_quiet_run_has_no_incidents(tmp_path: Path) -> None:
    d = _trace(tmp_path, "svc", '7<python3> 1.0 execve("/usr/bin/python3", ["python3"], 0x1 /* 1 var */) = 0\n')
    raw = {"device_start": _sample(0.0), "device": _sample(10.0, cpu_usage_ns=2 * 10**9), "device_cpus": 1.0,
           "services": [{"name": "svc", "pid": 5, "running": True}],
           "capture": {"packets": 10, "dropped_by_kernel": 0, "bytes": 1000, "stopped_at_limit": False}}
    health = health_section(raw, d, IDENTITY)
    assert health["incidents"] == []
    assert health["device"]["cpu"]["share_of_limit"] == 0.2
    assert health["services"][0]["running"] and not health["services"][0]["tracer_killed"]


def test_limits_hit_are_incidents(tmp_path: Path) -> None:
    d = _trace(tmp_path, "x", "")
    dev = _sample(5.0, oom_kills=2, pids_peak=512, pids_limit_hits=40)
    dev["mounts"] = {"/data": MountUsage("/data", 64 * MIB, 64 * MIB).to_dict(),
                     "/tmp": MountUsage("/tmp", 16 * MIB, MIB).to_dict()}
    health = health_section({"device": dev, "device_start": _sample(0.0)}, d, IDENTITY)
    assert _kinds(health) == ["oom_kill", "pids_limit", "disk_full"]
    assert health["incidents"][2]["path"] == "/data"
    assert "40 fork(s) refused" in health["incidents"][1]["message"]


def test_killed_tracer_versus_killed_service(tmp_path: Path) -> None:
    # strace killed: its trace just stops, processes are left without an exit line
    d = _trace(tmp_path, "victim", "10<python3> 1.0 execve(\"/x\", [\"x\"], 0x1 /* 1 var */) = 0\n"
                                    "10<python3> 1.1 clone(child_stack=NULL, flags=SIGCHLD) = 11\n")
    # the service killed (OOM): strace says so, then ends the same way
    _trace(tmp_path, "hog", "20<python3> 1.0 execve(\"/x\", [\"x\"], 0x1 /* 1 var */) = 0\n"
                            "20<python3> 2.0 +++ killed by SIGKILL +++\n")
    raw = {"services": [{"name": "victim", "pid": 9, "running": False, "exit": {"signal": "SIGKILL", "ts": 3.0}},
                        {"name": "hog", "pid": 19, "running": False, "exit": {"signal": "SIGKILL", "ts": 2.0}},
                        {"name": "stopped", "pid": 29, "running": True}]}
    _trace(tmp_path, "stopped", "30<sh> 1.0 execve(\"/x\", [\"x\"], 0x1 /* 1 var */) = 0\n"
                                "30<sh> 9.0 +++ killed by SIGTERM +++\n")  # the pipeline's own stop
    health = health_section(raw, d, IDENTITY)
    assert [(i["kind"], i["service"]) for i in health["incidents"]] == [
        ("tracer_killed", "victim"), ("service_killed", "hog")]
    by = {s["name"]: s for s in health["services"]}
    assert by["victim"]["tracer_killed"] and by["victim"]["unfinished"] == 1 and by["victim"]["root_end"] is None
    assert by["hog"]["root_end"] == "killed by SIGKILL" and not by["hog"]["tracer_killed"]


def test_trace_counts_refused_forks_and_full_disks(tmp_path: Path) -> None:
    d = _trace(tmp_path, "s", "5<p> 1.0 clone(child_stack=NULL, flags=SIGCHLD) = -1 EAGAIN (Resource temporarily "
                              "unavailable)\n5<p> 1.1 write(3</data/f>, \"\\0\"..., 1048576) = -1 ENOSPC (No space "
                              "left on device)\n5<p> 2.0 +++ exited with 0 +++\n")
    facts = trace_facts(d / "s.strace")
    assert facts["forks_refused"] == 1 and facts["errors"] == {"EAGAIN": 1, "ENOSPC": 1}
    health = health_section({"services": [{"name": "s", "pid": 1, "running": True}]}, d, IDENTITY)
    assert _kinds(health) == ["pids_limit", "disk_full"]


def test_a_busy_loop_is_a_cpu_hog_a_fast_periodic_service_is_not(tmp_path: Path) -> None:
    d = _trace(tmp_path, "x", "")
    dev = _sample(10.0)
    dev["sessions"] = {
        "5": {"processes": 2, "cpu_seconds": 9.0, "runnable_seconds": 19.0, "voluntary_switches": 300,
              "involuntary_switches": 2000},
        "6": {"processes": 1, "cpu_seconds": 7.0, "runnable_seconds": 9.0, "voluntary_switches": 50000,
              "involuntary_switches": 100},
    }
    raw = {"device": dev, "device_start": _sample(0.0),
           "services": [{"name": "spin", "pid": 5, "running": True}, {"name": "tick", "pid": 6, "running": True}]}
    health = health_section(raw, d, IDENTITY)
    assert [(i["kind"], i.get("service")) for i in health["incidents"]] == [("cpu_hog", "spin")]
    assert {s["name"]: s["cpu"]["busy_share_of_run"] for s in health["services"]} == {"spin": 1.9, "tick": 0.9}


def test_floods_and_capture_limits(tmp_path: Path) -> None:
    raw = {"capture": {"packets": 250_000, "dropped_by_kernel": 12, "bytes": 1, "stopped_at_limit": True},
           "notes": [{"kind": "capture_limit", "message": "stopped at 16 MiB"}]}
    assert _kinds(health_section(raw, tmp_path, IDENTITY)) == ["capture_drops", "network_flood", "capture_limit"]


def test_escape_attempts_are_named(tmp_path: Path) -> None:
    lines = [
        '5<probe> 1.0 connect(3<TCP:[0]>, {sa_family=AF_INET, sin_port=htons(2375), '
        'sin_addr=inet_addr("10.213.0.1")}, 16) = -1 EINPROGRESS (Operation now in progress)',
        '5<probe> 1.1 connect(4<TCP:[0]>, {sa_family=AF_INET, sin_port=htons(5555), '
        'sin_addr=inet_addr("127.0.0.1")}, 16) = -1 ECONNREFUSED (Connection refused)',
        '5<probe> 1.2 connect(5<TCP:[0]>, {sa_family=AF_INET, sin_port=htons(5555), '
        'sin_addr=inet_addr("10.213.0.35")}, 16) = -1 EINPROGRESS (Operation now in progress)',
        '5<probe> 1.3 connect(6<UNIX:[0]>, {sa_family=AF_UNIX, sun_path="/var/run/docker.sock"}, 110) = -1 ENOENT '
        '(No such file or directory)',
        '5<probe> 1.4 connect(7<TCP:[0]>, {sa_family=AF_INET, sin_port=htons(443), '
        'sin_addr=inet_addr("203.0.113.5")}, 16) = -1 EINPROGRESS (Operation now in progress)',
    ]
    summary = summarize_lines(lines)
    net = {"subnet": "10.213.0.0/28", "pool": "10.213.0.0/16", "gateway": "10.213.0.1",
           "fakenet_ip": "10.213.0.2", "device_ip": "10.213.0.3"}
    health = health_section({"network": net}, tmp_path, IDENTITY, summary)
    msgs = [i["message"] for i in health["incidents"]]
    assert [i["kind"] for i in health["incidents"]] == ["escape_attempt"] * 4, msgs
    assert any("host's bridge address 10.213.0.1:2375" in m for m in msgs)
    assert any("own adbd at 127.0.0.1:5555" in m for m in msgs)
    assert any("10.213.0.35:5555, outside this analysis' network" in m for m in msgs)
    assert any("engine's socket /var/run/docker.sock" in m for m in msgs)
    assert health["network"] == net


def test_container_state_describes_deaths() -> None:
    assert ContainerState("exited", 137).describe() == "exit code 137 = SIGKILL"
    assert ContainerState("exited", 137, oom_killed=True).describe() == \
        "exit code 137 = SIGKILL, the out-of-memory killer fired"
    assert ContainerState("gone").describe() == "the container was removed"
    assert ContainerState("running", 0).alive


def test_disk_full_is_found_under_wrappers() -> None:
    inner = OSError(errno.ENOSPC, "No space left on device", "/art/x")
    try:
        try:
            raise inner
        except OSError as exc:
            raise DeviceError("adb pull failed") from exc
    except DeviceError as wrapped:
        assert disk_full_error(wrapped) is inner
    assert disk_full_error(DeviceError("adb pull failed: [Errno 28] No space left on device")) is not None
    assert disk_full_error(DeviceError("something else")) is None


def test_cgroup_dirs_v1_and_v2(tmp_path: Path, monkeypatch: Any) -> None:
    import sandbox.containers.health as h

    root = tmp_path / "cg"
    for d in ("pids", "memory", "cpu,cpuacct", "unified"):
        (root / d).mkdir(parents=True)
    monkeypatch.setattr(h, "CGROUP_ROOT", root)
    proc = tmp_path / "cgroup"
    proc.write_text("8:pids:/docker/abc\n4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/docker/abc\n")
    real_read = h._read
    monkeypatch.setattr(h, "_read", lambda p: proc.read_text() if str(p).endswith("/cgroup") else real_read(p))
    dirs = cgroup_dirs(42)
    assert dirs["pids"] == root / "pids/docker/abc" and dirs["cpuacct"] == root / "cpu,cpuacct/docker/abc"
    assert dirs["unified"] == root / "unified/docker/abc"
