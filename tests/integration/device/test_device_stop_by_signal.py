"""Stopping firmware does not depend on ``docker exec`` succeeding.

At the pids limit runc can fail to add the exec'd process ("read init-p:
connection reset by peer", exit 126).  ``stop_by_signal`` signals the
twin's init through the engine instead (no new process in the container),
and ``hpctl_via_engine(..., "stop")`` falls back to it.  Real twin, real
engine; the services are started the way hpctl records them (a process
group leader with a pid file), so nothing depends on the clock.
"""

from __future__ import annotations

import json
import time

import docker

from sandbox.device.twin import TwinHandle, hpctl_via_engine, stop_by_signal

RUN_DIR = "/run/honeyphone/services"
# Fills the pids limit with sleeping children (small ones: no CPU burnt, little
# memory), marks that it got there, then sleeps too.
FILL_PIDS = ("import subprocess, time\n"
             "kids = []\n"
             "while True:\n"
             "    try:\n"
             "        kids.append(subprocess.Popen(['sleep', '1000000']))\n"
             "    except OSError:\n"
             "        break\n"
             "open('/tmp/full', 'w').close()\n"
             "time.sleep(10**6)\n")


def _start_service(client: docker.DockerClient, twin: TwinHandle, name: str, argv: str) -> int:
    script = f"mkdir -p {RUN_DIR}; setsid {argv} >/dev/null 2>&1 & echo $! > {RUN_DIR}/{name}.pid; cat {RUN_DIR}/{name}.pid"
    res = client.containers.get(twin.container.container_id).exec_run(["sh", "-c", script], user="root")
    assert res.exit_code == 0, res.output
    return int(res.output.decode().strip())


def _listed(client: docker.DockerClient, twin: TwinHandle) -> list[dict[str, object]]:
    rows = json.loads(hpctl_via_engine(client, twin, "status"))
    return [r for r in rows if isinstance(r, dict)]


def _pids_current(client: docker.DockerClient, twin: TwinHandle) -> int:
    container = client.containers.get(twin.container.container_id)
    return int(container.stats(stream=False)["pids_stats"]["current"])


def test_stop_by_signal_stops_the_services(docker_engine: docker.DockerClient, twin: TwinHandle) -> None:
    _start_service(docker_engine, twin, "sleeper", "sleep 100000")
    assert [r["name"] for r in _listed(docker_engine, twin) if r.get("running")] == ["sleeper"]
    assert stop_by_signal(docker_engine, twin, why="test") == ""
    assert _listed(docker_engine, twin) == []


def _wait_full(client: docker.DockerClient, twin: TwinHandle) -> None:
    """Until the filler reports the limit, or exec itself no longer fits
    (the limit, seen by runc).  The deadline only bounds a hang."""
    container = client.containers.get(twin.container.container_id)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            probe = client.api.exec_create(container.id, ["test", "-e", "/tmp/full"], user="root")
            client.api.exec_start(probe["Id"])
            if client.api.exec_inspect(probe["Id"])["ExitCode"] == 0:
                return
        except docker.errors.APIError:
            return
    raise AssertionError("the filler never reached the pids limit")


def test_stop_works_at_the_pids_limit(docker_engine: docker.DockerClient, twin: TwinHandle) -> None:
    container = docker_engine.containers.get(twin.container.container_id)
    limit = int(container.attrs["HostConfig"]["PidsLimit"])
    _start_service(docker_engine, twin, "fill", f"python3 -c \"{FILL_PIDS}\"")
    _wait_full(docker_engine, twin)
    assert _pids_current(docker_engine, twin) >= limit - 8
    # The signal path, directly: no new process in the container is needed.
    assert stop_by_signal(docker_engine, twin, why="at the pids limit") == ""
    assert _listed(docker_engine, twin) == []
    assert _pids_current(docker_engine, twin) < limit // 2
    # And through hpctl_via_engine, which falls back to it when exec fails.
    _start_service(docker_engine, twin, "fill", f"python3 -c \"{FILL_PIDS}\"")
    _wait_full(docker_engine, twin)
    hpctl_via_engine(docker_engine, twin, "stop")
    assert _listed(docker_engine, twin) == []
    assert _pids_current(docker_engine, twin) < limit // 2
