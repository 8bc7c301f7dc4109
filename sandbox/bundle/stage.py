"""Writing untrusted entries into the private staging directory.

Every reader (tar, zip, directory) feeds entries to one :class:`Stager`, so
the rules live in one place:

* names go through ``paths.member_parts`` (no ``..``, nothing absolute, ...);
* each entry is counted against ``BundleLimits`` *before* it is written, and
  file bytes are counted *while* they are copied, so a header that lies about
  a size cannot get more than the limit onto disk;
* nothing ever follows a link: every operation walks from the staging root
  with ``O_NOFOLLOW | O_DIRECTORY`` opens relative to the parent's descriptor,
  so a symlink member cannot redirect a later write, even under a race;
* files are created with ``O_EXCL`` and permissions are normalised to 0644 or
  0755 (owner exec bit kept, setuid/setgid/sticky and group/other write gone).

Symlinks are only checked syntactically here; ``tree.verify_tree`` resolves
them once the whole tree exists.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import Protocol
from pathlib import Path

from sandbox.errors import BundleError
from sandbox.settings import BundleLimits

from .paths import UnsafePath, check_link_target, display, member_parts, split_relative

CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Reader = Callable[[int], bytes]


class Hasher(Protocol):
    """Anything with ``update(bytes)``, e.g. ``hashlib.sha256()``."""

    def update(self, data: bytes, /) -> None: ...


def file_mode(executable: bool) -> int:
    """The only two permission sets a staged regular file can have."""
    return 0o755 if executable else 0o644


class Stager:
    """Creates bundle entries under ``top`` within the limits, never following links.

    ``depth_slack`` is 1 for archives, which may wrap the bundle in one
    top-level directory; the exact depth relative to the bundle root is
    checked again by ``tree.verify_tree``.
    """

    def __init__(self, top: Path, limits: BundleLimits, *, depth_slack: int = 0) -> None:
        self.top = top
        self.limits = limits
        self.depth_slack = depth_slack
        self.entries = 0
        self.total_bytes = 0
        self._seen: set[tuple[str, ...]] = set()
        self._regular: dict[tuple[str, ...], bool] = {}

    # -- accounting -----------------------------------------------------------

    def _admit(self, name: str, *, allow_root: bool = False) -> tuple[str, ...]:
        """Count the entry (every one, so ``tarfile``'s member list stays bounded), then check it."""
        shown = display(name)
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise BundleError(f"too many files (limit {self.limits.max_files})", path=shown)
        parts = member_parts(name)
        if not parts:
            if allow_root:
                return parts
            raise BundleError("entry has an empty name", path=shown)
        if len(parts) > self.limits.max_depth + self.depth_slack:
            raise BundleError(f"path is nested deeper than the limit of {self.limits.max_depth}", path=shown)
        if parts in self._seen:
            raise BundleError("duplicate archive member", path=shown)
        self._seen.add(parts)
        return parts

    def check_declared_size(self, name: str, size: int) -> None:
        """Reject a file from its declared size, before reading any of it."""
        if size < 0:
            raise BundleError("entry declares a negative size", path=display(name))
        if size > self.limits.max_file_bytes:
            raise BundleError(
                f"file declares {size} bytes, over the per-file limit of {self.limits.max_file_bytes}",
                path=display(name),
            )
        if self.total_bytes + size > self.limits.max_total_bytes:
            raise BundleError(
                f"bundle exceeds the total size limit of {self.limits.max_total_bytes} bytes",
                path=display(name),
            )

    # -- entries ----------------------------------------------------------------

    def add_dir(self, name: str) -> None:
        """Create a directory (and its parents); ``.`` or ``./`` is the root and a no-op."""
        parts = self._admit(name, allow_root=True)
        if parts:
            os.close(self._open_dir(parts, name, create=True))

    def add_file(
        self,
        name: str,
        declared_size: int,
        read: Reader,
        *,
        executable: bool,
        hasher: Hasher | None = None,
    ) -> int:
        """Copy a regular file from ``read``, counting the real bytes; return their number.

        ``declared_size`` is checked first; the copy then aborts as soon as the
        actual bytes pass a limit, and a short or long read against the
        declared size is rejected too (never trust headers).
        """
        parts = self._admit(name)
        self.check_declared_size(name, declared_size)
        parent = self._open_dir(parts[:-1], name, create=True)
        try:
            fd = self._create(parent, parts, name)
        finally:
            os.close(parent)
        try:
            written = self._copy(fd, read, name, hasher)
            if written != declared_size:
                raise BundleError(
                    f"entry holds {written} bytes but its header declares {declared_size}",
                    path=display(name),
                )
            os.fchmod(fd, file_mode(executable))
        finally:
            os.close(fd)
        self._regular[parts] = executable
        return written

    def add_symlink(self, name: str, target: str) -> None:
        """Create a symlink after a syntactic check of its target."""
        parts = self._admit(name)
        try:
            check_link_target(target)
        except UnsafePath as exc:
            raise BundleError(exc.reason, path=display(name)) from None
        parent = self._open_dir(parts[:-1], name, create=True)
        try:
            os.symlink(target, parts[-1], dir_fd=parent)
        except FileExistsError:
            raise BundleError("conflicts with an earlier entry of the same name", path=display(name)) from None
        finally:
            os.close(parent)

    def add_hardlink(self, name: str, target_name: str) -> None:
        """Materialise a hard link as an independent copy of an earlier regular file.

        The copy counts against the limits like any file, so thousands of links
        to one large member cannot multiply it past ``max_total_bytes``.
        """
        try:
            target = split_relative(target_name)
        except UnsafePath as exc:
            raise BundleError(f"hard link target {display(target_name)}: {exc.reason}", path=display(name)) from None
        if target not in self._regular:
            raise BundleError(
                f"hard link to {display(target_name)}, which is not an earlier regular file in the bundle",
                path=display(name),
            )
        parent = self._open_dir(target[:-1], target_name, create=False)
        try:
            src = os.open(target[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        finally:
            os.close(parent)
        try:
            size = os.fstat(src).st_size
            self.add_file(name, size, lambda n: os.read(src, n), executable=self._regular[target])
        finally:
            os.close(src)

    # -- low level ----------------------------------------------------------------

    def _open_dir(self, parts: tuple[str, ...], name: str, *, create: bool) -> int:
        """Open (optionally creating) ``top/parts`` without following any link."""
        fd = os.open(self.top, _DIR_FLAGS)
        try:
            for part in parts:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                        raise BundleError(
                            "path passes through something that is not a directory (a file or a link)",
                            path=display(name),
                        ) from None
                    raise
                os.close(fd)
                fd = child
                os.fchmod(fd, 0o755)
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _create(self, parent: int, parts: tuple[str, ...], name: str) -> int:
        try:
            return os.open(parts[-1], _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        except FileExistsError:
            raise BundleError("conflicts with an earlier entry of the same name", path=display(name)) from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR):
                raise BundleError("conflicts with an earlier entry of the same name", path=display(name)) from None
            raise

    def _copy(self, fd: int, read: Reader, name: str, hasher: Hasher | None) -> int:
        written = 0
        while True:
            chunk = read(CHUNK)
            if not chunk:
                return written
            written += len(chunk)
            self.total_bytes += len(chunk)
            if written > self.limits.max_file_bytes:
                raise BundleError(
                    f"file is larger than the per-file limit of {self.limits.max_file_bytes} bytes",
                    path=display(name),
                )
            if self.total_bytes > self.limits.max_total_bytes:
                raise BundleError(
                    f"bundle exceeds the total size limit of {self.limits.max_total_bytes} bytes",
                    path=display(name),
                )
            if hasher is not None:
                hasher.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]


def is_special(mode: int) -> bool:
    """Device nodes, fifos and sockets: never allowed in a bundle."""
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))
