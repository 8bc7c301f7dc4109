"""The closest to a cluster this machine has: the PostgreSQL and orchestrator containers of
deploy/kubernetes/ started on Docker as their pod specs say (image, args, env, user, read-only
root, dropped capabilities, Secrets as files under their mount paths, emptyDirs as tmpfs, the
Service name as a network alias), then every probe command of the manifests run in them.

It checks what a schema cannot: that the images start with these arguments and this security
context, that the orchestrator reaches the store by the Service name with the password from the
Secret, and that the probes pass.  Not checked: the kubelet, Services, DaemonSets (the workers'
privileged mode cannot start on this host's Docker), scheduling, volumes.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from sandbox.images.builder import ImageBuilder
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "deploy" / "kubernetes"
BUILD_LOCK = Path("/tmp/honeyphone-test-image-build.lock")


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
         network: str, alias: str | None, label: dict[str, str]) -> Any:
    """One container as the pod spec says (the parts Docker can express)."""
    c = spec["containers"][0]
    sc, psc = c.get("securityContext", {}), spec.get("securityContext", {})
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = (secret_dirs[ref["name"]] / ref["key"]).read_text()
    volumes_by_name = {v["name"]: v for v in spec.get("volumes", [])}
    binds, tmpfs = {}, {}
    for m in c.get("volumeMounts", []):
        v = volumes_by_name.get(m["name"], {"emptyDir": {}})  # a claim: scratch space is enough here
        if "secret" in v:
            binds[str(secret_dirs[v["secret"]["secretName"]])] = {"bind": m["mountPath"], "mode": "ro"}
        elif "emptyDir" in v:
            uid = psc.get("runAsUser", 0)
            tmpfs[m["mountPath"]] = f"uid={uid},gid={psc.get('fsGroup', uid)},mode=0770"
    user = f"{psc['runAsUser']}:{psc['runAsGroup']}" if "runAsUser" in psc else None
    kwargs: dict[str, Any] = {}
    if alias:
        kwargs["networking_config"] = {network: engine.api.create_endpoint_config(aliases=[alias])}
    container = engine.containers.create(
        image, c.get("args"), user=user, environment=env, volumes=binds, tmpfs=tmpfs,
        read_only=bool(sc.get("readOnlyRootFilesystem")), cap_drop=sc.get("capabilities", {}).get("drop"),
        security_opt=["no-new-privileges"] if sc.get("allowPrivilegeEscalation") is False else None,
        network=network, labels=label, detach=True, **kwargs,
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
        for name in ("postgres", "orchestrator"):
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


def test_postgres_and_orchestrator_pods_start_and_pass_their_probes(
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
    orch = _run(docker_engine, orch_spec, images.orchestrator_image, secret_dirs, network, None, label)
    probes = orch_spec["containers"][0]
    _probe_until_ok(orch, probes["startupProbe"]["exec"]["command"], "orchestrator startup")
    # SERVING: its store (PostgreSQL, by the Service's name, with the Secret's password) answers
    assert orch.exec_run(probes["readinessProbe"]["exec"]["command"])[0] == 0
    assert orch.exec_run(probes["livenessProbe"]["exec"]["command"])[0] == 0
    logs = bytes(orch.logs()).decode()
    assert "listening on 0.0.0.0:50551 (postgresql://honeyphone@honeyphone-postgres:5432/honeyphone)" in logs, logs
    orch.reload()
    assert orch.attrs["Config"]["User"] == "10001:10001" and orch.attrs["HostConfig"]["ReadonlyRootfs"]
