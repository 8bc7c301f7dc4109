"""Content-addressed blob stores: the bytes of firmware and artifacts, named by sha256.

Writes go to a temporary file that is hashed while it is written, fsynced and
renamed into place, so a crash never leaves a blob whose name lies about its
content, and storing the same bytes twice keeps one copy.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import LimitExceeded, NotFound
from .model import BlobInfo


def _too_big(limit: int) -> LimitExceeded:
    return LimitExceeded(
        f"upload is larger than the limit of {limit} bytes",
        fix="raise the limit in the orchestrator settings or upload something smaller",
    )


class DiskBlobStore:
    """Blobs under ``root/sha256/ab/abcdef…``."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        for stale in self._tmp.iterdir():  # partial uploads of a crashed process
            stale.unlink(missing_ok=True)

    def path(self, sha256: str) -> Path:
        return self._root / "sha256" / sha256[:2] / sha256

    def write(self, chunks: Iterable[bytes], limit: int) -> BlobInfo:
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise _too_big(limit)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path(sha)
            if final.exists():
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            return BlobInfo(sha, size)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is missing from the store") from None


class MemoryBlobStore:
    """Blobs in a dict, for tests and throwaway orchestrators."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def write(self, chunks: Iterable[bytes], limit: int) -> BlobInfo:
        buf = bytearray()
        for chunk in chunks:
            if len(buf) + len(chunk) > limit:
                raise _too_big(limit)
            buf += chunk
        data = bytes(buf)
        sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._blobs.setdefault(sha, data)
        return BlobInfo(sha, len(data))

    def exists(self, sha256: str) -> bool:
        with self._lock:
            return sha256 in self._blobs

    def open(self, sha256: str) -> BinaryIO:
        with self._lock:
            data = self._blobs.get(sha256)
        if data is None:
            raise NotFound(f"blob {sha256} is missing from the store")
        return io.BytesIO(data)
