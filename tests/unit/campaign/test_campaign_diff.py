"""Baseline vs version: new and fixed (kind, host) pairs and new destinations."""

from __future__ import annotations

from campaign_fakes import BIGDATA, UPDATE, finding, report, result

from sandbox.campaign.diff import describe, diff_campaign, diff_versions, group_leaks, render_diffs
from sandbox.campaign.model import Campaign, Leak, version_from_report
from sandbox.model import Scenario, Verdict


def test_the_fix_removes_every_leak_and_the_bigdata_host() -> None:
    d = diff_versions(result("5.3.0"), result("5.4.0"))
    assert d.comparable and not d.regressed
    assert d.fixed_leaks == (Leak("call_log", BIGDATA), Leak("contact", BIGDATA), Leak("sms", BIGDATA))
    assert d.new_leaks == () and d.kept_leaks == ()
    assert d.new_destinations == () and d.dropped_destinations == (f"{BIGDATA}:443",)
    text = "\n".join(describe(d))
    assert "adups-fota 5.4.0 vs baseline adups-fota 5.3.0" in text
    assert "fixed:       call_log, contact, sms to bigdata.adups.com" in text
    assert "new leaks:   none" in text


def test_a_regression_shows_new_leaks_and_destinations() -> None:
    d = diff_versions(result("5.4.0"), result("5.3.1"))
    assert d.regressed
    assert {str(x) for x in d.new_leaks} == {"sms to bigdata.adups.com", "call_log to bigdata.adups.com",
                                              "contact to bigdata.adups.com"}
    assert d.new_destinations == (f"{BIGDATA}:443",) and d.fixed_leaks == ()


def test_same_leak_to_another_host_is_new_and_the_old_one_fixed() -> None:
    old = version_from_report("a", report("fw", "1", "leak", [finding("sms", "a.example")], ["a.example:443"]),
                              Verdict.LEAK, name="fw", version="1")
    new = version_from_report("b", report("fw", "2", "leak", [finding("sms", "b.example", 80)], ["b.example:80"]),
                              Verdict.LEAK, name="fw", version="2")
    d = diff_versions(old, new)
    assert d.new_leaks == (Leak("sms", "b.example"),) and d.fixed_leaks == (Leak("sms", "a.example"),)
    assert d.new_destinations == ("b.example:80",) and d.dropped_destinations == ("a.example:443",)


def test_kept_leaks_are_listed_and_counts_do_not_matter() -> None:
    d = diff_versions(result("5.3.0"), result("5.3.9"))
    assert d.new_leaks == () and d.fixed_leaks == () and len(d.kept_leaks) == 3
    assert any(line.startswith("  still leaks:") for line in describe(d))


def test_an_incomplete_side_is_not_comparable() -> None:
    d = diff_versions(result("5.3.0"), result("5.4.0", error="twin did not boot"))
    assert not d.comparable and d.fixed_leaks == () and d.new_leaks == ()
    assert "not comparable" in describe(d)[0]


def test_campaign_diffs_each_candidate_and_none_without_baseline() -> None:
    s = Scenario(hours=74)
    c = Campaign(s, result("5.3.0"), (result("5.4.0"), result("5.3.1")))
    diffs = diff_campaign(c)
    assert [d.version for d in diffs] == ["adups-fota 5.4.0", "adups-fota 5.3.1"]
    assert "adups-fota 5.3.1 vs baseline" in render_diffs(diffs)
    assert diff_campaign(Campaign(s, None, (result("5.4.0"),))) == ()


def test_group_leaks_groups_kinds_per_host() -> None:
    text = group_leaks([Leak("sms", "b.x"), Leak("contact", "a.x"), Leak("call_log", "a.x")])
    assert text == "call_log, contact to a.x; sms to b.x"
    assert UPDATE.endswith(":443")
