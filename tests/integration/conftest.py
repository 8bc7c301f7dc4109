"""Shared fixtures for integration tests: the real Docker engine, the real
images, a private adb server per test module, and random analysis ids so
every module is xdist-safe.  Nothing here is mocked."""

from __future__ import annotations

import fcntl
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from sandbox.containers.cleanup import cleanup
from sandbox.device import AdbServer
from sandbox.device.twin import TwinHandle, boot_twin
from sandbox.images.builder import ImageBuilder
from sandbox.settings import Settings

BUILD_LOCK = Path("/tmp/honeyphone-test-image-build.lock")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def built_images(docker_engine: docker.DockerClient) -> None:
    with open(BUILD_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        builder = ImageBuilder(Settings.from_env(), docker_engine)
        builder.build("twin")
        builder.build("fakenet")


@pytest.fixture(scope="module")
def hp_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings with a private adb server and data dir; the adb server is ours to kill."""
    settings = Settings.from_env(
        adb_server_port=_free_port(), data_dir=tmp_path_factory.mktemp("hpdata"),
    )
    yield settings
    AdbServer.from_settings(settings).kill()


@pytest.fixture()
def analysis_id() -> str:
    return "t" + secrets.token_hex(5)


@pytest.fixture()
def twin(
    hp_settings: Settings, docker_engine: docker.DockerClient, built_images: None, analysis_id: str
) -> Iterator[TwinHandle]:
    handle = boot_twin(hp_settings, docker_engine, AdbServer.from_settings(hp_settings), analysis_id)
    try:
        yield handle
    finally:
        handle.device.disconnect()
        cleanup(docker_engine, hp_settings, analysis_id)
