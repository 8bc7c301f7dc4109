"""The emulator's device clock: wall-clock steps to just past each deadline.

An emulator cannot run faster than real time, but Android re-evaluates RTC
alarms whenever the wall clock jumps (``cmd alarm set-time EPOCH_MS``, no
root needed) and delivers those now past due.  So with automatic time off
(``settings put global auto_time 0``) the clock walks to the horizon in
steps, each landing a few seconds past the firmware's next pending RTC alarm
(read from ``dumpsys alarm``), or past the next job whose delay has elapsed
in device time, or at most ``max_step_s`` ahead.  Jobs wait on the elapsed
clock, which steps do not move, so due jobs are forced with
``cmd jobscheduler run -f``.  Alarms on the ELAPSED clocks cannot be
advanced this way; that limit is documented in the README.

Between steps device time runs at real speed, so the mapping is a list of
rate-1 segments starting at each step.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..device.device import Device
from ..device.dumpsys_alarm import AlarmDump, parse_dumpsys_alarm
from ..device.dumpsys_jobs import ScheduledJob, jobs_for, parse_dumpsys_jobscheduler, run_job_command, run_job_succeeded
from ..errors import DeviceError
from .base import HOUR, DeviceClock
from .mapping import ClockMapping, Segment

MIN_JUMP_S = 2.0  # AlarmManager re-evaluates RTC alarms only for jumps over about a second
SET_TIME_TOLERANCE_S = 10.0


@dataclass(frozen=True)
class AndroidClockConfig:
    start_epoch: float
    packages: tuple[str, ...]
    api_level: int
    max_step_s: float = 6 * HOUR
    overshoot_s: float = 5.0
    settle_s: float = 3.0  # real seconds for delivered alarms and forced jobs to run after a step


def set_time_command(epoch_s: float) -> str:
    return shlex.join(["cmd", "alarm", "set-time", str(int(round(epoch_s * 1000)))])


AUTO_TIME_OFF = ("settings put global auto_time 0", "settings put global auto_time_zone 0")


def plan_next_step(now: float, horizon: float, due: Iterable[float], max_step_s: float, overshoot_s: float) -> float:
    """The device time to step to next: just past the earliest future deadline, capped."""
    future = [t for t in due if t > now]
    target = min(future) + overshoot_s if future else horizon
    return max(now, min(target, horizon, now + max_step_s))


@dataclass
class _JobInstance:
    host_earliest: float  # host epoch at which the job's elapsed delay ends
    device_due: float  # device epoch at which it is due in device terms
    forced: bool = False


@dataclass
class JobTracker:
    """Turns elapsed-clock job delays into device-time deadlines, one per job instance.

    A job first seen with ``Earliest run time: +D`` is due at device time
    ``now + D``.  The elapsed deadline (host time ``now + D``) identifies the
    instance across dumps; when it changes (the job ran and was rescheduled)
    the instance is new.
    """

    same_instance_s: float = 30.0
    jobs: dict[tuple[str, int, str | None], _JobInstance] = field(default_factory=dict)

    def observe(self, jobs: Iterable[ScheduledJob], host_now: float, device_now: float) -> None:
        seen = set()
        for job in jobs:
            key = (job.uid, job.job_id, job.namespace)
            seen.add(key)
            delay = max((job.earliest_ms or 0) / 1000.0, 0.0)
            host_earliest = host_now + delay
            known = self.jobs.get(key)
            if known is None or abs(known.host_earliest - host_earliest) > self.same_instance_s:
                self.jobs[key] = _JobInstance(host_earliest, device_now + delay)
        for key in [k for k in self.jobs if k not in seen]:
            del self.jobs[key]

    def due(self, device_now: float) -> list[tuple[str, int, str | None]]:
        return [k for k, inst in self.jobs.items() if not inst.forced and inst.device_due <= device_now]

    def upcoming(self) -> list[float]:
        return [inst.device_due for inst in self.jobs.values() if not inst.forced]

    def mark_forced(self, key: tuple[str, int, str | None]) -> None:
        if key in self.jobs:
            self.jobs[key].forced = True


class AndroidClock:
    """Clock control for the emulator, with the same interface as ``TwinClock``."""

    def __init__(
        self,
        device: Device,
        config: AndroidClockConfig,
        *,
        after_step: Callable[[float], None] | None = None,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._device = device
        self.config = config
        self._after_step = after_step
        self._now = now
        self._sleep = sleep
        self._segments: list[Segment] = []
        self.jobs = JobTracker()
        self.forced_jobs: list[ScheduledJob] = []
        self.steps: list[tuple[float, float]] = []  # (host time, device time) of each step

    def configure(self) -> None:
        """Automatic time off, then the wall clock to ``start_epoch``."""
        for cmd in AUTO_TIME_OFF:
            self._device.shell(cmd).check()
        self.step_to(self.config.start_epoch)

    def mapping(self) -> ClockMapping:
        if not self._segments:
            raise DeviceError("the Android clock was not configured")
        return ClockMapping(tuple(self._segments))

    def device_now(self) -> float:
        return self.mapping().to_device(self._now())

    def origin(self) -> float:
        """The horizon counts from now: the emulator's clock only moves when stepped."""
        return self.device_now()

    def step_to(self, device_epoch: float) -> None:
        """Set the wall clock and record the new segment; checks the device took it."""
        res = self._device.shell(set_time_command(device_epoch))
        host = self._now()
        if res.exit_code != 0:
            raise DeviceError(f"cmd alarm set-time failed on {self._device.serial}: "
                              f"{(res.error_text or res.text).strip()}")
        reported = self._device.shell("date +%s").text.strip()
        if not reported.isdigit() or abs(int(reported) - (device_epoch + self._now() - host)) > SET_TIME_TOLERANCE_S:
            raise DeviceError(f"{self._device.serial} did not take the time {device_epoch:.0f} (date says {reported!r})",
                              fix="check `settings get global auto_time` is 0")
        self._segments.append(Segment(host, device_epoch, 1.0))
        self.steps.append((host, device_epoch))

    def read_alarms(self) -> AlarmDump:
        return parse_dumpsys_alarm(self._device.shell("dumpsys alarm", timeout=60).text)

    def read_jobs(self) -> list[ScheduledJob]:
        text = self._device.shell("dumpsys jobscheduler", timeout=60).text
        return jobs_for(parse_dumpsys_jobscheduler(text), self.config.packages)

    def force_due_jobs(self, jobs: list[ScheduledJob], device_now: float) -> None:
        by_key = {(j.uid, j.job_id, j.namespace): j for j in jobs}
        for key in self.jobs.due(device_now):
            job = by_key.get(key)
            if job is None:
                continue
            res = self._device.shell(run_job_command(job, api_level=self.config.api_level))
            self.jobs.mark_forced(key)
            if run_job_succeeded(res.text, res.exit_code):
                self.forced_jobs.append(job)

    def deadlines(self) -> list[float]:
        """Device-time deadlines of the firmware: pending RTC alarms and job delays; forces due jobs."""
        host, device_now = self._now(), self.device_now()
        alarms = self.read_alarms()
        jobs = self.read_jobs()
        self.jobs.observe(jobs, host, device_now)
        self.force_due_jobs(jobs, device_now)
        return [ms / 1000.0 for ms in alarms.rtc_due_ms(self.config.packages)] + self.jobs.upcoming()

    def run_until(
        self,
        hours: float,
        progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        tick: float = 1.0,
        since: float | None = None,
    ) -> float:
        """Step through the firmware's deadlines until ``hours`` device hours after ``since``."""
        origin = self.config.start_epoch if since is None else since
        horizon = origin + hours * HOUR
        while True:
            now = self.device_now()
            elapsed = (now - origin) / HOUR
            if progress:
                progress(min(elapsed, hours))
            if now >= horizon or (should_stop and should_stop()):
                return min(elapsed, hours)
            target = plan_next_step(now, horizon, self.deadlines(), self.config.max_step_s, self.config.overshoot_s)
            if target - now >= MIN_JUMP_S:
                self.step_to(target)
                if self._after_step:
                    self._after_step(target)
                self._sleep(self.config.settle_s)
            else:
                self._sleep(max(min(tick, horizon - now), 0.05))


def _conforms(clock: AndroidClock) -> DeviceClock:
    """Never called: mypy checks here that ``AndroidClock`` satisfies ``DeviceClock``."""
    return clock


__all__ = ["AUTO_TIME_OFF", "AndroidClock", "AndroidClockConfig", "JobTracker", "plan_next_step", "set_time_command"]
