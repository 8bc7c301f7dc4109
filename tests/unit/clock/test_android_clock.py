"""The emulator clock offline: step planning, job deadlines, and the whole
``run_until`` loop against a scripted shell (fake_android.py) that answers
the command lines Android prints for."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import pytest

from sandbox.clock.android_clock import AndroidClock, AndroidClockConfig, JobTracker, plan_next_step, set_time_command
from sandbox.clock.base import DeviceClock
from sandbox.device.device import Device
from sandbox.device.dumpsys_jobs import ScheduledJob
from sandbox.errors import DeviceError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "device"))  # the scripted shell lives there
from fake_android import FakeAlarm, FakeAndroid, FakeJob  # noqa: E402

H = 3600.0
FW = "com.example.fw"
T0 = 1_700_000_000.0


def test_set_time_command() -> None:
    assert set_time_command(1_700_000_000.5) == "cmd alarm set-time 1700000000500"


@pytest.mark.parametrize("now,due,expected", [
    (0.0, [], 6 * H),                          # nothing pending: the step cap
    (0.0, [3600.0], 3605.0),                   # just past the next deadline
    (0.0, [-5.0, 7200.0, 3600.0], 3605.0),     # past deadlines are ignored
    (0.0, [72 * H], 6 * H),                    # far deadline: capped
    (95 * H, [97 * H], 96 * H),                # never past the horizon
    (96 * H, [], 96 * H),                      # at the horizon: stay
])
def test_plan_next_step(now: float, due: list[float], expected: float) -> None:
    assert plan_next_step(now, 96 * H, due, 6 * H, 5.0) == expected


def test_job_tracker_turns_elapsed_delays_into_device_deadlines() -> None:
    tracker = JobTracker()
    job = ScheduledJob("u0a45", 1, None, "x", FW, 0, int(24 * H * 1000), None)
    tracker.observe([job], host_now=100.0, device_now=T0)
    assert tracker.upcoming() == [T0 + 24 * H]
    # a later dump of the same instance (elapsed delay shrank by the real time passed)
    later = ScheduledJob("u0a45", 1, None, "x", FW, 0, int(24 * H * 1000) - 10_000, None)
    tracker.observe([later], host_now=110.0, device_now=T0 + 6 * H)
    assert tracker.upcoming() == [T0 + 24 * H] and tracker.due(T0 + 23 * H) == []
    assert tracker.due(T0 + 24 * H) == [("u0a45", 1, None)]
    tracker.mark_forced(("u0a45", 1, None))
    assert tracker.upcoming() == [] and tracker.due(T0 + 25 * H) == []
    # rescheduled (periodic): a new elapsed deadline is a new instance
    tracker.observe([job], host_now=200.0, device_now=T0 + 25 * H)
    assert tracker.upcoming() == [T0 + 49 * H]
    tracker.observe([], host_now=201.0, device_now=T0 + 25 * H)
    assert tracker.upcoming() == []


def _clock(fake: FakeAndroid, **kw: float) -> AndroidClock:
    config = AndroidClockConfig(start_epoch=T0, packages=(FW,), api_level=34, **kw)  # type: ignore[arg-type]
    return AndroidClock(cast(Device, fake), config, now=fake.now, sleep=fake.sleep)


def test_rtc_alarm_at_72h_fires_and_the_horizon_is_reached() -> None:
    fake = FakeAndroid()
    clock = _clock(fake)
    assert isinstance(clock, DeviceClock)
    clock.configure()
    assert fake.settings == {"auto_time": "0", "auto_time_zone": "0"}
    assert abs(clock.device_now() - T0) < 1
    fake.alarms.append(FakeAlarm(FW, int((T0 + 72 * H) * 1000), tag="*walarm*:com.example.fw.UPLOAD"))
    fake.alarms.append(FakeAlarm("com.other", int((T0 + 30 * H) * 1000), tag="*walarm*:other"))
    seen: list[float] = []
    reached = clock.run_until(96.0, progress=seen.append)
    assert reached == pytest.approx(96.0)
    assert seen[-1] == pytest.approx(96.0) and seen == sorted(seen)
    fired = dict(fake.fired)
    # delivered just past 72 h of device time, not on a coarse step after it
    assert 0 < fired["*walarm*:com.example.fw.UPLOAD"] / 1000 - (T0 + 72 * H) <= 60
    # a foreign package's alarm is not a deadline, but fires when a step passes it
    assert "*walarm*:other" in fired
    # steps are forward only, land just past the 72 h alarm, and respect the cap
    devs = [d for _, d in clock.steps]
    assert devs == sorted(devs) and T0 + 72 * H + 5 in devs
    assert all(b - a <= 6 * H + 60 for a, b in zip(devs, devs[1:]))  # cap + the real seconds between steps
    # the mapping is one rate-1 segment per step, and maps host to device time
    m = clock.mapping()
    assert len(m.segments) == len(clock.steps)
    assert m.to_device(fake.now()) == pytest.approx(fake.wall_ms() / 1000, abs=1)
    # the whole 96 h took minutes of (virtual) real time, not days
    assert fake.host_time - 1000 < 600


def test_due_jobs_are_forced_once_their_delay_passed_in_device_time() -> None:
    fake = FakeAndroid()
    clock = _clock(fake)
    clock.configure()
    fake.jobs.append(FakeJob(FW, 1001, fake.elapsed_ms() + int(24 * H * 1000)))
    fake.jobs.append(FakeJob("com.other", 5, fake.elapsed_ms() + 1000))
    clock.run_until(48.0)
    assert [j for j, _ in fake.ran_jobs] == [1001]
    ran_at = fake.ran_jobs[0][1] / 1000
    assert T0 + 24 * H <= ran_at <= T0 + 24 * H + 60
    assert [j.job_id for j in clock.forced_jobs] == [1001]


def test_should_stop_and_since() -> None:
    fake = FakeAndroid()
    clock = _clock(fake)
    clock.configure()
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    reached = clock.run_until(96.0, should_stop=stop)
    assert reached < 96.0
    since = clock.device_now()
    assert clock.run_until(1.0, since=since) == pytest.approx(1.0)


def test_a_device_that_ignores_set_time_is_an_error() -> None:
    fake = FakeAndroid()
    original = fake._run

    def ignoring(cmd: str) -> tuple[str, int]:
        if cmd.startswith("cmd alarm set-time"):
            return "", 0
        return original(cmd)

    fake._run = ignoring  # type: ignore[method-assign]
    with pytest.raises(DeviceError, match="did not take the time"):
        _clock(fake).configure()


def test_mapping_before_configure_is_an_error() -> None:
    with pytest.raises(DeviceError):
        _clock(FakeAndroid()).mapping()
