"""Find and remove everything an analysis created, even after a crash.

Containers first (a network with endpoints cannot be removed), then networks.
Firewall rules are removed by the containment module registered as a hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import docker
import docker.errors
import requests.exceptions

from ..settings import Settings
from .labels import analysis_filter


@dataclass(frozen=True)
class CleanupReport:
    containers: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    other: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())
    engine_down: bool = False  # containers and networks could not even be listed

    @property
    def removed_anything(self) -> bool:
        return bool(self.containers or self.networks or self.other)


ExtraCleanup = Callable[[str | None], list[str]]


def cleanup(
    client: docker.DockerClient,
    settings: Settings,
    analysis_id: str | None = None,
    extra: tuple[ExtraCleanup, ...] = (),
) -> CleanupReport:
    """Remove the labelled leftovers of one analysis, or of all when ``analysis_id`` is None."""
    filters = analysis_filter(settings, analysis_id)
    containers: list[str] = []
    networks: list[str] = []
    other: list[str] = []
    errors: list[str] = []
    engine_down = False
    try:
        for c in client.containers.list(all=True, ignore_removed=True, filters=filters):
            try:
                c.remove(force=True, v=True)
                containers.append(str(c.name))
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                errors.append(f"container {c.name}: {exc}")
        for n in client.networks.list(filters=filters):
            try:
                n.remove()
                networks.append(str(n.name))
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                errors.append(f"network {n.name}: {exc}")
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        # The engine is down or restarting: the firewall hooks below still run;
        # the caller may retry for the containers and networks.
        engine_down = True
        errors.append(f"the Docker engine does not answer: {exc}")
    for hook in extra:
        try:
            other.extend(hook(analysis_id))
        except Exception as exc:  # a failing hook must not stop the others
            errors.append(f"{getattr(hook, '__name__', hook)}: {exc}")
    return CleanupReport(tuple(containers), tuple(networks), tuple(other), tuple(errors), engine_down)
