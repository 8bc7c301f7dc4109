"""A scripted stand-in for an emulator's shell, for the offline unit tests.

It answers the exact command lines the Android code sends (``cmd alarm
set-time``, ``date +%s``, ``dumpsys alarm``/``jobscheduler`` in the API 33+
formats of fixtures/dumpsys, ``cmd jobscheduler run``, ``appops``) from a
tiny model: a wall clock that only ``set-time`` and host time move, an
elapsed clock that only host time moves, RTC alarms that fire once the wall
clock passes them, and jobs whose delay runs on the elapsed clock.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from sandbox.device.device import ShellResult


@dataclass
class FakeAlarm:
    package: str
    when_ms: int  # wall clock
    window_ms: int = 0
    label: str = "RTC_WAKEUP"
    tag: str = "*walarm*:com.example.fw.UPLOAD"


@dataclass
class FakeJob:
    package: str
    job_id: int
    earliest_elapsed_ms: int
    uid: str = "u0a45"


@dataclass
class FakeAndroid:
    host_time: float = 1000.0  # the test's virtual host clock (epoch s)
    wall_offset_ms: int = 0  # wall clock = host + offset
    boot_host: float = 900.0
    alarms: list[FakeAlarm] = field(default_factory=list)
    jobs: list[FakeJob] = field(default_factory=list)
    fired: list[tuple[str, int]] = field(default_factory=list)  # (tag, wall ms when delivered)
    ran_jobs: list[tuple[int, int]] = field(default_factory=list)  # (job id, wall ms)
    commands: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    appops: dict[tuple[str, str], str] = field(default_factory=dict)
    serial: str = "10.0.0.3:5555"

    # clocks ------------------------------------------------------------------
    def now(self) -> float:
        return self.host_time

    def sleep(self, seconds: float) -> None:
        self.host_time += seconds
        self._deliver()

    def wall_ms(self) -> int:
        return int(self.host_time * 1000) + self.wall_offset_ms

    def elapsed_ms(self) -> int:
        return int((self.host_time - self.boot_host) * 1000)

    def _deliver(self) -> None:
        now = self.wall_ms()
        for a in list(self.alarms):
            if a.when_ms <= now:
                self.alarms.remove(a)
                self.fired.append((a.tag, now))

    # the shell -----------------------------------------------------------------
    def shell(self, command: str | list[str], timeout: float | None = None) -> ShellResult:
        cmd = command if isinstance(command, str) else shlex.join(command)
        self.commands.append(cmd)
        out, code = self._run(cmd)
        return ShellResult(cmd, code, out.encode(), b"")

    def _run(self, cmd: str) -> tuple[str, int]:
        if m := re.fullmatch(r"cmd alarm set-time (\d+)", cmd):
            self.wall_offset_ms = int(m.group(1)) - int(self.host_time * 1000)
            self._deliver()
            return "", 0
        if cmd == "date +%s":
            return f"{self.wall_ms() // 1000}\n", 0
        if m := re.fullmatch(r"settings put global (\w+) (\S+)", cmd):
            self.settings[m.group(1)] = m.group(2)
            return "", 0
        if cmd == "dumpsys alarm":
            return self._alarm_dump(), 0
        if cmd == "dumpsys jobscheduler":
            return self._job_dump(), 0
        if m := re.fullmatch(r"cmd jobscheduler run -f -u 0 (\S+) (\d+)", cmd):
            job = next((j for j in self.jobs if j.package == m.group(1) and j.job_id == int(m.group(2))), None)
            if job is None:
                return "", 255
            self.jobs.remove(job)
            self.ran_jobs.append((job.job_id, self.wall_ms()))
            return "Running job [FORCED]\n", 0
        if m := re.fullmatch(r"appops set (\S+) (\S+) (\S+)", cmd):
            self.appops[(m.group(1), m.group(2))] = m.group(3)
            return "", 0
        if m := re.fullmatch(r"appops get (\S+) (\S+)", cmd):
            mode = self.appops.get((m.group(1), m.group(2)))
            return (f"{m.group(2)}: {mode}; time=+1s0ms ago\n" if mode else "No operations.\nDefault mode: ignore\n"), 0
        return f"/system/bin/sh: {cmd.split()[0]}: not found\n", 127

    def _alarm_dump(self) -> str:
        now_rtc, now_el = self.wall_ms(), self.elapsed_ms()
        lines = ["Current Alarm Manager state:", f"  nowRTC={now_rtc}=2023-11-14 22:13:20.000 nowELAPSED={now_el}",
                 "", f"  {len(self.alarms)} pending alarms: "]
        for i, a in enumerate(sorted(self.alarms, key=lambda a: a.when_ms), 1):
            type_num = 0 if a.label == "RTC_WAKEUP" else 1
            when_el = now_el + (a.when_ms - now_rtc)
            lines += [
                f"    {a.label} #{i}: Alarm{{abc{i:04x} type {type_num} origWhen {a.when_ms} whenElapsed {when_el} {a.package}}}",
                f"      tag={a.tag}",
                f"      type={a.label} origWhen=2023-11-17 22:13:20.000 window={a.window_ms and '+%dms' % a.window_ms or 0}"
                " repeatInterval=0 count=0 flags=0x1",
                "      whenElapsed=+1s0ms maxWhenElapsed=+1s0ms",
            ]
        lines += ["", "  Past-due non-wakeup alarms: (none)", ""]
        return "\n".join(lines)

    def _job_dump(self) -> str:
        lines = ["JOB SCHEDULER MANAGER (dumpsys jobscheduler)", f"  Registered {len(self.jobs)} jobs:"]
        for j in self.jobs:
            d = j.earliest_elapsed_ms - self.elapsed_ms()
            sign = "-" if d < 0 else "+"
            lines += [
                f"    JOB #{j.uid}/{j.job_id}: 1a2b3c {j.package}/.Job",
                f"      {j.uid} tag=*job*/{j.package}/.Job",
                f"      Source: uid={j.uid} user=0 pkg={j.package}",
                f"      Run time: earliest={sign}{abs(d)}ms, latest=none, original latest=none",
            ]
        return "\n".join(lines) + "\n"
