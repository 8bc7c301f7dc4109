"""Directory bundles, and the checks run on every staged tree.

A directory source is copied entry by entry through the same ``Stager`` the
archive readers use, walking the source with descriptors and ``O_NOFOLLOW``
so that neither a symlink in the bundle nor a concurrent rename can make the
copy read outside it.  Its hash is a deterministic *tree hash*::

    sha256(b"honeyphone-bundle-tree-v1\\0" +
           for each entry, sorted by UTF-8 path:
               kind + b"\\0" + path + b"\\0" + payload + b"\\0")

where kind is ``d`` (directory, empty payload), ``f`` or ``x`` (regular file
without / with the owner exec bit; payload is the hex sha256 of the content)
or ``l`` (symlink; payload is the link target).  Owners, timestamps and other
mode bits are not part of a bundle, so they are not hashed.

Once a tree is staged -- from any source -- :func:`verify_tree` walks the
private copy and enforces what can only be judged on the whole tree: depth
relative to the bundle root, and that every symlink sits in ``files/`` and
resolves inside ``files/``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from sandbox.errors import BundleError
from sandbox.settings import BundleLimits

from .manifest import validate_manifest
from .model import FILES_DIR, MANIFEST_NAME, Manifest
from .paths import UnsafePath, check_component, display
from .stage import Stager, is_special

TREE_HASH_TAG = b"honeyphone-bundle-tree-v1\x00"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

_Record = tuple[bytes, bytes, bytes]


class _HardLinks:
    """Accepts hard-linked files only when every link to the inode is in the bundle.

    A file whose link count is higher than the number of times the walk meets
    it is also reachable from outside the bundle, so copying it could leak a
    host file (e.g. a link to ``/etc/shadow`` made by a hostile packer).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int], tuple[int, int, str]] = {}

    def add(self, st: os.stat_result, name: str) -> None:
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            nlink, count, first = self._seen.get(key, (st.st_nlink, 0, name))
            self._seen[key] = (nlink, count + 1, first)

    def check(self) -> None:
        for nlink, count, first in self._seen.values():
            if count != nlink:
                raise BundleError(
                    f"hard link to a file outside the bundle ({nlink} links, {count} inside)",
                    path=display(first),
                    fix="replace the hard link with a copy",
                )


