"""One orchestrator: its store, event bus, scheduler, service and lease reaper.

``Orchestrator.open`` is what ``honeyphone serve`` and the tests call (the
store is SQLite unless ``FleetSettings.store`` names a PostgreSQL database); the
reaper is a daemon thread that expires overdue leases about four times per
lease term, so a dead worker's analysis is re-queued within ~1.25 terms.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sandbox.errors import EnvironmentProblem
from sandbox.settings import FleetSettings

from .errors import StoreUnavailable
from .events import EventBus
from .scheduler import Clock, Scheduler
from .service import AnalysisService
from .sqlite_store import SqliteStore
from .store import Store

_log = logging.getLogger(__name__)


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(data_dir: Path, settings: FleetSettings) -> Store:
    """SQLite under ``data_dir`` when ``settings.store`` is empty, else the PostgreSQL database it names."""
    if not settings.store:
        return SqliteStore(data_dir)
    if settings.store.startswith(POSTGRES_SCHEMES):
        from .postgres_store import PostgresStore  # psycopg loads only when asked for

        return PostgresStore(
            settings.store, pool_size=settings.store_pool_size, connect_timeout_s=settings.store_connect_timeout_s
        )
    raise EnvironmentProblem(
        f"store {settings.store.split('://')[0]}://… is not supported",
        fix="leave --store out for the embedded SQLite, or give postgresql://user@host:port/database",
    )


class Orchestrator:
    def __init__(self, store: Store, settings: FleetSettings, clock: Clock = time.time) -> None:
        self.store = store
        self.settings = settings
        self.bus = EventBus()
        self.scheduler = Scheduler(store, self.bus, settings, clock)
        self.service = AnalysisService(store, self.bus, self.scheduler, settings, clock)
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self.store_available = True  # as of the reaper's last pass
        self._availability_listeners: list[Callable[[bool], None]] = []

    def on_store_availability(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(available)`` whenever the reaper finds the store gone or back.

        The API layer turns it into the gRPC health status, so a load balancer
        stops sending work to orchestrators whose database is away.
        """
        self._availability_listeners.append(listener)

    def _store_is(self, available: bool) -> None:
        if available != self.store_available:
            self.store_available = available
            for listener in self._availability_listeners:
                listener(available)

    @classmethod
    def open(cls, data_dir: Path, settings: FleetSettings) -> Orchestrator:
        """The store ``settings.store`` names: the embedded SQLite under ``data_dir`` by default."""
        return cls(open_store(data_dir, settings), settings)

    def start(self) -> None:
        """Listen for other orchestrators' events, recover leases held before a restart, start the reaper."""
        self.store.listen(self.bus.publish)
        try:
            self.scheduler.recover()
        except StoreUnavailable as exc:  # the reaper keeps expiring once the database is back
            _log.warning("recovering leases skipped: %s", exc)
        self._reaper = threading.Thread(target=self._reap, name="lease-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        interval = max(0.05, min(1.0, self.settings.lease_seconds / 4))
        while not self._stop.wait(interval):
            try:
                self.scheduler.expire_due()
                self._store_is(True)
            except StoreUnavailable as exc:
                if self.store_available:
                    _log.warning("expiring leases failed: %s", exc)
                self._store_is(False)
            except Exception:  # keep reaping; the next pass retries
                _log.exception("expiring leases failed")

    def close(self) -> None:
        """Stop the reaper, end open watches, close the store."""
        self._stop.set()
        self.bus.close()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
        self.store.close()
