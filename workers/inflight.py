"""Which analyses a worker process has in flight, so a restarted worker can clean up after a crash.

Each worker process owns a directory ``<data_dir>/worker/inflight/<pid>-<rand>``
holding an exclusive ``flock`` for its lifetime and one marker file per running
analysis.  At start, a worker adopts every directory whose lock it can take:
that process is dead, and its markers name the analyses whose containers and
networks may be left over.  A live worker's directory is never touched, so
several workers (and anything else using Docker) can share a host safely,
unlike a host-wide cleanup.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from pathlib import Path

from sandbox.settings import Settings


def inflight_root(settings: Settings) -> Path:
    return settings.data_dir / "worker" / "inflight"


class InflightJournal:
    def __init__(self, settings: Settings) -> None:
        self._root = inflight_root(settings)
        self._dir = self._root / f"{os.getpid()}-{secrets.token_hex(4)}"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self._dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def orphans(self) -> list[str]:
        """Analysis ids left by dead workers; their directories are removed."""
        found: list[str] = []
        for d in sorted(self._root.iterdir()):
            if d == self._dir or not d.is_dir():
                continue
            try:
                fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # its worker is alive
            found += sorted(p.name for p in d.iterdir() if not p.name.startswith("."))
            shutil.rmtree(d, ignore_errors=True)
            os.close(fd)
        return found

    def start(self, analysis_id: str) -> None:
        (self._dir / analysis_id).touch()

    def done(self, analysis_id: str) -> None:
        (self._dir / analysis_id).unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
        os.close(self._lock_fd)
