"""Firmware with ordinary network timeouts is caught at the default settings
(issue 13): the twin's device clock runs exchanges in real time and skips
only idle time.

One firmware (``fw_timeouts``) carries every case, so the suite pays for
few analyses:

* Python: a 72 h sleep, the SMS store read with sqlite, an HTTPS POST with a
  5 s timeout;
* shell and C tools: ``sleep 172800`` (coreutils), ``content query`` piped to
  ``curl --connect-timeout 5 -m 10``;
* an HTTPS poll every 15 device minutes with a 10 s timeout, next to the
  uploaders: every poll completes, and the 72 h upload fires within 1 % of
  its device time;
* 2 s of CPU work at device hour 1: the device clock advances by about the
  real time the work took, not hours.  Tolerance: at least the 2 s of CPU,
  at most 30 s (the work shares 2 cores with the rest of the suite; under
  the old 28800x clock the same work cost 16 device hours).

Then the same firmware twice in parallel gives the same verdicts and
findings as alone, and a busy loop reaches the horizon through the clock's
fallback, which the report says.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox.model import AnalysisOutcome, AnalysisRequest, CancelToken, Scenario, Verdict
from sandbox.core.pipeline import run_analysis
from sandbox.device.twin import new_analysis_id
from sandbox.settings import Settings

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent
H = 3600.0
HOURS = 80.0


def analyze(settings: Settings, client: docker.DockerClient, fw: Path, hours: float, tmp: Path) -> AnalysisOutcome:
    aid = new_analysis_id()
    request = AnalysisRequest(aid, fw, Scenario(hours=hours, seed=7, contacts=5, sms=6, calls=5))
    outcome = run_analysis(settings, request, lambda _e: None, CancelToken(), tmp / aid, client=client)
    assert outcome.error is None, outcome.error
    label = f"{settings.label_analysis}={aid}"
    assert client.containers.list(all=True, ignore_removed=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
    return outcome


def events(outcome: AnalysisOutcome, service: str) -> list[dict[str, Any]]:
    path = outcome.artifacts[f"service-logs.{service}.log"]
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def device_hours(report: dict[str, Any], f: dict[str, Any]) -> float:
    """A finding's device time, in hours since the firmware started."""
    (start,) = [e["device_time"] for e in report["timeline"] if e["event"] == "firmware_started"]
    return (datetime.fromisoformat(f["device_time"]) - datetime.fromisoformat(start)).total_seconds() / H


PRIMARY = {"collect.example.com": "sms", "calls.example.net": "call_log"}


def shape(report: dict[str, Any]) -> tuple[str, dict[tuple[str, str, int, str], int]]:
    """What must not change between a run alone and a run beside another: the
    verdict, and per destination how many planted items of the kind it was
    sent left the device.  (Canaries are unique to each analysis, so which
    SMS addresses happen to equal call-log numbers, and so the secondary
    findings, differ from run to run by design.)"""
    items: dict[tuple[str, str, int, str], set[str]] = {}
    for f in report["findings"]:
        host = f["destination"]["host"]
        if PRIMARY.get(host) == f["canary"]["kind"]:
            key = (f["canary"]["kind"], host, f["destination"]["port"], f["channel"])
            items.setdefault(key, set()).add(f["canary"]["item_id"])
    return report["verdict"], {k: len(v) for k, v in items.items()}


@pytest.fixture(scope="module")
def alone(hp_settings: Settings, docker_engine: docker.DockerClient, built_images: None,
          tmp_path_factory: pytest.TempPathFactory) -> AnalysisOutcome:
    return analyze(hp_settings, docker_engine, HERE / "fw_timeouts", HOURS, tmp_path_factory.mktemp("alone"))


def test_https_with_5s_timeout_after_72h_is_caught(alone: AnalysisOutcome) -> None:
    report = alone.report
    assert alone.verdict == Verdict.LEAK, report["verdict_reasons"]
    # SMS bodies (their addresses are numbers the call log shares, so those travel with curl too)
    sms = [f for f in report["findings"] if f["canary"]["kind"] == "sms" and f["canary"]["field"] == "body"]
    assert sms and {f["destination"]["host"] for f in sms} == {"collect.example.com"}
    assert {f["channel"] for f in sms} == {"https"}
    assert all(72 * 0.99 <= device_hours(report, f) <= 72 * 1.01 for f in sms), [f["device_time"] for f in sms]
    assert all("uploader.py" in " ".join(f["process"]["argv"]) for f in sms)
    up = [e for e in events(alone, "uploader") if e["event"] == "upload"]
    assert len(up) == 1 and up[0]["ok"] is True, up
    assert 72 * H * 0.99 <= up[0]["fired"] - up[0]["t0"] <= 72 * H * 1.01


