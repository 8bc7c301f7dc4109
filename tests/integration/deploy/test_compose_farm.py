"""deploy/compose.yaml for real: PostgreSQL, two orchestrators and two workers from the images
`honeyphone images build` makes here, the README's Adups campaign against it over TLS with the
token, and orchestrator 1 (the one every worker and the client reach first) killed while the
analyses run.  The campaign must finish through orchestrator 2 with 5.3 leaking and 5.4 clean,
and nothing may be left behind: no device, fakenet, analysis network or firewall rule, and after
`docker-compose down -v` none of the farm's containers, networks, volumes or adb servers.

The workers run as deploy/compose.yaml says (host network and PID namespaces, four capabilities,
the Docker socket), so this also checks that those privileges are enough.  The project name,
ports and adb ports are this test's own, so it runs beside other farms on the same engine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from sandbox.api.channel import ClientSecurity, open_channel
from sandbox.api.client import SandboxClient
from sandbox.device import AdbServer
from sandbox.images.builder import ImageBuilder
from sandbox.network.containment import list_rules
from sandbox.orchestrator.model import AnalysisState
from sandbox.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.compose]
REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "deploy" / "compose.yaml"
BUILD_LOCK = Path("/tmp/honeyphone-test-image-build.lock")
HOURS = "80"  # as tests/integration/campaign/test_campaign_adups.py: 5.3's 72 h upload with margin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ComposeFarm:
    project: str
    env: dict[str, str]
    secrets: Path
    ports: tuple[int, int]
    adb_ports: tuple[int, int]
    log: Path

    @property
    def servers(self) -> str:
        """Both orchestrators, as the workers name them: gRPC uses the first that answers."""
        return f"ipv4:127.0.0.1:{self.ports[0]},127.0.0.1:{self.ports[1]}"

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        compose = shutil.which("docker-compose")
        assert compose is not None
        return subprocess.run([compose, "-p", self.project, "-f", str(COMPOSE_FILE), *args], env=self.env,
                              cwd=REPO, capture_output=True, text=True, timeout=timeout)

    def client(self, which: int) -> SandboxClient:
        security = ClientSecurity.from_files(self.secrets / "token", self.secrets / "ca.pem")
        return SandboxClient(open_channel(f"127.0.0.1:{self.ports[which]}", security))

    def down(self) -> None:
        """Stop (SIGTERM: workers drain) and remove everything of the project, volumes included."""
        logs = self.compose("logs", "--no-color", timeout=120)
        with self.log.open("a") as f:
            f.write(logs.stdout + logs.stderr)
        proc = self.compose("down", "--volumes", "--remove-orphans", "--timeout", "120", timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def farm_images(docker_engine: docker.DockerClient, built_images: None) -> Settings:
    """The orchestrator, worker and PostgreSQL images (tags from HONEYPHONE_*_IMAGE), built once."""
    import fcntl

    settings = Settings.from_env()
    with open(BUILD_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        builder = ImageBuilder(settings, docker_engine)
        for name in ("postgres", "worker", "orchestrator"):
            builder.build(name)
    return settings


@pytest.fixture
def compose_farm(tmp_path: Path, farm_images: Settings) -> Iterator[ComposeFarm]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (scripts/setup-host.sh installs it)")
    keys = tmp_path / "secrets"
    subprocess.run([str(REPO / "deploy" / "make-secrets.sh"), str(keys)], check=True, capture_output=True)
    s = farm_images
    project = "hptest" + secrets.token_hex(4)
    ports, adb_ports = (_free_port(), _free_port()), (_free_port(), _free_port())
    env = dict(
        os.environ, HONEYPHONE_SECRETS=str(keys),
        HONEYPHONE_PORT_1=str(ports[0]), HONEYPHONE_PORT_2=str(ports[1]),
        HONEYPHONE_ADB_PORT_1=str(adb_ports[0]), HONEYPHONE_ADB_PORT_2=str(adb_ports[1]),
        HONEYPHONE_WORKER_PREFIX=project, HONEYPHONE_SUBNET_POOL=s.subnet_pool,
        HONEYPHONE_TWIN_IMAGE=s.twin_image, HONEYPHONE_FAKENET_IMAGE=s.fakenet_image,
        HONEYPHONE_ORCHESTRATOR_IMAGE=s.orchestrator_image, HONEYPHONE_WORKER_IMAGE=s.worker_image,
        HONEYPHONE_POSTGRES_IMAGE=s.postgres_image,
    )
    farm = ComposeFarm(project, env, keys, ports, adb_ports, tmp_path / "compose.log")
    try:
        up = farm.compose("up", "--detach")  # returns once the orchestrators are healthy and the workers started
        assert up.returncode == 0, up.stdout + up.stderr
        yield farm
    finally:
        farm.down()
        print(f"compose logs: {farm.log}")


def _containers(engine: docker.DockerClient, label: str) -> list[str]:
    return [c.name for c in engine.containers.list(all=True, ignore_removed=True, filters={"label": label})]


def test_compose_farm_survives_a_killed_orchestrator(compose_farm: ComposeFarm, tmp_path: Path,
                                                     docker_engine: docker.DockerClient) -> None:
    farm = compose_farm
    t0 = time.monotonic()
    junit = tmp_path / "campaign.xml"
    out, err = (tmp_path / "campaign.out").open("w+"), (tmp_path / "campaign.err").open("w+")
    campaign = subprocess.Popen(
        [sys.executable, "-m", "sandbox.cli", "campaign", "examples/firmware/adups-5.4",
         "--baseline", "examples/firmware/adups-5.3", "--hours", HOURS, "--junit", str(junit),
         "--contacts", "5", "--sms", "5", "--calls", "5", "--server", farm.servers,
         "--tls-ca", str(farm.secrets / "ca.pem"), "--token-file", str(farm.secrets / "token")],
        cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=out, stderr=err,
    )
    try:
        # Orchestrator 2 sees what orchestrator 1 leased: they share PostgreSQL.  The kill waits for
        # both versions to be submitted (their uploads done) and one to be running on a worker.
        second = farm.client(1)
        deadline = time.monotonic() + 600
        while True:
            records = second.list()[0]
            if len(records) == 2 and any(r.state == AnalysisState.RUNNING for r in records):
                break
            assert campaign.poll() is None, "the campaign ended before any analysis ran:\n" + out.read()
            assert time.monotonic() < deadline, "no analysis started on the compose farm"
            time.sleep(0.2)
        (first,) = docker_engine.containers.list(filters={"label": [
            f"com.docker.compose.project={farm.project}", "com.docker.compose.service=orchestrator-1"]})
        first.kill()
        killed_at = time.monotonic() - t0
        campaign.wait(timeout=900)
    finally:
        if campaign.poll() is None:
            campaign.kill()
            campaign.wait()
    out.seek(0)
    err.seek(0)
    text, errors = out.read(), err.read()
    took = time.monotonic() - t0
    print(f"orchestrator-1 killed {killed_at:.1f}s into the campaign; campaign took {took:.1f}s")
    assert campaign.returncode == 1, text + errors  # the baseline leaks
    rows = {line.split()[1]: line.split()[2] for line in text.splitlines() if line.startswith("adups-fota ")
            and len(line.split()) > 2 and line.split()[2] in ("LEAK", "clean", "suspicious", "not")}
    assert rows == {"5.3.0": "LEAK", "5.4.0": "clean"}, text
    assert "fixed:       call_log, contact, sms to bigdata.adups.com" in text, text
    assert "new leaks:   none" in text, text

    # orchestrator 1 stayed dead: the results came through orchestrator 2
    first.reload()
    assert first.status == "exited"
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    ids = [line.split(": ", 1)[1] for c in cases for line in (c.findtext("system-out") or "").splitlines()
           if line.startswith("analysis: ")]
    assert len(ids) == 2
    verdicts = {}
    for aid in ids:
        rec, _ = farm.client(1).get(aid)
        assert rec.state == AnalysisState.SUCCEEDED, rec
        verdicts[rec.labels["honeyphone.bundle"]] = rec.verdict.value if rec.verdict else None
    assert verdicts == {"adups-5.3": "leak", "adups-5.4": "clean"}

    # nothing of either analysis is left on the host
    settings = Settings()
    for aid in ids:
        label = f"{settings.label_analysis}={aid}"
        assert _containers(docker_engine, label) == []
        assert docker_engine.networks.list(filters={"label": label}) == []
        assert list_rules(aid) == []

    # and nothing of the farm once it is taken down
    farm.down()
    project = f"com.docker.compose.project={farm.project}"
    assert _containers(docker_engine, project) == []
    assert docker_engine.networks.list(filters={"label": project}) == []
    assert docker_engine.volumes.list(filters={"label": project}) == []
    for port in farm.adb_ports:  # each worker's adb server went with its container
        assert not AdbServer("adb", port).is_running()
