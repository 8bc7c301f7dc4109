"""Findings grouped into (kind, host) leaks, destinations, exit codes."""

from __future__ import annotations

import pytest
from campaign_fakes import finding, report, result

from sandbox.campaign.model import Leak, exit_code, leak_details, report_destinations, version_from_report
from sandbox.model import Verdict


def test_leak_details_keep_the_earliest_finding_and_count() -> None:
    fs = [finding("sms", "h", device_time="2026-01-02T00:00:00+00:00", encoding=("gzip",)),
          finding("sms", "h", device_time="2026-01-01T00:00:00+00:00", channel="http", port=80),
          finding("contact", "h")]
    details = leak_details(fs)
    assert [d.leak for d in details] == [Leak("contact", "h"), Leak("sms", "h")]
    sms = details[1]
    assert (sms.count, sms.channel, sms.port, sms.device_time) == (2, "http", 80, "2026-01-01T00:00:00+00:00")
    assert sms.describe() == ("sms sent to h:80 over http as clear text at device time 2026-01-01T00:00:00+00:00 "
                              "by python3 (pid 42) (2 finding(s))")


def test_leaks_fall_back_to_the_ip_and_tolerate_odd_findings() -> None:
    f = finding("sms", "")
    details = leak_details([f, {"canary": None}, "junk"])
    assert Leak("sms", "10.213.0.2") in {d.leak for d in details}
    assert Leak("unknown", "unknown") in {d.leak for d in details}


def test_destinations_from_network_else_findings() -> None:
    assert report_destinations({"network": {"destinations": ["b:1", "a:2"]}}) == ("a:2", "b:1")
    assert report_destinations({"findings": [finding("sms", "x", 80)]}) == ("x:80",)
    assert report_destinations({}) == ()


def test_report_names_the_firmware_over_the_fallback() -> None:
    r = version_from_report("dir", report("real", "9", "clean", [], []), Verdict.CLEAN, name="dir", version="?")
    assert r.label == "real 9" and r.completed
    r = version_from_report("dir", {}, None, name="dir", version="?", error="boom")
    assert r.label == "dir ?" and not r.completed


@pytest.mark.parametrize(("versions", "code"), [
    (["5.4.0"], 0), (["5.3.0", "5.4.0"], 1), (["5.4-sus", "5.4.0"], 3), (["5.4.0", None], 2),
    (["5.3.0", None], 1), (["5.4-sus", None], 3),
])
def test_exit_codes_like_analyze(versions: list[str | None], code: int) -> None:
    rs = [result(v) if v else result("5.9", error="failed") for v in versions]
    assert exit_code(rs) == code
