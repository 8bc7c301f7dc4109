"""An orchestrator and a local worker for one campaign, when no farm is running.

``honeyphone campaign`` should work on a fresh machine without first starting
``honeyphone serve``; this starts exactly what ``serve --local-worker N``
starts (the SQLite orchestrator, the gRPC server, a ``WorkerAgent`` running
the real pipeline), in this process, on a free loopback port, and takes it
all down when the campaign ends.  It lives in the CLI layer because it runs
a ``workers`` agent: ``workers`` imports ``sandbox``, so nothing below the
CLI may import ``workers``.

Layout under the settings' data dir: ``campaign/farms/<random>/`` holds this
farm's store and is removed at the end; the worker's own data
(``campaign/worker``, ``campaign/inflight`` …) is shared by every embedded
farm on the host, so a campaign that crashed leaves an in-flight journal the
next one uses to remove that crash's containers (and only those).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..errors import EnvironmentProblem
from ..settings import Settings

_log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 300.0  # a cancelled analysis still tears its containers down


def listening(address: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def campaign_root(settings: Settings) -> Path:
    return settings.data_dir / "campaign"


def default_slots(wanted: int, settings: Settings) -> int:
    """One slot per version, as many as the host holds (at least one)."""
    from workers.capacity import host_capacity

    allowed = host_capacity().max_slots(settings.fleet.slot_memory_bytes, settings.fleet.slot_cpus)
    return max(1, min(wanted, allowed))


@contextmanager
def embedded_farm(settings: Settings, slots: int, runner: str | None = None) -> Iterator[str]:
    """Yield the loopback address of a running orchestrator with a ``slots``-slot local worker.

    ``runner`` is a ``MODULE:FUNCTION`` runner factory as for ``serve --runner``
    (tests); None runs the real pipeline.
    """
    from workers.agent import WorkerAgent, WorkerConfig
    from workers.capacity import check_slots, default_worker_name, detect_profiles

    from ..api.channel import open_channel
    from ..api.fleet_client import FleetClient
    from ..api.server import Security, start_server
    from ..core.runners import default_cleanup, load_runner
    from ..orchestrator.runtime import Orchestrator

    worker_settings = replace(settings, data_dir=campaign_root(settings))
    check_slots(slots, worker_settings)
    profiles = detect_profiles(worker_settings)
    if not profiles:
        raise EnvironmentProblem(
            "no farm is running and Docker does not answer, so no local worker can run analyses",
            fix="start Docker (scripts/setup-host.sh), or pass --server ADDR of a running farm",
        )
    store_dir = campaign_root(settings) / "farms" / secrets.token_hex(6)
    orch = Orchestrator.open(store_dir, settings.fleet)
    server = None
    agent = None
    thread = None
    ok = False
    try:
        orch.start()
        server = start_server(orch, settings.fleet, "127.0.0.1:0", Security())
        address = f"127.0.0.1:{server.port}"
        agent = WorkerAgent(
            worker_settings, WorkerConfig(slots=slots, name=f"campaign-{default_worker_name()}"[:64], profiles=profiles),
            FleetClient(open_channel(address)), load_runner(runner, worker_settings), default_cleanup(worker_settings),
        )
        thread = threading.Thread(target=agent.run, name="campaign-worker", daemon=True)
        thread.start()
        _log.info("embedded farm at %s (%d slots, data %s)", address, slots, store_dir)
        yield address
        ok = True
    finally:
        if agent is not None and thread is not None:
            (agent.drain if ok else agent.abort)()
            thread.join(STOP_TIMEOUT_S)
        with orch.store.transaction() as tx:
            ids = [r.id for r in tx.list_analyses(state=None, labels={}, before_seq=None, limit=10_000)]
        if server is not None:
            server.stop(grace=2.0)
        orch.close()
        if thread is None or not thread.is_alive():
            for aid in ids:
                shutil.rmtree(worker_settings.data_dir / "worker-runs" / aid, ignore_errors=True)
            shutil.rmtree(store_dir, ignore_errors=True)
