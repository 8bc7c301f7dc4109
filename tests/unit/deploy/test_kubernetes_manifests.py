"""The Kubernetes manifests (deploy/kubernetes/) against the schemas of a pinned Kubernetes release.

No cluster was available to apply them, so this is what they are checked
with: every object validates strictly (unknown fields rejected) against the
OpenAPI schemas kubernetes-validate bundles (no network), plus the
cross-references a schema cannot see (Secrets, images, the Kustomization).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import __version__

kubernetes_validate = pytest.importorskip("kubernetes_validate")

KUBERNETES = "1.31.0"  # the release the manifests are written for
ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "deploy" / "kubernetes"


def _objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                out.append((path.name, doc))
    return out


OBJECTS = _objects()


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for _, o in OBJECTS
            if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def test_the_schemas_are_bundled_for_the_pinned_release() -> None:
    """Offline: the schemas ship inside the package."""
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (schemas / f"v{KUBERNETES}-local-strict").is_dir()


@pytest.mark.parametrize(("name", "obj"), OBJECTS, ids=[f"{f}:{o['kind']}/{o['metadata']['name']}" for f, o in OBJECTS])
def test_object_validates_strictly(name: str, obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_the_validator_rejects_a_misspelled_field() -> None:
    """The check above can fail: a field the schema does not know is an error in strict mode."""
    _, deployment = next((f, o) for f, o in OBJECTS if o["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_the_farm_has_what_the_issue_asks() -> None:
    kinds = {(o["kind"], o["metadata"]["name"]): o for _, o in OBJECTS}
    assert ("StatefulSet", "honeyphone-postgres") in kinds
    orch = kinds[("Deployment", "honeyphone-orchestrator")]
    assert orch["spec"]["replicas"] == 2
    assert ("Service", "honeyphone-orchestrator") in kinds
    container = orch["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "healthcheck.py" in " ".join(container[probe]["exec"]["command"])
    assert any(a.startswith("--store=postgresql://") for a in container["args"])
    worker = kinds[("DaemonSet", "honeyphone-worker")]["spec"]["template"]["spec"]
    terms = worker["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "honeyphone.dev/docker", "operator": "In", "values": ["true"]} in terms[0]["matchExpressions"]
    android = kinds[("DaemonSet", "honeyphone-worker-android")]["spec"]["template"]["spec"]
    assert android["nodeSelector"] == {"honeyphone.dev/docker": "true", "honeyphone.dev/kvm": "true"}
    for spec in (worker, android):
        assert spec["hostNetwork"] and spec["hostPID"] and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
        assert {"name": "docker-sock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}} in spec["volumes"]
    # the twin-only worker gets the capabilities Compose gives (measured), the android one /dev/kvm
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    caps = worker["containers"][0]["securityContext"]["capabilities"]["add"]
    assert sorted(caps) == sorted(compose["services"]["worker-1"]["cap_add"])
    assert "privileged" not in worker["containers"][0]["securityContext"]
    assert android["containers"][0]["securityContext"]["privileged"] is True


def test_secrets_referenced_exist_with_their_keys() -> None:
    secrets = {o["metadata"]["name"]: set(o.get("stringData", {})) for _, o in OBJECTS if o["kind"] == "Secret"}
    for name, spec in _pod_specs():
        for vol in spec.get("volumes", []):
            if "secret" in vol:
                assert vol["secret"]["secretName"] in secrets, (name, vol)
        for c in spec["containers"]:
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], (name, ref)


def test_images_are_the_local_builds_of_this_version() -> None:
    """No registry: images are built on (or loaded into) the nodes and never pulled."""
    for name, spec in _pod_specs():
        for c in spec["containers"]:
            repo, _, tag = c["image"].partition(":")
            assert repo in ("honeyphone/orchestrator", "honeyphone/worker", "honeyphone/postgres"), name
            assert tag == __version__ and c["imagePullPolicy"] == "Never", name


def test_the_kustomization_lists_every_manifest_but_the_secrets() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files - {"secrets.yaml"}
    assert all(o["metadata"].get("namespace", "honeyphone") == "honeyphone" for _, o in OBJECTS)


def test_container_arguments_parse_with_honeyphone_cli() -> None:
    """A flag the CLI does not know would only show on a cluster: parse every command line here."""
    from sandbox.cli import build_parser

    parser = build_parser()
    commands = {"honeyphone-orchestrator": "serve", "honeyphone-worker": "worker", "honeyphone-worker-android": "worker"}
    seen = set()
    for name, spec in _pod_specs():
        if name in commands:
            args = parser.parse_args([commands[name], *spec["containers"][0]["args"]])
            assert args.command == commands[name]
            seen.add(name)
    assert seen == set(commands)


def test_compose_command_lines_parse_with_honeyphone_cli() -> None:
    from sandbox.cli import build_parser

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    parser = build_parser()
    for service, command in (("orchestrator-1", "serve"), ("orchestrator-2", "serve"),
                             ("worker-1", "worker"), ("worker-2", "worker")):
        argv = [a.replace("${HONEYPHONE_SLOTS:-1}", "1") for a in compose["services"][service]["command"]]
        assert parser.parse_args([command, *argv]).command == command


def test_every_file_a_container_reads_is_a_key_of_a_mounted_secret() -> None:
    """--token-file, --tls-cert, --tls-key, --tls-ca and the probes' CA: each path is mountPath/key of a Secret."""
    secrets = {o["metadata"]["name"]: set(o.get("stringData", {})) for _, o in OBJECTS if o["kind"] == "Secret"}
    checked = 0
    for name, spec in _pod_specs():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in c.get("volumeMounts", [])}  # claims: {}
            words = [*c.get("args", [])]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                words += c.get(probe, {}).get("exec", {}).get("command", [])
            for word in words:
                path = word.split("=", 1)[-1]
                if not path.startswith("/run/secrets/"):
                    continue
                mount, _, key = path.rpartition("/")
                assert mount in mounts and "secret" in mounts[mount], (name, path)
                assert key in secrets[mounts[mount]["secret"]["secretName"]], (name, path)
                checked += 1
    assert checked >= 10
