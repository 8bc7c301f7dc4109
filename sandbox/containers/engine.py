"""Connecting to the Docker engine with an error that says how to fix it."""

from __future__ import annotations

import docker
import docker.errors

from ..errors import EnvironmentProblem
from ..settings import Settings


def docker_client(settings: Settings) -> docker.DockerClient:
    """A Docker SDK client, checked with a ping so failures surface here, once."""
    try:
        client = (
            docker.DockerClient(base_url=settings.docker_url)
            if settings.docker_url
            else docker.from_env()
        )
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise EnvironmentProblem(
            f"no Docker engine answers ({exc})",
            fix="install and start it: apt-get install -y docker.io && (dockerd &), "
            "or run `make demo`, which does both",
        ) from exc
    return client
