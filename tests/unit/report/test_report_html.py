"""The HTML report: self-contained, inert whatever the firmware sent, and
placing events at the right device hour."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sandbox.report.escape import esc, esc_host, highlight
from sandbox.report.html import render_html
from sandbox.report.html_timeline import PLOT_X0, PLOT_X1
from sandbox.report.validate import ReportSchemaError
from sandbox.report.view import TimeAxis, dest_group, destinations, device_hours_origin, processes

DATA = Path(__file__).parent / "data"
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _load(name: str = "adups-5.3-report.json") -> dict[str, Any]:
    report: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return report


def _evil_report() -> dict[str, Any]:
    """Hostile strings everywhere the firmware controls what the report says."""
    r = _load("kitchen-sink-report.json")
    f = r["findings"][0]
    f["canary"]["value"] = EVIL
    f["evidence"][0]["excerpt"] = f"«{EVIL}» and </code></td></tr></table>{EVIL}"
    f["evidence"][0]["locator"] = EVIL
    f["destination"]["host"] = EVIL
    f["process"]["description"] = EVIL
    f["process"]["argv"] = [EVIL, "\u202etxt.exe"]
    r["firmware"]["name"] = EVIL
    r["firmware"]["version"] = "</title><script>1</script>"
    r["analysis_id"] = EVIL
    r["verdict_reasons"].append(EVIL)
    r["network"]["dns_names"].append({"name": EVIL, "queries": 1})
    r["network"]["destinations"].append(f"{EVIL}:443")
    r["network"]["tls_failures"].append({"sni": EVIL, "orig_dst": EVIL, "error": EVIL,
                                         "device_time": f["device_time"]})
    r["syscalls"]["store_readers"][0]["process"] = f"{EVIL} (pid 1)"
    r["artifacts"][EVIL] = {"sha256": "0" * 64, "bytes": 1}
    for ev in r["timeline"]:
        if ev["event"] == "network_flow":
            ev["host"], ev["path"] = EVIL, EVIL
    return r


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "section", "footer", "div", "span", "b",
    "small", "code", "mark", "i", "br", "wbr", "h2", "h3", "p", "ul", "li", "details", "summary", "table",
    "thead", "tbody", "tr", "th", "td", "svg", "g", "rect", "line", "circle", "path", "text",
}


class _Tags(HTMLParser):
    """Every element and attribute the browser will build from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.attr_values: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attrs.add(name)
            self.attr_values.append(value or "")


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


@pytest.mark.parametrize("name", ["adups-5.3-report.json", "kitchen-sink-report.json"])
def test_renders_the_real_reports(name: str) -> None:
    r = _load(name)
    out = render_html(r)
    assert out.startswith("<!DOCTYPE html>")
    assert '<div class="badge">LEAK</div>' in out
    assert r["firmware"]["name"] in out and r["firmware"]["version"] in out and r["firmware"]["sha256"] in out
    assert out.count('<tbody class="finding">') == len(r["findings"])
    assert "<svg" in out and "</svg>" in out
    for f in r["findings"]:
        assert esc(f["canary"]["value"]) in out
    assert out.count("<mark>") >= len(r["findings"])  # every first excerpt highlights its match


def test_render_is_deterministic_and_does_not_mutate() -> None:
    r = _load()
    before = copy.deepcopy(r)
    assert render_html(r) == render_html(r)
    assert r == before


def test_self_contained_no_script_no_fetch() -> None:
    out = render_html(_load("kitchen-sink-report.json"))
    page = _parse(out)
    assert page.tags <= ALLOWED_TAGS, page.tags - ALLOWED_TAGS
    assert not page.attrs & {"src", "href", "xlink:href", "action", "srcset", "data", "poster"}
    assert not [a for a in page.attrs if a.startswith("on")]
    assert not [v for v in page.attr_values if "url(" in v or "javascript:" in v.lower()]
    css = out[out.index("<style>"):out.index("</style>")]
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    assert "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'" in out
    # the only URLs are the SVG namespace and the schema id, as text
    urls = set(re.findall(r"https?://[^\s\"'<)]+", out))
    assert urls <= {"http://www.w3.org/2000/svg", "https://honeyphone.dev/schemas/report/v1.json"}


def test_hostile_strings_are_escaped_everywhere() -> None:
    out = render_html(_evil_report())
    page = _parse(out)
    # nothing the firmware sent became an element or an attribute
    assert page.tags <= ALLOWED_TAGS, page.tags - ALLOWED_TAGS
    assert not [a for a in page.attrs if a.startswith("on") or a == "src"]
    assert "<script" not in out.lower()
    assert out.count("&lt;script&gt;") >= 10
    # the hostile excerpt could not close the table early: the structure is intact
    assert out.count("<table") == out.count("</table>")
    assert out.count("<code") == out.count("</code>")
    # the highlighted hostile value is escaped inside <mark>
    assert "<mark>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;</mark>" in out
    # a right-to-left override cannot reorder what the reader sees
    assert "\u202e" not in out


def test_hostile_markers_in_excerpt_do_not_steal_the_highlight() -> None:
    html = highlight("«decoy» stuff «+15551234567» tail", "+15551234567")
    assert html == "«decoy» stuff <mark>+15551234567</mark> tail"
    # a hash (no exact value match) is the longest marked run
    html = highlight('x«ab»"md5":"«C6E204A0E2C2B558A7679145FD34C60B»"', "+15551234567")
    assert "<mark>C6E204A0E2C2B558A7679145FD34C60B</mark>" in html
    # no markers at all: plain occurrences of the value are marked
    assert highlight("a <b> 555 c 555", "555") == "a &lt;b&gt; <mark>555</mark> c <mark>555</mark>"
    assert highlight("<nothing>", "555") == "&lt;nothing&gt;"