def test_shell_sleep_content_query_and_curl_is_caught(alone: AnalysisOutcome) -> None:
    calls = [f for f in alone.report["findings"] if f["canary"]["kind"] == "call_log"]
    # curl uploaded `content query` rows; nothing else sends call-log entries
    assert calls and {f["destination"]["host"] for f in calls} == {"calls.example.net"}
    assert all(48 * 0.99 <= device_hours(alone.report, f) <= 48 * 1.01 for f in calls)
    assert any("curl" in " ".join(f["process"]["argv"]) for f in calls)
    done = [e for e in events(alone, "shellup") if e.get("event") == "curl_done"]
    assert len(done) == 1


def test_15_minute_poller_completes_every_exchange(alone: AnalysisOutcome) -> None:
    polls = [e for e in events(alone, "poller") if e["event"] == "poll"]
    # one every 15 device minutes for 80 h; the last may be cut by the horizon
    assert len(polls) >= HOURS * 4 - 2
    failed = [p for p in polls if not p["ok"]]
    assert failed == [], failed[:3]
    ns = [p["n"] for p in polls]
    assert ns == list(range(1, len(ns) + 1))


def test_computation_costs_real_seconds_not_device_hours(alone: AnalysisOutcome) -> None:
    (ev,) = [e for e in events(alone, "compute") if e["event"] == "compute"]
    assert ev["cpu_s"] >= 2.0
    assert 2.0 <= ev["device_s"] <= 30.0, ev
    assert ev["sent"] is True


def test_clock_health_reports_jumps_and_no_fallback(alone: AnalysisOutcome) -> None:
    clock = alone.report["health"]["clock"]
    assert clock["kind"] == "event-driven" and clock["reached_horizon"] is True
    assert clock["jumps"] >= HOURS * 4  # at least one per poll
    assert clock["fallback"] is None
    assert clock["uncovered"] == []
    assert not any("fallback" in r for r in alone.report["verdict_reasons"])


def test_two_in_parallel_match_each_alone(alone: AnalysisOutcome, hp_settings: Settings,
                                          docker_engine: docker.DockerClient, tmp_path: Path) -> None:
    results: list[AnalysisOutcome | BaseException] = [RuntimeError("not run")] * 2

    def one(i: int) -> None:
        try:
            results[i] = analyze(hp_settings, docker_engine, HERE / "fw_timeouts", HOURS, tmp_path / str(i))
        except BaseException as exc:  # re-raised below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = shape(alone.report)
    for r in results:
        if isinstance(r, BaseException):
            raise r
        assert shape(r.report) == want
        assert want[1] == {("sms", "collect.example.com", 443, "https"): 6,
                           ("call_log", "calls.example.net", 443, "https"): 5}
        polls = [e for e in events(r, "poller") if e["event"] == "poll"]
        assert polls and all(p["ok"] for p in polls)


STATIC_SLEEPER = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec t = {3600, 0};
    for (;;) { printf("{\"event\": \"static\", \"t\": %ld}\n", (long)time(NULL)); fflush(stdout); nanosleep(&t, 0); }
}
"""


def with_static_binary(src: Path, dst: Path) -> Path:
    """``src`` plus a statically linked service, which the clock library cannot reach."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the statically linked test service")
    shutil.copytree(src, dst)
    (dst / "static.c").write_text(STATIC_SLEEPER)
    out = dst / "files" / "system" / "bin" / "hp-static-sleeper"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([gcc, "-static", "-O2", "-o", str(out), str(dst / "static.c")], check=True, capture_output=True)
    (dst / "static.c").unlink()
    out.chmod(0o755)
    with open(dst / "firmware.toml", "a", encoding="utf-8") as f:
        f.write('\n[[services]]\nname = "static"\nexec = ["/system/bin/hp-static-sleeper"]\n')
    return dst


def test_busy_loop_reaches_the_horizon_through_the_fallback(hp_settings: Settings, docker_engine: docker.DockerClient,
                                                            built_images: None, tmp_path: Path) -> None:
    """The fallback carries a never-idle device to the horizon, and a static
    binary (real time, out of the library's reach) is named in the report."""
    fw = with_static_binary(HERE / "fw_busyloop", tmp_path / "fw")
    outcome = analyze(hp_settings, docker_engine, fw, 24.0, tmp_path)
    clock = outcome.report["health"]["clock"]
    assert clock["reached_horizon"] is True
    fb = clock["fallback"]
    assert fb is not None and fb["rate"] == hp_settings.clock.fallback_rate and "not idle" in fb["why"]
    assert any("fallback" in r for r in outcome.report["verdict_reasons"])
    assert any(i["kind"] == "clock_fallback" for i in outcome.report["health"]["incidents"])
    (late,) = [e for e in events(outcome, "late") if e["event"] == "late"]
    assert late["t"] - late["t0"] >= 12 * H
    uncovered = {u["comm"]: u for u in clock["uncovered"]}
    assert "hp-static-sleep" in uncovered and uncovered["hp-static-sleep"]["why"] == "statically linked", uncovered
    assert any(i["kind"] == "clock_uncovered" for i in outcome.report["health"]["incidents"])
