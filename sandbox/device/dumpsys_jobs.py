"""Parsing ``dumpsys jobscheduler`` and building ``cmd jobscheduler run``.

Jobs wait on the *elapsed* clock, which a wall-clock step does not move, so
the Android clock forces the firmware's jobs once their delay has passed in
device time.  What it needs per job comes from ``JobSchedulerService``'s
dump (AOSP ``JobStatus.printUniqueId``/``JobStatus.dump``):

* ``JOB #u0a123/42: 1a2b3c com.pkg/.SyncService`` -- calling uid and job id;
  API 34+ jobs in a namespace print ``JOB ns:u0a123/42: ...`` instead.
* ``Source: uid=u0a123 user=0 pkg=com.pkg`` -- the package the job runs for.
* ``Run time: earliest=+71h59m50s0ms, latest=none[, original latest=none]``
  (API 26+; older releases printed ``Earliest run time: 71:59:50`` and
  ``Latest run time: none`` lines, also understood) -- relative to now in
  ``TimeUtils.formatDuration`` form, ``none`` when unset.

``cmd jobscheduler run [-f] [-u USER] [-n NAMESPACE] PACKAGE JOB_ID``
(``JobSchedulerShellCommand.runJob``) prints ``Running job [FORCED]`` on
success; ``-n`` exists from API 34.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from .dumpsys_common import indent_of, parse_duration_ms

_JOB = re.compile(r"^JOB (?:#|(?P<ns>\S+):)(?P<uid>u\d+[a-z]+\d+|u\d+|\d+)/(?P<id>-?\d+): (?P<hash>[0-9a-f]+) (?P<name>.*)$")
_SOURCE = re.compile(r"^Source: uid=(?P<uid>\S+) user=(?P<user>-?\d+) pkg=(?P<pkg>\S+)")
_EARLIEST = re.compile(r"^Earliest run time: (?P<v>.+)$")
_LATEST = re.compile(r"^Latest run time: (?P<v>.+)$")
_RUN_TIME = re.compile(r"^Run time: earliest=(?P<e>[^,\s]+), latest=(?P<l>[^,\s]+)")


@dataclass(frozen=True)
class ScheduledJob:
    uid: str
    job_id: int
    namespace: str | None
    name: str  # batteryName: usually the service component
    package: str
    user: int
    earliest_ms: int | None  # relative to the dump's "now"; None when unset
    latest_ms: int | None


def parse_dumpsys_jobscheduler(text: str) -> list[ScheduledJob]:
    """Every ``JOB`` entry of a ``dumpsys jobscheduler`` dump."""
    jobs: list[ScheduledJob] = []
    current: dict[str, object] | None = None
    job_indent = -1

    def flush() -> None:
        nonlocal current
        if current is not None:
            jobs.append(ScheduledJob(**current))  # type: ignore[arg-type]
            current = None

    for raw in text.splitlines():
        if not raw.strip():
            continue
        ind = indent_of(raw)
        body = raw.strip()
        m = _JOB.match(body)
        if m:
            flush()
            name = m.group("name").strip()
            current = {
                "uid": m.group("uid"), "job_id": int(m.group("id")), "namespace": m.group("ns"),
                "name": name, "package": name.split("/", 1)[0], "user": 0,
                "earliest_ms": None, "latest_ms": None,
            }
            job_indent = ind
            continue
        if current is None:
            continue
        if ind <= job_indent:
            flush()
            continue
        if (s := _SOURCE.match(body)) is not None:
            current["package"] = s.group("pkg")
            current["user"] = int(s.group("user"))
        elif (r := _RUN_TIME.match(body)) is not None:
            current["earliest_ms"] = parse_duration_ms(r.group("e"))
            current["latest_ms"] = parse_duration_ms(r.group("l"))
        elif (e := _EARLIEST.match(body)) is not None:
            current["earliest_ms"] = parse_duration_ms(e.group("v"))
        elif (lt := _LATEST.match(body)) is not None:
            current["latest_ms"] = parse_duration_ms(lt.group("v"))
    flush()
    return jobs


def jobs_for(jobs: Iterable[ScheduledJob], packages: Iterable[str]) -> list[ScheduledJob]:
    wanted = set(packages)
    return [j for j in jobs if j.package in wanted]


def run_job_command(job: ScheduledJob, *, api_level: int, force: bool = True) -> str:
    """``cmd jobscheduler run -f -u USER [-n NS] PKG ID`` for ``job``."""
    args = ["cmd", "jobscheduler", "run"]
    if force:
        args.append("-f")
    args += ["-u", str(job.user)]
    if job.namespace is not None:
        if api_level < 34:
            raise ValueError("job namespaces exist from API 34")
        args += ["-n", job.namespace]
    args += [job.package, str(job.job_id)]
    return shlex.join(args)


def run_job_succeeded(stdout: str, exit_code: int) -> bool:
    return exit_code == 0 and "Running job" in stdout


__all__ = ["ScheduledJob", "jobs_for", "parse_dumpsys_jobscheduler", "run_job_command", "run_job_succeeded"]
