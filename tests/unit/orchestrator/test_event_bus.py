"""The watch wake-up bus: no lost wake-ups, per-analysis, closable."""

from __future__ import annotations

import threading

from sandbox.orchestrator.events import EventBus


def test_publish_before_wait_is_not_lost() -> None:
    bus = EventBus()
    with bus.subscribe("a") as sub:
        bus.publish("a", 3)
        assert sub.wait(2, timeout=0.01)
        assert not sub.wait(3, timeout=0.01)
    assert bus.subscribers == 0


def test_other_analyses_do_not_wake() -> None:
    bus = EventBus()
    with bus.subscribe("a") as sub:
        bus.publish("b", 5)
        assert not sub.wait(0, timeout=0.01)


def test_close_wakes_waiters() -> None:
    bus = EventBus()
    woke = threading.Event()

    def waiter() -> None:
        with bus.subscribe("a") as sub:
            sub.wait(0, timeout=10)
            woke.set()

    t = threading.Thread(target=waiter)
    t.start()
    while bus.subscribers == 0:
        pass
    bus.close()
    assert woke.wait(2)
    t.join()
