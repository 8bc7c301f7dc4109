"""Tags and cache keys of the farm images (deploy/images/); the builds themselves run for real in
tests/integration/deploy/test_compose_farm.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox import __version__
from sandbox.images import ImageBuilder
from sandbox.images.builder import FARM_IMAGES, KNOWN_IMAGES, deploy_images_dir, project_hash, project_root
from sandbox.settings import Settings


def test_default_tags_carry_the_package_version() -> None:
    b = ImageBuilder(Settings(), client=None)  # type: ignore[arg-type]  # tag_for needs no engine
    assert [b.tag_for(n) for n in FARM_IMAGES] == [
        f"honeyphone/orchestrator:{__version__}", f"honeyphone/worker:{__version__}", f"honeyphone/postgres:{__version__}"]
    assert set(FARM_IMAGES) <= set(KNOWN_IMAGES)


def test_tags_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FARM_IMAGES:
        monkeypatch.setenv(f"HONEYPHONE_{name.upper()}_IMAGE", f"mine/{name}:dev")
    b = ImageBuilder(Settings.from_env(), client=None)  # type: ignore[arg-type]
    assert [b.tag_for(n) for n in FARM_IMAGES] == ["mine/orchestrator:dev", "mine/worker:dev", "mine/postgres:dev"]


def test_dockerfiles_name_the_targets_the_builder_asks_for() -> None:
    farm = (deploy_images_dir() / "farm" / "Dockerfile").read_text()
    assert "AS orchestrator" in farm and "AS worker" in farm and "ARG BASE_IMAGE" in farm
    assert "ARG BASE_IMAGE" in (deploy_images_dir() / "postgres" / "Dockerfile").read_text()


def _copy(tmp: Path) -> Path:
    root = tmp / "checkout"
    root.mkdir()
    shutil.copy2(project_root() / "pyproject.toml", root)
    for sub in ("sandbox", "workers"):
        shutil.copytree(project_root() / sub, root / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_project_hash_follows_code_and_dependencies_not_bytecode(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    before = project_hash(root)
    (root / "sandbox" / "__pycache__").mkdir(exist_ok=True)
    (root / "sandbox" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert project_hash(root) == before
    with (root / "workers" / "agent.py").open("a") as f:
        f.write("\n# changed\n")
    changed = project_hash(root)
    assert changed != before
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n# dep\n")
    assert project_hash(root) not in (before, changed)
