"""``dumpsys alarm`` / ``dumpsys jobscheduler`` parsing against texts written
from AOSP's print statements for API 30, 33, 34 and 35 (see fixtures/dumpsys/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.device.dumpsys_alarm import parse_dumpsys_alarm
from sandbox.device.dumpsys_common import parse_duration_ms
from sandbox.device.dumpsys_jobs import (
    ScheduledJob,
    jobs_for,
    parse_dumpsys_jobscheduler,
    run_job_command,
    run_job_succeeded,
)

FIX = Path(__file__).parent / "fixtures" / "dumpsys"
FOTA = "com.adups.fota"
NOW_RTC = 1_700_000_000_000
H = 3_600_000


@pytest.mark.parametrize("text,ms", [
    ("0", 0), ("+1h0m0s0ms", H), ("-2m3s456ms", -123_456), ("+3d0h0m0s0ms", 72 * H), ("+39s544ms", 39_544),
    ("+2d23h58m57s997ms", 72 * H - 62_003), ("5ms", 5), ("71:59:50", 72 * H - 10_000), ("-0:05", -5000),
])
def test_duration_formats(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["--", "none", "", "+", "1x", "+5m0", "12:3"])
def test_duration_rejects_junk(text: str) -> None:
    assert parse_duration_ms(text) is None


@pytest.mark.parametrize("api", [30, 33, 34, 35])
def test_alarm_dump_header_and_firmware_alarms(api: int) -> None:
    dump = parse_dumpsys_alarm((FIX / f"alarm_api{api}.txt").read_text())
    assert dump.now_rtc_ms == NOW_RTC and dump.now_elapsed_ms == 123_456
    fota = [a for a in dump.pending([FOTA]) if a.section == "pending"]
    assert [(a.label, a.when) for a in fota] == [("RTC", NOW_RTC + 24 * H), ("RTC_WAKEUP", NOW_RTC + 72 * H)]
    check, upload = fota
    assert check.window_ms == 3 * H and check.repeat_interval_ms == 86_400_000 and check.flags == 0
    assert check.tag == "*alarm*:com.adups.fota.ACTION_CHECK_UPDATE"
    assert upload.window_ms == 0 and upload.flags == 1 and upload.tag == "*walarm*:com.adups.fota.ACTION_UPLOAD"
    if api >= 33:
        assert upload.when_elapsed == 259_323_456
    else:
        assert upload.when_elapsed is None


@pytest.mark.parametrize("api", [30, 33, 34, 35])
def test_alarm_due_times_use_the_latest_delivery(api: int) -> None:
    dump = parse_dumpsys_alarm((FIX / f"alarm_api{api}.txt").read_text())
    due = dump.rtc_due_ms([FOTA])
    # the inexact daily check may come as late as its window's end; the upload is exact at 72 h
    assert NOW_RTC + 27 * H in due and NOW_RTC + 72 * H in due
    # system alarms are not the firmware's; ELAPSED alarms have no wall-clock time
    assert all(a.package != "android" for a in dump.pending([FOTA]))
    elapsed = [a for a in dump.pending() if a.label == "ELAPSED_WAKEUP"]
    assert len(elapsed) == 1 and elapsed[0].latest_wall_ms is None


@pytest.mark.parametrize("api", [33, 34, 35])
def test_past_due_non_wakeup_alarms_are_pending_too(api: int) -> None:
    dump = parse_dumpsys_alarm((FIX / f"alarm_api{api}.txt").read_text())
    past = [a for a in dump.pending([FOTA]) if a.section == "past_due_non_wakeup"]
    assert [(a.label, a.when, a.tag) for a in past] == [("RTC", NOW_RTC - 10_000, "*alarm*:com.adups.fota.ACTION_REPORT")]


def test_stats_sections_are_not_alarms() -> None:
    """Top Alarms / Alarm Stats print tags too; only ``LABEL #n: Alarm{...}`` entries count."""
    for api in (30, 33):
        dump = parse_dumpsys_alarm((FIX / f"alarm_api{api}.txt").read_text())
        assert {a.section for a in dump.alarms} <= {"pending", "past_due_non_wakeup"}
        assert len([a for a in dump.alarms if a.section == "pending"]) == 5


def test_empty_and_foreign_text() -> None:
    assert parse_dumpsys_alarm("").alarms == ()
    assert parse_dumpsys_alarm("Can't find service: alarm\n").now_rtc_ms is None


@pytest.mark.parametrize("api", [30, 34])
def test_jobs_parse(api: int) -> None:
    jobs = parse_dumpsys_jobscheduler((FIX / f"jobs_api{api}.txt").read_text())
    sync = next(j for j in jobs if j.job_id == 1001)
    assert (sync.uid, sync.package, sync.user, sync.namespace) == ("u0a45", FOTA, 0, None)
    assert sync.earliest_ms == 72 * H - 62_003 and sync.latest_ms is None
    assert sync.name == "com.adups.fota/.sync.SyncJobService"
    mine = jobs_for(jobs, [FOTA])
    assert {j.job_id for j in mine} == ({1001, 1002} if api == 30 else {1001, 7})


def test_jobs_api34_namespace_and_other_users() -> None:
    jobs = parse_dumpsys_jobscheduler((FIX / "jobs_api34.txt").read_text())
    ns = next(j for j in jobs if j.job_id == 7)
    assert ns.namespace == "fota" and ns.earliest_ms == 24 * H - 2000
    other = next(j for j in jobs if j.package == "com.other.app")
    assert (other.uid, other.user, other.earliest_ms) == ("u10a61", 10, -5000)


def test_jobs_no_timing_constraint() -> None:
    jobs = parse_dumpsys_jobscheduler((FIX / "jobs_api30.txt").read_text())
    report = next(j for j in jobs if j.job_id == 1002)
    assert report.earliest_ms is None and report.latest_ms is None
    system = next(j for j in jobs if j.package == "android")
    assert system.uid == "1000" and system.job_id == 20


def test_jobs_legacy_earliest_lines() -> None:
    (job,) = parse_dumpsys_jobscheduler((FIX / "jobs_api24_legacy.txt").read_text())
    assert job.earliest_ms == 72 * H - 10_000 and job.latest_ms is None and job.package == FOTA


def test_run_job_command_lines() -> None:
    job = ScheduledJob("u0a45", 1001, None, "x", FOTA, 0, 0, None)
    assert run_job_command(job, api_level=30) == "cmd jobscheduler run -f -u 0 com.adups.fota 1001"
    ns = ScheduledJob("u0a45", 7, "fota", "x", FOTA, 0, 0, None)
    assert run_job_command(ns, api_level=34) == "cmd jobscheduler run -f -u 0 -n fota com.adups.fota 7"
    with pytest.raises(ValueError):
        run_job_command(ns, api_level=33)
    # JobSchedulerShellCommand.runJob: "Running job" (+ " [FORCED]") on success, errors on stderr
    assert run_job_succeeded("Running job [FORCED]\n", 0)
    assert not run_job_succeeded("", -1001)
