"""Image builds that work with no container registry.

The Dockerfiles name a Debian base (``BASE_IMAGE``): the device images in
``emulator_images/`` and the farm's own images in ``deploy/images/``
(orchestrator and worker from one Dockerfile, PostgreSQL from Debian's
package), so a farm needs no registry either.  When that base is
neither present nor pullable, the builder makes the same Debian release from
Debian's own packages (``mmdebstrap --variant=minbase`` then ``docker import``)
and builds the unchanged Dockerfile on it.  A build is skipped when an image
exists whose label records the same content hash of its build context and
base, so repeated ``make test`` runs cost nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from ..errors import EnvironmentProblem, ImageError
from ..settings import Settings

Progress = Callable[[str], None]
FARM_IMAGES = ("orchestrator", "worker", "postgres")
KNOWN_IMAGES = ("twin", "fakenet", "android", *FARM_IMAGES)
# orchestrator and worker are two targets of one Dockerfile holding Honeyphone's wheels.
_FARM_CONTEXTS = {"orchestrator": "farm", "worker": "farm", "postgres": "postgres"}
SNAPSHOT_TIMEOUT_S = 1200
WHEELS_KEPT_S = 24 * 3600


def images_dir(settings: Settings) -> Path:
    """The ``emulator_images/`` directory (repo checkout or HONEYPHONE_IMAGES_DIR)."""
    if settings.images_dir is not None:
        return settings.images_dir
    return Path(__file__).resolve().parents[2] / "emulator_images"


def project_root() -> Path:
    """The checkout holding ``pyproject.toml``, ``sandbox/``, ``workers/`` and ``deploy/``."""
    return Path(__file__).resolve().parents[2]


def deploy_images_dir() -> Path:
    return project_root() / "deploy" / "images"


def project_hash(root: Path) -> str:
    """What the orchestrator and worker images install: the package sources and their declared dependencies."""
    h = hashlib.sha256((root / "pyproject.toml").read_bytes())
    for sub in ("sandbox", "workers"):
        h.update(context_hash(root / sub, sub).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class BuildResult:
    name: str
    tag: str
    image_id: str
    cached: bool
    base: str
    seconds: float


def context_hash(context: Path, extra: str) -> str:
    """sha256 over every file's relative path, mode and bytes, plus ``extra``."""
    h = hashlib.sha256(extra.encode())
    for path in sorted(context.rglob("*")):
        rel = path.relative_to(context)
        if "__pycache__" in rel.parts or path.suffix == ".pyc" or path.is_dir():
            continue
        h.update(str(rel).encode() + b"\0" + oct(path.stat().st_mode & 0o111).encode() + b"\0")
        h.update(path.read_bytes() if not path.is_symlink() else os.readlink(path).encode())
        h.update(b"\0")
    return h.hexdigest()


