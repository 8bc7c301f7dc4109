"""``load_bundle``: turn an untrusted bundle into a verified, staged :class:`Bundle`.

The loader owns the all-or-nothing promise: everything is staged in a fresh
``mkdtemp`` directory under ``workdir``, and on *any* failure -- a rejected
bundle, an I/O error, even ``KeyboardInterrupt`` -- that directory is removed
before the error propagates.  Low-level read errors (corrupt gzip, bad zip
directory, truncated tar, ...) become ``BundleError`` so callers only ever
handle one exception type for bad input.

Accepted sources, decided by content rather than name: a directory, or a
``.tar``, gzip-compressed tar or ``.zip`` file holding the bundle either at
its top or inside exactly one top-level directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from sandbox.errors import BundleError
from sandbox.settings import BundleLimits

from .archive import ArchiveFormat, detect_format, extract_tar, extract_zip, read_head
from .model import Bundle
from .stage import CHUNK, Stager
from .tree import check_apps, copy_directory, locate_root, read_manifest, verify_tree

# Per-entry allowance for archive framing (tar headers and padding, zip local
# and central headers) when bounding the size of the archive file itself.
ARCHIVE_OVERHEAD_PER_ENTRY = 4096
ARCHIVE_OVERHEAD_FIXED = 1024 * 1024

_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
)


def load_bundle(source: Path, limits: BundleLimits, workdir: Path) -> Bundle:
    """Validate ``source`` strictly and stage it under ``workdir``.

    Returns a frozen :class:`Bundle`; the caller owns its staged copy and
    releases it with :meth:`Bundle.cleanup`.  Raises ``BundleError`` naming the
    problem and the offending path, leaving nothing behind in ``workdir``.
    """
    source = Path(source)
    workdir = Path(workdir).absolute()  # staged paths must survive a chdir
    workdir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="bundle-", dir=workdir))
    try:
        return _load(source, limits, staging)
    except BundleError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.path is None:  # a whole-archive problem: name the archive
            raise BundleError(exc.message, path=str(source), fix=exc.fix) from exc
        raise
    except _READ_ERRORS as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"could not load the bundle: {exc}", path=str(source)) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _load(source: Path, limits: BundleLimits, staging: Path) -> Bundle:
    top = staging / "tree"
    top.mkdir(mode=0o755)
    if not os.path.exists(source):
        raise BundleError("no such file or directory", path=str(source))
    fmt: str
    if source.is_dir():
        real_source, real_staging = os.path.realpath(source), os.path.realpath(staging)
        if os.path.commonpath([real_source, real_staging]) == real_source:
            raise BundleError("workdir must not be inside the bundle directory", path=str(source))
        digest = copy_directory(source, Stager(top, limits))
        fmt = "directory"
    else:
        digest, fmt = _extract_archive(source, top, limits)
    root = locate_root(top, allow_wrapper=fmt != "directory")
    verify_tree(root, limits)
    manifest = read_manifest(root, limits)
    check_apps(root, manifest)
    return Bundle(
        manifest=manifest,
        root=root,
        staging_dir=staging,
        sha256=digest,
        source=source,
        source_format=fmt,
    )


def _extract_archive(source: Path, top: Path, limits: BundleLimits) -> tuple[str, ArchiveFormat]:
    """Hash the archive file, then extract it from the same open file."""
    fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise BundleError("not a directory or a regular file", path=str(source))
        ceiling = limits.max_total_bytes + limits.max_files * ARCHIVE_OVERHEAD_PER_ENTRY + ARCHIVE_OVERHEAD_FIXED
        if st.st_size > ceiling:
            raise BundleError(
                f"archive is {st.st_size} bytes, larger than any bundle within the limits can be",
                path=str(source),
            )
        digest = hashlib.sha256()
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
        handle.seek(0)
        fmt = detect_format(read_head(handle), str(source))
        stager = Stager(top, limits, depth_slack=1)
        if fmt == "zip":
            extract_zip(handle, stager)
        else:
            extract_tar(handle, fmt, stager)
    return digest.hexdigest(), fmt
