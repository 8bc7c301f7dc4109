"""The text table: one row per version, baseline first, verdict, leaked kinds, destinations."""

from __future__ import annotations

from campaign_fakes import result

from sandbox.campaign.model import Campaign
from sandbox.campaign.table import render_grid, render_table
from sandbox.model import Scenario


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_table_shows_baseline_leak_and_fixed_version_clean() -> None:
    text = render_table(Campaign(Scenario(), result("5.3.0"), (result("5.4.0"),)))
    lines = _lines(text)
    assert lines[0].split() == ["VERSION", "VERDICT", "LEAKED", "DESTINATIONS"]
    assert set(lines[1]) <= {"-", " "}
    row53 = next(line for line in lines if line.startswith("adups-fota 5.3.0"))
    assert "LEAK" in row53 and "call_log, contact, sms" in row53 and "bigdata.adups.com:443" in row53
    assert "(baseline)" in lines[lines.index(row53) + 1]  # second line of the same row
    assert "fota5p.adups.com:443" in lines[lines.index(row53) + 1]
    row54 = next(line for line in lines if line.startswith("adups-fota 5.4.0"))
    assert row54.split()[2:] == ["clean", "-", "fota5p.adups.com:443"]


def test_columns_line_up() -> None:
    text = render_table(Campaign(Scenario(), None, (result("5.3.0"), result("5.4.0"))))
    lines = _lines(text)
    col = lines[0].index("VERDICT")
    assert all(line[col:].split()[0] in ("LEAK", "clean", "-------") for line in lines[1:] if line[:1] != " ")


def test_incomplete_and_suspicious_rows_and_error_lines() -> None:
    c = Campaign(Scenario(), None, (result("5.4-sus"), result("5.9", error="the twin did not boot")))
    text = render_table(c)
    assert "suspicious" in text
    assert "not completed" in text
    assert text.splitlines()[-1] == "adups-fota 5.9: the twin did not boot"


def test_grid_pads_multiline_cells() -> None:
    text = render_grid(("A", "B"), [[("x", "yy"), ("1",)], [("zzz",), ("2", "3")]])
    assert text.splitlines() == ["A    B", "---  -", "x    1", "yy", "zzz  2", "     3"]