class ImageBuilder:
    """Builds Honeyphone images on the local Docker engine."""

    def __init__(self, settings: Settings, client: docker.DockerClient, progress: Progress | None = None):
        self._settings = settings
        self._client = client
        self._progress: Progress = progress or (lambda _msg: None)

    def tag_for(self, name: str, api: int | None = None) -> str:
        if name == "twin":
            return self._settings.twin_image
        if name == "fakenet":
            return self._settings.fakenet_image
        if name == "android":
            return self._settings.android_image_tag(api if api is not None else self._settings.android_api)
        if name == "orchestrator":
            return self._settings.orchestrator_image
        if name == "worker":
            return self._settings.worker_image
        if name == "postgres":
            return self._settings.postgres_image
        raise ImageError(f"unknown image {name!r}", fix=f"choose one of {', '.join(KNOWN_IMAGES)}")

    # -- base image ---------------------------------------------------------

    def _image_id(self, ref: str) -> str | None:
        try:
            return str(self._client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None

    def ensure_base(self) -> str:
        """Return a local image reference for the Debian base, creating it if needed."""
        s = self._settings
        for ref in (s.base_image, s.local_base_image):
            if self._image_id(ref):
                return ref
        self._progress(f"pulling {s.base_image}")
        try:
            self._client.images.pull(s.base_image)
            return s.base_image
        except docker.errors.APIError as exc:
            self._progress(f"cannot pull {s.base_image} ({exc.explanation or exc}); building it from Debian packages")
        self._bootstrap_base()
        return s.local_base_image

    def _bootstrap_base(self) -> None:
        s = self._settings
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            raise EnvironmentProblem(
                f"the base image {s.base_image} cannot be pulled and mmdebstrap is not installed",
                fix="apt-get install -y mmdebstrap (or load the base image with docker load)",
            )
        tmp_root = s.data_dir / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_root, prefix="base-") as tmp:
            tar = Path(tmp) / "base.tar"
            self._progress(f"mmdebstrap {s.debian_suite} (minbase)")
            proc = subprocess.run(
                [mmdebstrap, "--variant=minbase", "--format=tar", s.debian_suite, str(tar)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
                raise ImageError(
                    "mmdebstrap failed: " + " | ".join(tail),
                    fix="check that Debian's package mirror is reachable and that you are root",
                )
            repo, _, tag = s.local_base_image.partition(":")
            self._progress(f"docker import -> {s.local_base_image}")
            with open(tar, "rb") as f:
                self._client.api.import_image_from_data(
                    f.read(), repository=repo, tag=tag or "latest",
                    changes=['CMD ["bash"]', "ENV LANG=C.UTF-8"],
                )

    # -- build --------------------------------------------------------------

    def build(
        self,
        name: str,
        *,
        force: bool = False,
        api: int | None = None,
        sdk: Path | None = None,
        download: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> BuildResult:
        """Build ``name``; ``api``/``sdk``/``download``/``env`` only matter for ``android``."""
        if name == "android":
            return self._build_android(api or self._settings.android_api, force=force, sdk=sdk, download=download,
                                       env=os.environ if env is None else env)
        if name in FARM_IMAGES:
            return self._build_farm(name, force=force)
        t0 = time.monotonic()
        tag = self.tag_for(name)
        context = self._context(name)
        base = self.ensure_base()
        base_id = self._image_id(base) or base
        digest = context_hash(context, extra=base_id)
        label = f"{self._settings.label_prefix}.context-sha256"
        if not force and (cached := self._up_to_date(name, tag, label, digest, base, t0)) is not None:
            return cached
        self._progress(f"building {tag} on {base}")
        image_id = self._docker_build(context, tag, base, {label: digest, self._settings.label_role: f"image-{name}"})
        return BuildResult(name, tag, image_id, False, base, time.monotonic() - t0)

    def _build_farm(self, name: str, *, force: bool) -> BuildResult:
        """orchestrator/worker: this checkout's package and dependencies as wheels built here, because
        pip inside the build cannot verify TLS; postgres: Debian's package only."""
        t0 = time.monotonic()
        tag = self.tag_for(name)
        context = deploy_images_dir() / _FARM_CONTEXTS[name]
        if not (context / "Dockerfile").is_file():
            raise ImageError(f"no Dockerfile at {context}", fix="build the farm images from a Honeyphone checkout")
        base = self.ensure_base()
        base_id = self._image_id(base) or base
        root = project_root()
        python = name != "postgres"
        extra = f"{base_id}:{name}" + (f":{project_hash(root)}" if python else "")
        digest = context_hash(context, extra=extra)
        label = f"{self._settings.label_prefix}.context-sha256"
        if not force and (cached := self._up_to_date(name, tag, label, digest, base, t0)) is not None:
            return cached
        labels = {label: digest, self._settings.label_role: f"image-{name}"}
        if not python:
            self._progress(f"building {tag} on {base}")
            image_id = self._docker_build(context, tag, base, labels)
            return BuildResult(name, tag, image_id, False, base, time.monotonic() - t0)
        tmp_root = self._settings.data_dir / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_root, prefix=f"{name}-ctx-") as tmp:
            ctx = Path(tmp) / "context"
            shutil.copytree(context, ctx, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            self._wheelhouse(root, Path(tmp), ctx / "wheels")
            self._progress(f"building {tag} on {base}")
            image_id = self._docker_build(ctx, tag, base, labels, target=name)
        return BuildResult(name, tag, image_id, False, base, time.monotonic() - t0)

    def _wheelhouse(self, root: Path, scratch: Path, out: Path) -> None:
        """The wheels of this checkout into ``out``: built once per source hash, shared by the worker and
        orchestrator builds (one ``pip wheel`` run is most of a code-change rebuild)."""
        cache = self._settings.data_dir / "tmp" / f"wheels-{project_hash(root)[:16]}"
        if not (cache / "app").is_dir():
            self._progress("building wheels of honeyphone and its dependencies")
            # Wheels of other sources: kept a day, as another checkout may be building from them.
            for old in cache.parent.glob("wheels-*"):
                if time.time() - old.stat().st_mtime > WHEELS_KEPT_S:
                    shutil.rmtree(old, ignore_errors=True)
            staging = scratch / "wheels"
            self._wheels(root, scratch, staging)
            part = cache.with_name(f"{cache.name}.{os.getpid()}.part")
            shutil.copytree(staging, part)
            try:
                part.rename(cache)
            except OSError:  # another build put the same wheels there first
                shutil.rmtree(part, ignore_errors=True)
        shutil.copytree(cache, out)

    @staticmethod
    def _wheels(root: Path, scratch: Path, out: Path) -> None:
        """``wheels/deps/`` (dependencies: a Docker layer that survives code changes) and ``wheels/app/``.

        The package is built from a copy of its sources so the checkout gets no build/ or egg-info.
        """
        src = scratch / "src"
        src.mkdir()
        for item in ("pyproject.toml", "README.md"):
            shutil.copy2(root / item, src / item)
        for sub in ("sandbox", "workers"):
            shutil.copytree(root / sub, src / sub, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        deps, app = out / "deps", out / "app"
        app.mkdir(parents=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
             "--wheel-dir", str(deps), str(src)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
            raise ImageError("pip wheel failed: " + " | ".join(tail),
                             fix="the host's pip must reach the package index (or its wheel cache)")
        for whl in deps.glob("honeyphone-*.whl"):
            whl.rename(app / whl.name)
        if not any(app.iterdir()):
            raise ImageError("pip wheel produced no honeyphone wheel")

    def _context(self, name: str) -> Path:
        context = images_dir(self._settings) / name
        if not (context / "Dockerfile").is_file():
            raise ImageError(f"no Dockerfile at {context}", fix="run from a Honeyphone checkout or set HONEYPHONE_IMAGES_DIR")
        return context

    def _up_to_date(self, name: str, tag: str, label: str, digest: str, base: str, t0: float) -> BuildResult | None:
        """The existing image when its context label says it was built from exactly this context."""
        try:
            existing = self._client.images.get(tag)
        except docker.errors.ImageNotFound:
            return None
        if existing.labels.get(label) != digest:
            return None
        self._progress(f"{tag} is up to date")
        return BuildResult(name, tag, str(existing.id), True, base, time.monotonic() - t0)

    def _build_android(
        self, api: int, *, force: bool, sdk: Path | None, download: bool, env: Mapping[str, str]
    ) -> BuildResult:
        """The emulator image: SDK checked first (fail fast, nothing downloaded unless asked)."""
        from .android_sdk import SUPPORTED_APIS, find_sdk, no_sdk_error, stage_sdk

        t0 = time.monotonic()
        if api not in SUPPORTED_APIS:
            raise ImageError(f"API level {api} is not supported", fix=f"choose one of {SUPPORTED_APIS}")
        source = find_sdk(api, env, sdk)
        if source is None and not download:
            raise no_sdk_error(api, env)
        tag = self.tag_for("android", api)
        context = self._context("android")
        base = self.ensure_base()
        base_id = self._image_id(base) or base
        sdk_id = source.fingerprint(api) if source else "download"
        digest = context_hash(context, extra=f"{base_id}:{api}:{sdk_id}")
        label = f"{self._settings.label_prefix}.context-sha256"
        if not force and (cached := self._up_to_date("android", tag, label, digest, base, t0)) is not None:
            return cached
        tmp_root = self._settings.data_dir / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        labels = {label: digest, self._settings.label_role: "image-android", f"{self._settings.label_prefix}.api": str(api)}
        with tempfile.TemporaryDirectory(dir=tmp_root, prefix="android-ctx-") as tmp:
            ctx = Path(tmp) / "context"
            shutil.copytree(context, ctx, ignore=shutil.ignore_patterns("__pycache__", "sdk"))
            (ctx / "sdk").mkdir(exist_ok=True)
            if source is not None:
                self._progress(f"staging the SDK from {source.origin}={source.path}")
                stage_sdk(source, api, ctx / "sdk")
            self._progress(f"building {tag} on {base}" + (" (downloading the SDK in the build)" if source is None else ""))
            image_id = self._docker_build(ctx, tag, base, labels, {
                "API_LEVEL": str(api), "SDK_DOWNLOAD": "1" if source is None else "0",
            })
        if self._snapshot_android(tag, labels):
            image_id = self._image_id(tag) or image_id
        return BuildResult("android", tag, image_id, False, base, time.monotonic() - t0)

    def _snapshot_android(self, tag: str, labels: dict[str, str]) -> bool:
        """Boot once with KVM and no network, save the quick-boot snapshot, commit it into ``tag``."""
        from ..containers.emulator_container import KVM, kvm_available

        if not kvm_available():
            self._progress(f"{KVM} is not usable here: no quick-boot snapshot, the emulator cold-boots each time")
            return False
        self._progress("booting once to save a quick-boot snapshot")
        container = self._client.containers.run(
            tag, ["/opt/honeyphone/make-snapshot.sh"], devices=[f"{KVM}:{KVM}:rwm"], network_mode="none",
            detach=True, labels={self._settings.label_role: "image-build"},
            mem_limit=self._settings.android_memory_bytes, shm_size="256m",
        )
        try:
            status = container.wait(timeout=SNAPSHOT_TIMEOUT_S)
            if int(status.get("StatusCode", 1)) != 0:
                tail = bytes(container.logs(tail=15)).decode("utf-8", "replace")
                self._progress(f"snapshot run failed; the image still works (cold boot): {tail.strip()[-400:]}")
                return False
            repo, _, version = tag.rpartition(":")
            changes = ['CMD ["/opt/honeyphone/launch.sh"]'] + [f'LABEL "{k}"="{v}"' for k, v in labels.items()]
            changes.append(f'LABEL "{self._settings.label_prefix}.snapshot"="quickboot"')
            container.commit(repository=repo, tag=version, changes=changes)
            return True
        finally:
            container.remove(force=True, v=True)

    def _docker_build(
        self, context: Path, tag: str, base: str, labels: dict[str, str], buildargs: dict[str, str] | None = None,
        target: str | None = None,
    ) -> str:
        stream: Any = self._client.api.build(
            path=str(context), tag=tag, buildargs={"BASE_IMAGE": base, **(buildargs or {})}, labels=labels,
            decode=True, rm=True, forcerm=True, pull=False, target=target,
        )
        last: list[str] = []
        for chunk in stream:
            if "error" in chunk:
                detail = str(chunk.get("error", "")).strip()
                raise ImageError(
                    f"docker build of {tag} failed: {detail}\n" + "\n".join(last[-15:]),
                    fix="read the build log above; a failing apt-get usually means no network to Debian's mirror",
                )
            line = str(chunk.get("stream", "")).strip()
            if line:
                last.append(line)
                if line.startswith("Step ") or line.startswith("Successfully"):
                    self._progress(line)
        image_id = self._image_id(tag)
        if image_id is None:
            raise ImageError(f"docker build of {tag} produced no image:\n" + "\n".join(last[-15:]))
        return image_id
