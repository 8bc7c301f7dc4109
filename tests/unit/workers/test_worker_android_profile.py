"""A worker advertises ``android`` only when /dev/kvm opens and an emulator image is built."""

from __future__ import annotations

from dataclasses import dataclass, field

import docker.errors
import pytest

import workers.capacity as capacity
from sandbox.settings import Settings


@dataclass
class FakeImage:
    tags: list[str]


@dataclass
class FakeImages:
    images: list[FakeImage] = field(default_factory=list)

    def list(self, name: str | None = None) -> list[FakeImage]:
        return [i for i in self.images if any(t.split(":")[0] == name for t in i.tags)]

    def get(self, ref: str) -> FakeImage:
        for i in self.images:
            if ref in i.tags:
                return i
        raise docker.errors.ImageNotFound(ref)


@dataclass
class FakeClient:
    images: FakeImages

    def ping(self) -> bool:
        return True


def _use(monkeypatch: pytest.MonkeyPatch, tags: list[str], kvm: bool) -> None:
    client = FakeClient(FakeImages([FakeImage(tags)]))
    monkeypatch.setattr("sandbox.containers.engine.docker_client", lambda settings: client)
    monkeypatch.setattr(capacity, "kvm_available", lambda: kvm)


@pytest.mark.parametrize("tags,kvm,expected", [
    (["honeyphone/android:34"], True, ("twin", "android")),
    (["honeyphone/android:30", "honeyphone/android:latest"], True, ("twin", "android")),
    (["honeyphone/android:34"], False, ("twin",)),
    (["honeyphone/android:latest"], True, ("twin",)),          # not an API-level tag
    (["honeyphone/twin:latest"], True, ("twin",)),
    (["other/honeyphone/android:34"], True, ("twin",)),
])
def test_detect_profiles(monkeypatch: pytest.MonkeyPatch, tags: list[str], kvm: bool,
                         expected: tuple[str, ...]) -> None:
    _use(monkeypatch, tags, kvm)
    assert capacity.detect_profiles(Settings()) == expected


def test_pinned_image(monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, ["lab/emu:14"], True)
    assert capacity.android_image_present(Settings(android_image="lab/emu:14"))
    assert not capacity.android_image_present(Settings(android_image="lab/emu:15"))


def test_docker_trouble_means_no(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings) -> object:
        raise RuntimeError("no daemon")

    monkeypatch.setattr("sandbox.containers.engine.docker_client", broken)
    assert capacity.android_image_present(Settings()) is False


@pytest.mark.parametrize("tags,settings,expected", [
    (["honeyphone/android:33", "honeyphone/android:34"], Settings(), "honeyphone/android:34"),  # android_api
    (["honeyphone/android:30", "honeyphone/android:33"], Settings(), "honeyphone/android:33"),  # highest built
    (["honeyphone/android:30", "honeyphone/android:33"], Settings(android_api=30), "honeyphone/android:30"),
    (["honeyphone/android:latest"], Settings(), None),
    (["lab/emu:14"], Settings(android_image="lab/emu:14"), "lab/emu:14"),
    (["honeyphone/android:34"], Settings(android_image="lab/emu:14"), None),  # pinned means pinned
])
def test_the_image_a_worker_boots(tags: list[str], settings: Settings, expected: str | None) -> None:
    """The image the android session boots is the one whose presence made the worker advertise the profile."""
    from sandbox.containers.emulator_container import pick_android_image

    assert pick_android_image(settings, tags) == expected
