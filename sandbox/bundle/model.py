"""What a validated firmware bundle looks like once it is safe to use.

Everything here is a frozen dataclass built only by the validators in
``manifest.py`` and ``loader.py``: holding one of these objects means every
check already passed, so the device layer never re-validates or second-guesses.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple

Profile = Literal["twin", "android"]
User = Literal["system", "root", "shell"]

MANIFEST_NAME = "firmware.toml"
FILES_DIR = "files"


@dataclass(frozen=True)
class Firmware:
    """The ``[firmware]`` table: identity of the firmware under analysis."""

    name: str
    version: str
    profile: Profile = "twin"
    description: str | None = None


@dataclass(frozen=True)
class Service:
    """One ``[[services]]`` entry, started by the twin's init in manifest order.

    ``exec`` mirrors the manifest key (``argv`` is an alias).  ``env`` keeps
    the manifest's order as immutable pairs so the dataclass stays hashable;
    ``dict(service.env)`` or :attr:`environment` gives a dict.
    """

    name: str
    exec: tuple[str, ...]
    user: User = "system"
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None

    @property
    def argv(self) -> tuple[str, ...]:
        """The program and its arguments (same as ``exec``)."""
        return self.exec

    @property
    def environment(self) -> dict[str, str]:
        """A fresh ``dict`` of the service's extra environment variables."""
        return dict(self.env)


@dataclass(frozen=True)
class App:
    """One ``[[apps]]`` entry: an APK, by its '/'-separated path in the bundle."""

    path: str


@dataclass(frozen=True)
class Manifest:
    """A fully validated ``firmware.toml``."""

    firmware: Firmware
    services: tuple[Service, ...] = ()
    apps: tuple[App, ...] = ()


class FileEntry(NamedTuple):
    """One regular file to put on the device.

    ``mode`` is the permission bits only (0o644 or 0o755), ready for
    ``adb push``; directories and symlinks come from :meth:`Bundle.directories`
    and :meth:`Bundle.symlinks`, so a consumer that only pushes files can never
    be tricked into following a link.
    """

    device_path: str
    host_path: Path
    mode: int


class SymlinkEntry(NamedTuple):
    """One symlink to create on the device; ``target`` is relative and was checked."""

    device_path: str
    target: str


@dataclass(frozen=True)
class Bundle:
    """A bundle that passed every check, staged in a private directory.

    ``root`` holds ``firmware.toml`` and (optionally) ``files/``; it lives
    under ``staging_dir``, which :meth:`cleanup` removes.  ``sha256`` is the
    hash of the original input: the archive's bytes, or for a directory the
    tree hash described in ``tree.py``.  ``source_format`` is one of
    ``"directory"``, ``"tar"``, ``"tar.gz"`` or ``"zip"``.
    """

    manifest: Manifest
    root: Path
    staging_dir: Path
    sha256: str
    source: Path
    source_format: str

    @property
    def files_dir(self) -> Path:
        """The staged ``files/`` tree (may not exist if the bundle has none)."""
        return self.root / FILES_DIR

    def app_path(self, app: App) -> Path:
        """Host path of a staged APK named by the manifest."""
        return self.root.joinpath(*app.path.split("/"))

    def files(self) -> Iterator[FileEntry]:
        """Yield every regular file under ``files/``, sorted by device path."""
        for device_path, host_path, mode in self._entries():
            if stat.S_ISREG(mode):
                yield FileEntry(device_path, host_path, stat.S_IMODE(mode))

    def directories(self) -> Iterator[str]:
        """Yield the device path of every directory under ``files/``, parents first.

        Pushing files creates their parents anyway; this is for empty ones.
        """
        for device_path, _host_path, mode in self._entries():
            if stat.S_ISDIR(mode):
                yield device_path

    def symlinks(self) -> Iterator[SymlinkEntry]:
        """Yield every symlink under ``files/`` with its (relative, verified) target."""
        for device_path, host_path, mode in self._entries():
            if stat.S_ISLNK(mode):
                yield SymlinkEntry(device_path, os.readlink(host_path))

    def _entries(self) -> Iterator[tuple[str, Path, int]]:
        top = self.files_dir
        if not stat.S_ISDIR(_lstat_mode(top)):
            return
        yield from _walk(top, "")

    def cleanup(self) -> None:
        """Remove the staged copy.  Safe to call more than once."""
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def __enter__(self) -> Bundle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def _lstat_mode(path: Path) -> int:
    try:
        return path.lstat().st_mode
    except FileNotFoundError:
        return 0


def _walk(host_dir: Path, device_dir: str) -> Iterator[tuple[str, Path, int]]:
    """Depth-first, sorted, never following links."""
    with os.scandir(host_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        device_path = f"{device_dir}/{entry.name}"
        host_path = Path(entry.path)
        yield device_path, host_path, mode
        if stat.S_ISDIR(mode):
            yield from _walk(host_path, device_path)
