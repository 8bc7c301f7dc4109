"""Wake-ups for WatchAnalysis streams when an analysis gets a new event.

Events themselves are durable in the store (that is what makes a watch
resumable from any sequence, across orchestrator restarts); the bus only
carries "analysis X has reached sequence N" between threads of one process.
Subscribe *before* reading the store, then wait: a publish that lands between
the read and the wait is not lost.  Each analysis has its own condition, so an
event wakes only the streams watching that analysis.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Subscription:
    def __init__(self, bus: EventBus, cond: threading.Condition) -> None:
        self._bus = bus
        self._cond = cond
        self.latest = 0

    def wait(self, after_sequence: int, timeout: float) -> bool:
        """True when an event above ``after_sequence`` was published (or the bus closed)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.latest > after_sequence or self._bus.closed, timeout)


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, tuple[threading.Condition, list[Subscription]]] = {}
        self.closed = False

    @contextmanager
    def subscribe(self, analysis_id: str) -> Iterator[Subscription]:
        with self._lock:
            topic = self._topics.get(analysis_id)
            if topic is None:
                topic = self._topics[analysis_id] = (threading.Condition(self._lock), [])
            sub = Subscription(self, topic[0])
            topic[1].append(sub)
        try:
            yield sub
        finally:
            with self._lock:
                topic[1].remove(sub)
                if not topic[1]:
                    self._topics.pop(analysis_id, None)

    def publish(self, analysis_id: str, sequence: int) -> None:
        with self._lock:
            topic = self._topics.get(analysis_id)
            if topic is None:
                return
            for sub in topic[1]:
                sub.latest = max(sub.latest, sequence)
            topic[0].notify_all()

    def close(self) -> None:
        """Wake every waiter for good (shutdown), so open streams end."""
        with self._lock:
            self.closed = True
            for cond, _ in self._topics.values():
                cond.notify_all()

    @property
    def subscribers(self) -> int:
        with self._lock:
            return sum(len(subs) for _, subs in self._topics.values())
