"""The closest to a cluster this machine has: the PostgreSQL and orchestrator containers of
deploy/kubernetes/ started on Docker as their pod specs say (image, args, env, user, read-only
root, dropped capabilities, Secrets as files under their mount paths, emptyDirs as tmpfs, the
Service name as a network alias), then every probe command of the manifests run in them.

It checks what a schema cannot: that the images start with these arguments and this security
context, that the orchestrator reaches the store by the Service name with the password from the
Secret, and that the probes pass.  The twin-only worker DaemonSet's container runs too (host network and PID
namespaces, its capabilities, the Docker socket and cgroup tree from the host, the Service name
resolved to the orchestrator) and analyses the leaking Adups 5.3 for real.  Not checked: the
kubelet, Services, scheduling, persistent volumes, the android DaemonSet (privileged, which this
host's Docker cannot start), AppArmor (not enabled here).
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from sandbox.device import AdbServer
from sandbox.images.builder import ImageBuilder
from sandbox.network.containment import list_rules
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "deploy" / "kubernetes"
BUILD_LOCK = Path("/tmp/honeyphone-test-image-build.lock")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workload(kind: str, name: str) -> dict[str, Any]:
    for path in MANIFESTS.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
                return dict(doc["spec"]["template"]["spec"])
    raise AssertionError(f"no {kind}/{name}")


def _secret_files(tmp: Path) -> dict[str, Path]:
    """Each Secret as a directory holding its keys, from deploy/make-secrets.sh."""
    keys = tmp / "made"
    subprocess.run([str(REPO / "deploy" / "make-secrets.sh"), str(keys)], check=True, capture_output=True)
    layout = {"honeyphone-token": {"token": "token"}, "honeyphone-tls": {"tls.crt": "server.pem", "tls.key": "server.key"},
              "honeyphone-ca": {"ca.pem": "ca.pem"}, "honeyphone-db": {"password": "postgres-password"}}
    out = {}
    for secret, files in layout.items():
        d = tmp / secret
        d.mkdir()
        for key, made in files.items():
            (d / key).write_bytes((keys / made).read_bytes().strip() if key == "password" else (keys / made).read_bytes())
            (d / key).chmod(0o444)
        out[secret] = d
    return out


def _run(engine: docker.DockerClient, spec: dict[str, Any], image: str, secret_dirs: dict[str, Path],
         network: str, alias: str | None, label: dict[str, str], *, env_overrides: dict[str, str] | None = None,
         host_paths: dict[str, str] | None = None, **extra: Any) -> Any:
    """One container as the pod spec says (the parts Docker can express).

    ``env_overrides`` replaces values the test must own (image tags, adb port); ``host_paths``
    moves hostPath volumes the test must not share with the host (the worker's data)."""
    c = spec["containers"][0]
    sc, psc = c.get("securityContext", {}), spec.get("securityContext", {})
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = (secret_dirs[ref["name"]] / ref["key"]).read_text()
    env.update(env_overrides or {})
    volumes_by_name = {v["name"]: v for v in spec.get("volumes", [])}
    binds, tmpfs = {}, {}
    for m in c.get("volumeMounts", []):
        v = volumes_by_name.get(m["name"], {"emptyDir": {}})  # a claim: scratch space is enough here
        mode = "ro" if m.get("readOnly") else "rw"
        if "secret" in v:
            binds[str(secret_dirs[v["secret"]["secretName"]])] = {"bind": m["mountPath"], "mode": "ro"}
        elif "hostPath" in v:
            path = (host_paths or {}).get(v["hostPath"]["path"], v["hostPath"]["path"])
            binds[path] = {"bind": m["mountPath"], "mode": mode}
        elif "emptyDir" in v:
            uid = psc.get("runAsUser", 0)
            tmpfs[m["mountPath"]] = f"uid={uid},gid={psc.get('fsGroup', uid)},mode=0770"
    user = f"{psc['runAsUser']}:{psc['runAsGroup']}" if "runAsUser" in psc else None
    kwargs: dict[str, Any] = dict(extra)
    if spec.get("hostNetwork"):
        kwargs["network_mode"] = "host"
    else:
        kwargs["network"] = network
        if alias:
            kwargs["networking_config"] = {network: engine.api.create_endpoint_config(aliases=[alias])}
    if spec.get("hostPID"):
        kwargs["pid_mode"] = "host"
    caps = sc.get("capabilities", {})
    container = engine.containers.create(
        image, c.get("args"), user=user, environment=env, volumes=binds, tmpfs=tmpfs,
        read_only=bool(sc.get("readOnlyRootFilesystem")), cap_drop=caps.get("drop"), cap_add=caps.get("add"),
        security_opt=["no-new-privileges"] if sc.get("allowPrivilegeEscalation") is False else None,
        labels=label, detach=True, **kwargs,
    )
    container.start()
    return container


def _probe_until_ok(container: Any, command: list[str], what: str) -> None:
    """Like a startup probe: retried until it passes (the bound only ends a hang)."""
    deadline = time.monotonic() + 180
    while True:
        container.reload()
        assert container.status == "running", f"{what} exited:\n{bytes(container.logs()).decode()[-2000:]}"
        code, out = container.exec_run(command)
        if code == 0:
            return
        assert time.monotonic() < deadline, f"{what}: {bytes(out).decode()}\n{bytes(container.logs()).decode()[-2000:]}"
        time.sleep(1)


@pytest.fixture
def images(docker_engine: docker.DockerClient, built_images: None) -> Settings:
    import fcntl

    settings = Settings.from_env()
    with open(BUILD_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in ("postgres", "orchestrator", "worker"):
            ImageBuilder(settings, docker_engine).build(name)
    return settings


@pytest.fixture
def scratch(docker_engine: docker.DockerClient) -> Iterator[tuple[str, dict[str, str]]]:
    label = {f"{Settings().label_prefix}.test": "k8s-" + secrets.token_hex(4)}
    net = docker_engine.networks.create("hpk8s-" + secrets.token_hex(4), labels=label)
    try:
        yield net.name, label
    finally:
        filters = {"label": [f"{k}={v}" for k, v in label.items()]}
        for c in docker_engine.containers.list(all=True, ignore_removed=True, filters=filters):
            c.remove(force=True, v=True)
        net.remove()


def test_pods_start_pass_their_probes_and_analyze(
        docker_engine: docker.DockerClient, images: Settings, scratch: tuple[str, dict[str, str]],
        tmp_path: Path) -> None:
    network, label = scratch
    secret_dirs = _secret_files(tmp_path)
    pg_spec = _workload("StatefulSet", "honeyphone-postgres")
    pg = _run(docker_engine, pg_spec, images.postgres_image, secret_dirs, network, "honeyphone-postgres", label)
    pg_container = pg_spec["containers"][0]
    _probe_until_ok(pg, pg_container["readinessProbe"]["exec"]["command"], "postgres readiness")
    assert pg.exec_run(pg_container["livenessProbe"]["exec"]["command"])[0] == 0

    orch_spec = _workload("Deployment", "honeyphone-orchestrator")
    port = _free_port()  # the test's way in, like `kubectl port-forward`
    orch = _run(docker_engine, orch_spec, images.orchestrator_image, secret_dirs, network, None, label,
                ports={"50551/tcp": ("127.0.0.1", port)})
    probes = orch_spec["containers"][0]
    _probe_until_ok(orch, probes["startupProbe"]["exec"]["command"], "orchestrator startup")
    # SERVING: its store (PostgreSQL, by the Service's name, with the Secret's password) answers
    assert orch.exec_run(probes["readinessProbe"]["exec"]["command"])[0] == 0
    assert orch.exec_run(probes["livenessProbe"]["exec"]["command"])[0] == 0
    logs = bytes(orch.logs()).decode()
    assert "listening on 0.0.0.0:50551 (postgresql://honeyphone@honeyphone-postgres:5432/honeyphone)" in logs, logs
    orch.reload()
    assert orch.attrs["Config"]["User"] == "10001:10001" and orch.attrs["HostConfig"]["ReadonlyRootfs"]

    # The twin-only worker DaemonSet's container, with the Service's name resolving to the orchestrator.
    worker_spec = _workload("DaemonSet", "honeyphone-worker")
    orch_ip = orch.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    service = next(a for a in worker_spec["containers"][0]["args"] if a.startswith("--orchestrator="))
    service_host = service.split("=", 1)[1].rsplit(":", 1)[0]
    data = tmp_path / "worker-data"
    data.mkdir()
    adb_port = _free_port()
    worker = _run(
        docker_engine, worker_spec, images.worker_image, secret_dirs, network, None, label,
        env_overrides={"HONEYPHONE_TWIN_IMAGE": images.twin_image, "HONEYPHONE_FAKENET_IMAGE": images.fakenet_image,
                       "HONEYPHONE_SUBNET_POOL": images.subnet_pool, "ANDROID_ADB_SERVER_PORT": str(adb_port)},
        host_paths={"/var/lib/honeyphone-worker": str(data)}, extra_hosts={service_host: orch_ip},
    )
    keys = tmp_path / "made"
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "submit", "examples/firmware/adups-5.3", "--wait", "--hours", "80",
         "--contacts", "5", "--sms", "5", "--calls", "5", "--server", f"localhost:{port}",
         "--tls-ca", str(keys / "ca.pem"), "--token-file", str(keys / "token")],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    worker.reload()
    assert proc.returncode == 1, proc.stdout + proc.stderr + bytes(worker.logs()).decode()[-3000:]  # 5.3 leaks
    aid = proc.stdout.split()[0]
    assert f"{aid} leak" in proc.stdout
    worker.stop(timeout=120)  # SIGTERM: the worker drains and exits
    assert worker.wait(timeout=10)["StatusCode"] == 0, bytes(worker.logs()).decode()[-3000:]
    analysis = f"{Settings().label_analysis}={aid}"
    assert docker_engine.containers.list(all=True, ignore_removed=True, filters={"label": analysis}) == []
    assert docker_engine.networks.list(filters={"label": analysis}) == []
    assert list_rules(aid) == []
    assert not AdbServer("adb", adb_port).is_running()
