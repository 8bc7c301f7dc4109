"""EngineWatch: a container found dead is blamed on the engine only when the
engine went away (its event stream ended, or it refuses new connections)."""

from __future__ import annotations

import gc
import queue
import time
from collections.abc import Iterator
from typing import Any

import docker.errors

from sandbox.containers.health import EngineWatch


class Stream:
    """An event stream that yields nothing and ends when told (or closed)."""

    def __init__(self) -> None:
        self._q: queue.Queue[object] = queue.Queue()
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def end(self, item: object = None) -> None:
        self._q.put(item)

    def close(self) -> None:
        self.closed = True
        self._q.put(None)


class Client:
    def __init__(self, fail: bool = False) -> None:
        self.stream = Stream()
        self.fail = fail
        self.filters: Any = None

    def events(self, decode: bool, filters: Any) -> Stream:
        if self.fail:
            raise docker.errors.DockerException("connection refused")
        self.filters = filters
        return self.stream


def _wait(cond: Any) -> None:
    deadline = time.monotonic() + 5
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_healthy_engine_is_not_blamed() -> None:
    client = Client()
    w = EngineWatch(client, lambda: None)  # type: ignore[arg-type]
    w.start()
    w.start()  # idempotent
    assert client.filters == {"type": "daemon"}
    assert w.went_away() is None
    w.close()
    _wait(lambda: client.stream.closed)
    assert w.went_away() is None  # our own close is not the engine going away


def test_stream_end_means_the_engine_stopped_or_restarted() -> None:
    client = Client()
    w = EngineWatch(client, lambda: None)  # type: ignore[arg-type]
    w.start()
    client.stream.end()
    _wait(lambda: w.went_away() is not None)
    assert "its event stream ended" in (w.went_away() or "")
    assert "stopped or restarted" in (w.went_away() or "")


def test_broken_stream_counts_too() -> None:
    client = Client()
    w = EngineWatch(client, lambda: None)  # type: ignore[arg-type]
    w.start()
    client.stream.end(ConnectionResetError("reset by peer"))
    _wait(lambda: w.went_away() is not None)
    assert "broke (reset by peer)" in (w.went_away() or "")


def test_shutting_down_engine_refuses_new_connections() -> None:
    client = Client()
    w = EngineWatch(client, lambda: "connection refused")  # type: ignore[arg-type]
    w.start()
    assert w.went_away() == "it was shutting down: a new connection failed: connection refused"
    w.close()


def test_engine_down_at_start() -> None:
    w = EngineWatch(Client(fail=True), lambda: None)  # type: ignore[arg-type]
    w.start()
    assert (w.went_away() or "").startswith("it did not answer (connection refused")


def test_dropping_the_watch_closes_the_stream() -> None:
    client = Client()
    w = EngineWatch(client, lambda: None)  # type: ignore[arg-type]
    w.start()
    del w
    gc.collect()
    _wait(lambda: client.stream.closed)


def test_explain_tells_a_vanished_container_from_a_silent_engine(tmp_path: Any) -> None:
    """A 404 means the engine answered: the message must not say it stopped answering."""
    import requests.exceptions

    from sandbox.model import ProgressEvent, Stage
    from sandbox.core.watchdog import Watchdog
    from sandbox.settings import Settings

    dog = Watchdog(Client(), Settings.from_env(data_dir=tmp_path), tmp_path)  # type: ignore[arg-type]
    dog.track(lambda ev: None)(ProgressEvent(Stage.BOOTING, "booting"))
    gone = docker.errors.NotFound("404 Client Error: Not Found (\"No such container: abc\")")
    assert (dog.explain(gone) or "").startswith("a container or network of the analysis disappeared during boot")
    silent = requests.exceptions.ConnectionError("connection refused")
    assert (dog.explain(silent) or "").startswith("the Docker engine stopped answering during boot")