def copy_directory(source: Path, stager: Stager) -> str:
    """Copy a bundle directory into the stage and return its tree hash."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except NotADirectoryError:
        raise BundleError("not a directory", path=str(source)) from None
    records: list[_Record] = []
    links = _HardLinks()
    try:
        _copy_dir(fd, (), stager, records, links)
    finally:
        os.close(fd)
    links.check()
    digest = hashlib.sha256(TREE_HASH_TAG)
    for path, kind, payload in sorted(records):
        digest.update(kind + b"\x00" + path + b"\x00" + payload + b"\x00")
    return digest.hexdigest()


def _copy_dir(fd: int, prefix: tuple[str, ...], stager: Stager, records: list[_Record], links: _HardLinks) -> None:
    # Stream the listing (no sorting: records are sorted for the hash) so a
    # directory with millions of entries hits max_files, not the memory limit.
    with os.scandir(fd) as listing:
        for entry in listing:
            _copy_entry(fd, entry.name, prefix, stager, records, links)


def _copy_entry(
    fd: int, name: str, prefix: tuple[str, ...], stager: Stager, records: list[_Record], links: _HardLinks
) -> None:
    rel = "/".join((*prefix, name))
    try:
        check_component(name)
    except UnsafePath as exc:
        raise BundleError(exc.reason, path=display(rel)) from None
    key = rel.encode("utf-8")
    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        stager.add_dir(rel)
        records.append((key, b"d", b""))
        child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        try:
            _copy_dir(child, (*prefix, name), stager, records, links)
        finally:
            os.close(child)
    elif stat.S_ISREG(st.st_mode):
        records.append(_copy_file(fd, name, rel, st, stager, links))
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=fd)
        stager.add_symlink(rel, target)
        records.append((key, b"l", target.encode("utf-8")))
    else:
        raise BundleError("device files, fifos and sockets are not allowed", path=display(rel))


def _copy_file(fd: int, name: str, rel: str, st: os.stat_result, stager: Stager, links: _HardLinks) -> _Record:
    src = os.open(name, _FILE_FLAGS, dir_fd=fd)
    try:
        now = os.fstat(src)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise BundleError("changed while the bundle was being read", path=display(rel))
        links.add(now, rel)
        executable = bool(now.st_mode & 0o100)
        digest = hashlib.sha256()
        stager.add_file(rel, now.st_size, lambda n: os.read(src, n), executable=executable, hasher=digest)
    finally:
        os.close(src)
    return (rel.encode("utf-8"), b"x" if executable else b"f", digest.hexdigest().encode("ascii"))


def locate_root(top: Path, *, allow_wrapper: bool) -> Path:
    """Find the bundle root: ``top`` itself, or (archives) its single top-level directory."""
    if os.path.lexists(top / MANIFEST_NAME):
        return top
    if allow_wrapper:
        entries = os.listdir(top)
        if len(entries) == 1:
            candidate = top / entries[0]
            if stat.S_ISDIR(os.lstat(candidate).st_mode) and os.path.lexists(candidate / MANIFEST_NAME):
                return candidate
    where = "at the top of the archive or inside its single top-level directory" if allow_wrapper else "at the top"
    raise BundleError(f"manifest is missing (expected {where})", path=MANIFEST_NAME)


def verify_tree(root: Path, limits: BundleLimits) -> None:
    """Check the staged tree as a whole: entry types, depth and where links lead."""
    manifest_mode = os.lstat(root / MANIFEST_NAME).st_mode
    if not stat.S_ISREG(manifest_mode):
        raise BundleError("must be a regular file (not a link or a directory)", path=MANIFEST_NAME)
    files = root / FILES_DIR
    if os.path.lexists(files) and not stat.S_ISDIR(os.lstat(files).st_mode):
        raise BundleError("must be a directory (not a file or a link)", path=f"{FILES_DIR}/")
    files_real = os.path.realpath(files)
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            entries = list(it)
        for entry in entries:
            parts = (*prefix, entry.name)
            rel = "/".join(parts)
            if len(parts) > limits.max_depth:
                raise BundleError(f"path is nested deeper than the limit of {limits.max_depth}", path=display(rel))
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                stack.append((Path(entry.path), parts))
            elif stat.S_ISLNK(mode):
                _check_link(Path(entry.path), parts, files_real)
            elif is_special(mode):
                raise BundleError("device files, fifos and sockets are not allowed", path=display(rel))


def _check_link(path: Path, parts: tuple[str, ...], files_real: str) -> None:
    rel = "/".join(parts)
    if parts[0] != FILES_DIR or len(parts) < 2:
        raise BundleError("links are only allowed inside files/", path=display(rel))
    target = os.readlink(path)
    if target.startswith("/"):
        raise BundleError(f"symlink target {display(target)} is absolute", path=display(rel))
    resolved = os.path.realpath(path)
    if os.path.commonpath([resolved, files_real]) != files_real:
        raise BundleError(f"symlink target {display(target)} leads outside files/", path=display(rel))


def read_manifest(root: Path, limits: BundleLimits) -> Manifest:
    """Read ``firmware.toml`` without following links and validate it."""
    fd = os.open(root / MANIFEST_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size > limits.max_manifest_bytes:
            raise BundleError(
                f"manifest is {size} bytes, over the limit of {limits.max_manifest_bytes}", path=MANIFEST_NAME
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limits.max_manifest_bytes + 1)
    finally:
        os.close(fd)
    return validate_manifest(data, limits=limits)


def check_apps(root: Path, manifest: Manifest) -> None:
    """Every ``apps.path`` must be a regular file in the bundle, reached through real directories."""
    for index, app in enumerate(manifest.apps):
        parts = app.path.split("/")
        current = root
        for depth, part in enumerate(parts):
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                mode = 0
            last = depth == len(parts) - 1
            if not (stat.S_ISREG(mode) if last else stat.S_ISDIR(mode)):
                raise BundleError(
                    f"listed as apps[{index}].path in {MANIFEST_NAME}, but it is not a regular file in the bundle",
                    path=app.path,
                )
