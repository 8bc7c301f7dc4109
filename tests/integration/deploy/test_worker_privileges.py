"""What the worker container needs, measured: the worker image, run with the namespaces and
capabilities deploy/compose.yaml gives it, does each host operation of an analysis against a
container with the twin's exact capabilities; and without each capability, the operation that
needs it fails.  This is the evidence behind the table in deploy/README.md.

Probes: iptables on the host's DOCKER-USER chain (NET_ADMIN), tcpdump opening an interface
(NET_RAW, in Docker's defaults but listed explicitly), nsenter into the device's network namespace
(SYS_ADMIN for setns; SYS_PTRACE because the twin holds CAP_SYS_PTRACE for strace, and a process
may open another's /proc/PID/ns and /proc/PID/root only with CAP_SYS_PTRACE or a superset of its
capabilities), /proc/PID/root (SYS_PTRACE), and the device's cgroup counters read by Honeyphone's
own code inside the image (the host's /sys/fs/cgroup mounted read-only).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from sandbox.containers.device_container import TWIN_CAPS
from sandbox.images.builder import ImageBuilder
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
BUILD_LOCK = Path("/tmp/honeyphone-test-image-build.lock")
COMPOSE_CAPS: list[str] = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())[
    "services"]["worker-1"]["cap_add"]

PROBES = """
iptables -w 10 -S DOCKER-USER >/dev/null 2>&1 && echo iptables=ok || echo iptables=fail
timeout 2 tcpdump -i lo -c 1 -w /dev/null >/dev/null 2>&1; [ $? -ne 1 ] && echo tcpdump=ok || echo tcpdump=fail
nsenter -t {pid} -n ip -4 addr >/dev/null 2>&1 && echo nsenter=ok || echo nsenter=fail
ls /proc/{pid}/root/ >/dev/null 2>&1 && echo procroot=ok || echo procroot=fail
python3 -c 'import sys; from sandbox.containers.health import cgroup_counters as c; r = c({pid}); \
sys.exit(0 if r is not None and r.memory_limit_bytes == {memory} else 1)' && echo cgroup=ok || echo cgroup=fail
"""
DEVICE_MEMORY = 256 * 1024 * 1024


@pytest.fixture(scope="module")
def worker_image(docker_engine: docker.DockerClient, built_images: None) -> str:
    import fcntl

    settings = Settings.from_env()
    with open(BUILD_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ImageBuilder(settings, docker_engine).build("worker")
    return settings.worker_image


@pytest.fixture(scope="module")
def device_pid(docker_engine: docker.DockerClient, built_images: None) -> Iterator[int]:
    """A container started as the twin is (its image, capabilities, no-new-privileges), idle."""
    settings = Settings.from_env()
    label = {settings.label_analysis: "t" + secrets.token_hex(5)}
    container = docker_engine.containers.run(
        settings.twin_image, ["sleep", "600"], entrypoint=[], detach=True, labels=label, cap_drop=["ALL"],
        cap_add=TWIN_CAPS, security_opt=["no-new-privileges"], mem_limit=DEVICE_MEMORY, network_mode="none",
    )
    try:
        container.reload()
        yield int(container.attrs["State"]["Pid"])
    finally:
        container.remove(force=True)


def _probe(engine: docker.DockerClient, image: str, pid: int, cap_add: list[str],
           cap_drop: list[str] | None = None, host_cgroups: bool = True) -> dict[str, str]:
    out = engine.containers.run(
        image, ["-c", PROBES.format(pid=pid, memory=DEVICE_MEMORY)], entrypoint=["sh"], remove=True,
        pid_mode="host", network_mode="host", cap_add=cap_add, cap_drop=cap_drop or [],
        volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}} if host_cgroups else {},
        labels={f"{Settings().label_prefix}.test": "worker-privileges"},
    )
    return dict(line.split("=", 1) for line in bytes(out).decode().split())


def test_compose_capabilities_are_enough(docker_engine: docker.DockerClient, worker_image: str,
                                         device_pid: int) -> None:
    assert sorted(COMPOSE_CAPS) == ["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE"]
    result = _probe(docker_engine, worker_image, device_pid, COMPOSE_CAPS)
    assert result == dict.fromkeys(("iptables", "tcpdump", "nsenter", "procroot", "cgroup"), "ok")


@pytest.mark.parametrize(("cap", "fails"), [
    ("NET_ADMIN", {"iptables"}),
    ("NET_RAW", {"tcpdump"}),
    ("SYS_ADMIN", {"nsenter"}),
    ("SYS_PTRACE", {"nsenter", "procroot"}),
])
def test_each_capability_is_needed(docker_engine: docker.DockerClient, worker_image: str, device_pid: int,
                                   cap: str, fails: set[str]) -> None:
    result = _probe(docker_engine, worker_image, device_pid, [c for c in COMPOSE_CAPS if c != cap], cap_drop=[cap])
    assert {k for k, v in result.items() if v == "fail"} == fails, result


def test_the_host_cgroup_tree_is_needed(docker_engine: docker.DockerClient, worker_image: str,
                                        device_pid: int) -> None:
    """Without it the container sees only its own cgroup, and the report's device counters stay empty."""
    result = _probe(docker_engine, worker_image, device_pid, COMPOSE_CAPS, host_cgroups=False)
    assert {k for k, v in result.items() if v == "fail"} == {"cgroup"}, result
