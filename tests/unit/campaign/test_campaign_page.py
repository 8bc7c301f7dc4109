"""The campaign HTML page: self-contained, escaped, with the table, the diff and report links."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from campaign_fakes import result

from sandbox.campaign.model import Campaign, version_from_report
from sandbox.campaign.page import render_page
from sandbox.model import Scenario, Verdict


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_page_has_table_diff_and_relative_report_links(tmp_path: Path) -> None:
    base = result("5.3.0")
    fixed = version_from_report("b", {}, Verdict.CLEAN, name="adups-fota", version="5.4.0",
                                files={"json": str(tmp_path / "c.reports" / "r.json")})
    page = render_page(Campaign(Scenario(hours=74), base, (fixed,)), tmp_path)
    assert page.startswith("<!DOCTYPE html>")
    assert "Against the baseline" in page and "call_log, contact, sms to bigdata.adups.com" in page
    assert 'href="c.reports/r.json"' in page
    p = _Collect()
    p.feed(page)
    assert "script" not in p.tags and "link" not in p.tags and "img" not in p.tags
    assert all(not (v or "").startswith(("http:", "https:", "//")) for _, v in p.attrs)


def test_hostile_strings_are_escaped() -> None:
    evil = result("<script>alert(1)</script>", error="<img src=x onerror=alert(1)>")
    page = render_page(Campaign(Scenario(), None, (evil,)))
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page