def test_esc_neutralises_control_bidi_and_surrogates() -> None:
    assert esc('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    assert esc("a\u202eb\u2066c\x00d\x1be\ud800f") == "a·b·c·d·e·f"
    assert esc("tab\tand\nnewline") == "tab\tand\nnewline"
    assert esc_host("a.b.<c>:80") == "a.<wbr>b.<wbr>&lt;c&gt;<wbr>:80"
    render_html(_load()).encode("utf-8")  # no lone surrogate can reach the output


def test_verdict_banner_colors() -> None:
    leak = render_html(_load())
    assert "background:#b91c1c" in leak
    r = _load()
    r["verdict"], r["findings"] = "clean", []
    clean = render_html(r)
    assert '<div class="badge">CLEAN</div>' in clean and "background:#15803d" in clean
    assert "No planted item was seen leaving the device." in clean
    r["verdict"] = "suspicious"
    suspicious = render_html(r)
    assert '<div class="badge">SUSPICIOUS</div>' in suspicious and "background:#b45309" in suspicious


def test_device_hour_origin_prefers_firmware_started_then_horizon_then_boot() -> None:
    tl: list[dict[str, Any]] = [
        {"event": "boot", "device_time": "2026-11-20T00:00:00+00:00"},
        {"event": "horizon", "device_time": "2026-11-25T00:00:00+00:00", "device_hours": 96.0},
    ]
    horizon_origin = device_hours_origin({"timeline": tl})
    assert horizon_origin is not None
    assert TimeAxis(horizon_origin).hours("2026-11-21T12:00:00+00:00") == pytest.approx(12.0)
    tl.append({"event": "firmware_started", "device_time": "2026-11-21T06:00:00Z"})
    origin = device_hours_origin({"timeline": tl})
    assert TimeAxis(origin).hours("2026-11-21T12:00:00+00:00") == pytest.approx(6.0)
    boot_only = device_hours_origin({"timeline": tl[:1]})
    assert TimeAxis(boot_only).hours("2026-11-20T01:30:00+00:00") == pytest.approx(1.5)
    assert device_hours_origin({"timeline": []}) is None


def test_timeline_places_marks_at_their_device_hour() -> None:
    r = _load()
    r["timeline"] = [e for e in r["timeline"] if e["event"] != "horizon"]
    r["timeline"].append({"event": "firmware_started", "device_time": "2026-11-26T00:00:00+00:00"})
    r["scenario"]["hours"] = 96.0
    r["syscalls"]["store_readers"] = [{"process": "/bin/spy --all (pid 4242)", "pid": 4242, "store": "sms",
                                       "device_time": "2026-11-28T00:00:00+00:00"}]  # hour 48
    out = render_html(r)
    x48 = PLOT_X0 + 48 / 96 * (PLOT_X1 - PLOT_X0)
    assert f'<circle cx="{x48:.1f}"' in out
    for h in (0, 12, 24, 36, 48, 60, 72, 84, 96):
        assert f">{h} h</text>" in out
    axis = TimeAxis(device_hours_origin(r))
    spy = [p for p in processes(r, axis) if p.pid == 4242][0]
    assert spy.name == "spy" and spy.reads == {"sms"} and spy.marks[0].hours == pytest.approx(48.0)


def test_destinations_roll_up_flows_bytes_and_findings() -> None:
    r = _load()
    axis = TimeAxis(device_hours_origin(r))
    dests = {d.label: d for d in destinations(r, axis)}
    big = dests["bigdata.adups.com:443"]
    assert big.findings == len(r["findings"])
    assert big.bytes_out == r["network"]["bytes_out_per_destination"]["bigdata.adups.com:443"]
    flows = [e for e in r["timeline"] if e["event"] == "network_flow" and e["host"] == "bigdata.adups.com"]
    assert big.flows == len(flows) and big.ips == {"10.213.0.2"}
    assert dests["fota5p.adups.com:443"].findings == 0


def test_dns_exfil_names_are_one_destination() -> None:
    assert dest_group("2b3134313738343937333439.4d69636861656c204272756e64.x.exfil.example.com") == \
        "*.x.exfil.example.com"
    assert dest_group("bigdata.adups.com") == "bigdata.adups.com"
    assert dest_group("localhost") == "localhost"
    r = _load("kitchen-sink-report.json")
    dests = destinations(r, TimeAxis(device_hours_origin(r)))
    exfil = [d for d in dests if d.host == "*.x.exfil.example.com"]
    assert len(exfil) == 1 and len(exfil[0].names) == 3 and exfil[0].port == 53


def test_missing_optional_sections_still_render() -> None:
    minimal = {"verdict": "clean", "firmware": {"name": "x", "version": "1", "sha256": "0" * 64},
               "scenario": {"hours": 8, "seed": 0}}
    out = render_html(minimal)
    assert "CLEAN" in out and "No device times to place on a timeline." in out


def test_finish_report_validates_writes_html_and_lists_it(tmp_path: Path) -> None:
    from sandbox.core.report import _finish_report

    r = _load()
    r["artifacts"]["report.html"] = {"sha256": "1" * 64, "bytes": 3}  # stale entry from an earlier run
    _finish_report(r, tmp_path)
    html_path = tmp_path / "report.html"
    data = html_path.read_bytes()
    assert r["artifacts"]["report.html"] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert b"report.html" not in data  # rendered without its own (circular) entry
    bad = _load()
    bad["verdict"] = "maybe"
    with pytest.raises(ReportSchemaError):
        _finish_report(bad, tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
