"""One orchestrator: its store, event bus, scheduler, service and lease reaper.

``Orchestrator.open`` is what ``honeyphone serve`` and the tests call; the
reaper is a daemon thread that expires overdue leases about four times per
lease term, so a dead worker's analysis is re-queued within ~1.25 terms.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sandbox.settings import FleetSettings

from .events import EventBus
from .scheduler import Clock, Scheduler
from .service import AnalysisService
from .sqlite_store import SqliteStore
from .store import Store

_log = logging.getLogger(__name__)


class Orchestrator:
    def __init__(self, store: Store, settings: FleetSettings, clock: Clock = time.time) -> None:
        self.store = store
        self.settings = settings
        self.bus = EventBus()
        self.scheduler = Scheduler(store, self.bus, settings, clock)
        self.service = AnalysisService(store, self.bus, self.scheduler, settings, clock)
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    @classmethod
    def open(cls, data_dir: Path, settings: FleetSettings) -> Orchestrator:
        """The embedded default: SQLite and blobs under ``data_dir``."""
        return cls(SqliteStore(data_dir), settings)

    def start(self) -> None:
        """Recover leases held before a restart, then start the reaper."""
        self.scheduler.recover()
        self._reaper = threading.Thread(target=self._reap, name="lease-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        interval = max(0.05, min(1.0, self.settings.lease_seconds / 4))
        while not self._stop.wait(interval):
            try:
                self.scheduler.expire_due()
            except Exception:  # keep reaping; the next pass retries
                _log.exception("expiring leases failed")

    def close(self) -> None:
        """Stop the reaper, end open watches, close the store."""
        self._stop.set()
        self.bus.close()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
        self.store.close()
