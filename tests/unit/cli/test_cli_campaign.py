"""The ``campaign`` command against an in-process farm with a runner faking reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_fakes import fake_farm, make_bundle

from sandbox.cli import main


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[str]:
    with fake_farm(tmp_path) as (address, _):
        yield address


def test_cli_campaign_writes_junit_html_and_exits_1(farm: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    b53, b54 = make_bundle(tmp_path, "5.3.0"), make_bundle(tmp_path, "5.4.0")
    junit, html = tmp_path / "out" / "j.xml", tmp_path / "out" / "c.html"
    rc = main(["campaign", str(b54), "--baseline", str(b53), "--server", farm, "--hours", "74",
               "--junit", str(junit), "--html", str(html), "--contacts", "5", "--sms", "5", "--calls", "5"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "fixed:       call_log, contact, sms to bigdata.adups.com" in out
    assert f"junit: {junit}" in out and f"html:  {html}" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    assert "adups-fota 5.4.0 vs baseline adups-fota 5.3.0" in html.read_text()
    assert len(list((tmp_path / "out" / "c.reports").glob("*.json"))) == 2


@pytest.mark.parametrize(("versions", "code"), [(["5.4.0", "5.5.0"], 0), (["5.4.0", "5.4-sus"], 3),
                                                (["5.4.0", "5.4-broken"], 2), (["5.3.0", "5.4-broken"], 1)])
def test_cli_exit_codes(farm: str, tmp_path: Path, versions: list[str], code: int,
                        capsys: pytest.CaptureFixture[str]) -> None:
    bundles = [str(make_bundle(tmp_path, v)) for v in versions]
    assert main(["campaign", *bundles, "--server", farm, "--hours", "2"]) == code
    out = capsys.readouterr().out
    if "5.4-broken" in versions:
        assert "adups-fota 5.4-broken: the twin did not boot" in out


def test_missing_bundle_and_dead_server_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", str(tmp_path / "nope")]) == 2
    assert "no such bundle" in capsys.readouterr().err
    b = make_bundle(tmp_path, "5.4.0")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    assert main(["campaign", str(b), "--server", dead]) == 2
    assert "unavailable" in capsys.readouterr().err
