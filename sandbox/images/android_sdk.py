"""Where the Android image's SDK pieces come from, checked before any build.

The image needs the emulator and a ``system-images;android-<api>;google_apis;
x86_64`` package.  Both come from Google's SDK repository, which a build
must never reach implicitly (this may be a machine without internet, or one
where only explicit downloads are allowed).  So the builder looks, in order:

1. ``HONEYPHONE_ANDROID_SDK`` (or ``--sdk``): an SDK root directory that
   ``sdkmanager`` filled on any machine;
2. ``HONEYPHONE_ANDROID_SDK_ZIP``: a zip of such a root;
3. ``ANDROID_SDK_ROOT`` / ``ANDROID_HOME``: an SDK already on this machine;

and otherwise fails at once, naming what is missing and how to get it.
Only an explicit ``--download`` lets the Docker build fetch the packages
itself (``sdkmanager`` in the build, on a machine with internet).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageError

SUPPORTED_APIS = (30, 33, 34, 35)
IMAGE_TAG = "google_apis"
ABI = "x86_64"
ENV_DIR = "HONEYPHONE_ANDROID_SDK"
ENV_ZIP = "HONEYPHONE_ANDROID_SDK_ZIP"


def system_image_rel(api: int) -> str:
    return f"system-images/android-{api}/{IMAGE_TAG}/{ABI}"


def sdk_packages(api: int) -> list[str]:
    return ["emulator", "platform-tools", f"system-images;android-{api};{IMAGE_TAG};{ABI}"]


@dataclass(frozen=True)
class SdkSource:
    kind: str  # "dir" or "zip"
    path: Path
    origin: str  # which setting named it

    def fingerprint(self, api: int) -> str:
        """Cheap identity for the build cache: package versions and sizes, not the gigabytes themselves."""
        h = hashlib.sha256(f"{self.kind}:{api}".encode())
        if self.kind == "zip":
            st = self.path.stat()
            h.update(f"{st.st_size}:{int(st.st_mtime)}".encode())
            return h.hexdigest()
        for rel in (f"{system_image_rel(api)}/source.properties", "emulator/source.properties",
                    "platform-tools/source.properties"):
            p = self.path / rel
            h.update(p.read_bytes() if p.is_file() else b"-")
        img = self.path / system_image_rel(api) / "system.img"
        h.update(str(img.stat().st_size if img.is_file() else -1).encode())
        return h.hexdigest()


def missing_in_dir(root: Path, api: int) -> list[str]:
    """What an SDK root lacks for ``api`` (empty when it is complete)."""
    missing = []
    if not (root / "emulator" / "emulator").is_file():
        missing.append("emulator (emulator/emulator)")
    if not (root / system_image_rel(api) / "system.img").is_file():
        missing.append(f"system-images;android-{api};{IMAGE_TAG};{ABI} ({system_image_rel(api)}/system.img)")
    return missing


def zip_prefix(names: list[str], api: int) -> str | None:
    """The directory inside the zip that is the SDK root ('' or 'sdk/' ...), or None."""
    marker = f"{system_image_rel(api)}/system.img"
    for name in names:
        if name.endswith(marker):
            prefix = name[: -len(marker)]
            if f"{prefix}emulator/emulator" in names:
                return prefix
    return None


def _check_zip(path: Path, api: int) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImageError(f"{ENV_ZIP}={path} is not a readable zip: {exc}") from exc
    if zip_prefix(names, api) is None:
        raise ImageError(
            f"{ENV_ZIP}={path} holds no SDK root with emulator/emulator and {system_image_rel(api)}/system.img",
            fix=how_to_get(api),
        )


def find_sdk(api: int, env: Mapping[str, str], explicit: Path | None = None) -> SdkSource | None:
    """The first usable SDK source; raises when one is named but incomplete."""
    if explicit is not None or env.get(ENV_DIR):
        root = explicit or Path(env[ENV_DIR])
        origin = "--sdk" if explicit is not None else ENV_DIR
        missing = missing_in_dir(root, api)
        if missing:
            raise ImageError(f"{origin}={root} lacks: {'; '.join(missing)}", fix=how_to_get(api))
        return SdkSource("dir", root, origin)
    if env.get(ENV_ZIP):
        path = Path(env[ENV_ZIP])
        _check_zip(path, api)
        return SdkSource("zip", path, ENV_ZIP)
    for var in ("ANDROID_SDK_ROOT", "ANDROID_HOME"):
        if env.get(var) and not missing_in_dir(Path(env[var]), api):
            return SdkSource("dir", Path(env[var]), var)
    return None


def how_to_get(api: int) -> str:
    pkgs = " ".join(f'"{p}"' for p in sdk_packages(api))
    return (
        f"on a machine with internet run `sdkmanager --sdk_root=DIR {pkgs}` and then "
        f"`{ENV_DIR}=DIR honeyphone images build android --api {api}` (DIR may be copied here first), "
        f"or there run `honeyphone images build android --api {api} --download`, "
        f"then move the image with `docker save`/`docker load`"
    )


def no_sdk_error(api: int, env: Mapping[str, str]) -> ImageError:
    looked = [f"{ENV_DIR} (unset)" if not env.get(ENV_DIR) else f"{ENV_DIR}={env[ENV_DIR]}",
              f"{ENV_ZIP} (unset)" if not env.get(ENV_ZIP) else f"{ENV_ZIP}={env[ENV_ZIP]}"]
    for var in ("ANDROID_SDK_ROOT", "ANDROID_HOME"):
        if env.get(var):
            looked.append(f"{var}={env[var]} (lacks {'; '.join(missing_in_dir(Path(env[var]), api))})")
        else:
            looked.append(f"{var} (unset)")
    return ImageError(
        f"the android image needs the Android emulator and system-images;android-{api};{IMAGE_TAG};{ABI}, "
        f"which come from Google's SDK repository; none is on this machine (looked at: {', '.join(looked)}) "
        f"and no download is attempted without --download",
        fix=how_to_get(api),
    )


def _link_or_copy_tree(src: Path, dst: Path) -> None:
    """Hard links where possible (same file system, no copy of gigabytes), else a copy."""
    for dirpath, _dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            s, d = Path(dirpath) / name, dst / rel / name
            if s.is_symlink():
                os.symlink(os.readlink(s), d)
                continue
            try:
                os.link(s, d)
            except OSError:
                shutil.copy2(s, d)


def stage_sdk(source: SdkSource, api: int, dest: Path) -> None:
    """Put the SDK pieces the Dockerfile's ``COPY sdk/`` expects under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    if source.kind == "zip":
        try:
            os.link(source.path, dest / "sdk.zip")
        except OSError:
            shutil.copy2(source.path, dest / "sdk.zip")
        return
    for rel in ("emulator", "platform-tools", system_image_rel(api)):
        src = source.path / rel
        if src.is_dir():
            _link_or_copy_tree(src, dest / rel)
    for lic in ("licenses",):
        if (source.path / lic).is_dir():
            _link_or_copy_tree(source.path / lic, dest / lic)


__all__ = ["ABI", "ENV_DIR", "ENV_ZIP", "IMAGE_TAG", "SUPPORTED_APIS", "SdkSource", "find_sdk", "how_to_get",
           "missing_in_dir", "no_sdk_error", "sdk_packages", "stage_sdk", "system_image_rel", "zip_prefix"]
