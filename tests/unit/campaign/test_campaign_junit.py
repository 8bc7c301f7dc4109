"""JUnit XML: parses, one testsuite, one testcase per version, failure for leaks, error for incomplete,
and the attributes Jenkins and GitLab read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from campaign_fakes import result

from sandbox.campaign.junit import render_junit
from sandbox.campaign.model import Campaign
from sandbox.model import Scenario

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _parse(c: Campaign) -> ET.Element:
    text = render_junit(c, WHEN, "ci-host")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.encode("utf-8"))


def test_baseline_leak_is_a_failure_and_fixed_version_passes() -> None:
    root = _parse(Campaign(Scenario(hours=74, seed=7), result("5.3.0"), (result("5.4.0"),), "c1"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    for el in (root, suite):
        assert (el.get("tests"), el.get("failures"), el.get("errors"), el.get("skipped")) == ("2", "1", "0", "0")
        assert float(el.get("time", "x")) == 3.0
    assert suite.get("name") == "honeyphone campaign" and suite.get("hostname") == "ci-host"
    assert suite.get("timestamp") == "2026-01-02T03:04:05+00:00"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["scenario.hours"] == "74" and props["scenario.seed"] == "7" and props["campaign"] == "c1"
    assert props["baseline"] == "adups-fota 5.3.0"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["adups-fota 5.3.0", "adups-fota 5.4.0"]
    for c in cases:
        assert c.get("classname") == "honeyphone.adups-fota" and c.get("file") == "b" and c.get("time") == "1.500"
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("type") == "leak"
    assert failure.get("message") == "leak: call_log, contact, sms to bigdata.adups.com"
    assert "sms sent to bigdata.adups.com:443 over https" in (failure.text or "")
    assert "role: baseline" in (cases[0].findtext("system-out") or "")
    assert cases[1].find("failure") is None and cases[1].find("error") is None


def test_incomplete_is_an_error_and_suspicious_passes_with_reasons() -> None:
    c = Campaign(Scenario(), None, (result("5.9", error="twin \x00 did not boot"), result("5.4-sus")))
    root = _parse(c)
    suite = root.find("testsuite")
    assert suite is not None and (suite.get("failures"), suite.get("errors")) == ("0", "1")
    broken, sus = suite.findall("testcase")
    err = broken.find("error")
    assert err is not None and err.get("type") == "incomplete" and "did not boot" in (err.get("message") or "")
    assert "\x00" not in (err.get("message") or "")
    assert sus.find("failure") is None and "suspicious:" in (sus.findtext("system-out") or "")


def test_names_with_markup_are_escaped() -> None:
    r = result("5.3.0<&\">")
    root = _parse(Campaign(Scenario(), None, (r,)))
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == 'adups-fota 5.3.0<&">'
