"""Copying files out of a container with ``get_archive``, defensively.

The fakenet's data directory holds what hostile firmware sent, so the tar
stream is treated as untrusted: only regular files and directories, no
absolute paths, no ``..``, no links, and a cap on the total size.  Works on
stopped containers too, which is how logs are fetched after a clean stop.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO

import docker
import docker.errors

from ..errors import HoneyphoneError

MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024


class ArchiveError(HoneyphoneError):
    """A file could not be copied out of a container."""


def _tar_spool(client: docker.DockerClient, container_id: str, path: str, max_bytes: int) -> IO[bytes]:
    """The tar stream of ``path``, spooled to an anonymous temporary file."""
    try:
        stream, _stat = client.containers.get(container_id).get_archive(path)
    except docker.errors.NotFound as exc:
        raise FileNotFoundError(f"{path} not found in container {container_id[:12]}") from exc
    except docker.errors.APIError as exc:
        raise ArchiveError(f"cannot read {path} from container {container_id[:12]}: {exc}") from exc
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    try:
        for chunk in stream:
            spool.write(chunk)
            if spool.tell() > max_bytes + 1024 * 1024:
                raise ArchiveError(f"{path} in container {container_id[:12]} is larger than {max_bytes} bytes")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def read_file(client: docker.DockerClient, container_id: str, path: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
    """One regular file's bytes; FileNotFoundError when it does not exist (yet)."""
    with _tar_spool(client, container_id, path, max_bytes) as spool, tarfile.open(fileobj=spool) as tar:
        for member in tar:
            if member.isfile():
                f = tar.extractfile(member)
                if f is None:
                    break
                return f.read(max_bytes)
    raise ArchiveError(f"{path} in container {container_id[:12]} is not a regular file")


def _safe_relpath(name: str) -> PurePosixPath | None:
    p = PurePosixPath(name)
    if p.is_absolute() or any(part in ("..", "") for part in p.parts):
        return None
    return p


def extract_dir(
    client: docker.DockerClient, container_id: str, path: str, dest: Path, max_bytes: int = MAX_TOTAL_BYTES
) -> list[Path]:
    """Copy directory ``path`` to ``dest/<basename>``; returns the files written."""
    written: list[Path] = []
    total = 0
    dest = dest.resolve()
    with _tar_spool(client, container_id, path, max_bytes) as spool, tarfile.open(fileobj=spool) as tar:
        for member in tar:
            rel = _safe_relpath(member.name)
            if rel is None:
                continue
            target = dest.joinpath(*rel.parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                continue  # links, devices, fifos: never materialised
            total += member.size
            if total > max_bytes:
                raise ArchiveError(f"{path} in container {container_id[:12]} exceeds {max_bytes} bytes")
            src = tar.extractfile(member)
            if src is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                while chunk := src.read(1024 * 1024):
                    out.write(chunk)
            written.append(target)
    return written
