"""Fixtures for the network containment tests (real Docker, twin, fakenet and adb).

``contained_factory`` boots fully contained analyses (see ``netlab``) and
tears every one of them down at the end of the module, also on failure.
It builds on the shared integration fixtures: ``docker_engine``,
``built_images`` (twin and fakenet) and ``hp_settings`` (a private adb
server per module, killed at the end).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import docker
import pytest
from netlab import ContainedAnalysis, boot_contained

from sandbox.device import AdbServer
from sandbox.settings import Settings


@pytest.fixture(scope="module")
def contained_factory(
    built_images: None,
    docker_engine: docker.DockerClient,
    hp_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ContainedAnalysis]]:
    made: list[ContainedAnalysis] = []

    def make(**kwargs: bool) -> ContainedAnalysis:
        server = AdbServer.from_settings(hp_settings)
        a = boot_contained(docker_engine, hp_settings, server, tmp_path_factory.mktemp("analysis"), **kwargs)
        made.append(a)
        return a

    yield make
    for a in made:
        a.teardown()

