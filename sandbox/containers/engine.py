"""Connecting to the Docker engine with an error that says how to fix it."""

from __future__ import annotations

import docker
import docker.errors
import requests.exceptions

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


def fresh_connection_error(settings: Settings, timeout: float = 5.0) -> str | None:
    """None when the engine answers a ping on a new connection; else why not.

    A pooled client may still be served by an engine that is shutting down;
    a new connection is refused from the moment it begins to.
    """
    try:
        client = (docker.DockerClient(base_url=settings.docker_url, timeout=int(timeout))
                  if settings.docker_url else docker.from_env(timeout=int(timeout)))
        try:
            client.ping()
        finally:
            client.close()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        return str(exc).removeprefix("Error while fetching server API version: ")[:300]
    return None
