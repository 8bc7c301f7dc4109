"""The twin's init points resolv.conf at the fakenet named by ``HONEYPHONE_DNS``.

Without it names would go to Docker's embedded resolver; with a bad value
(anything but an IPv4 address) nothing may be written, so the host cannot be
tricked into injecting resolver options.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TWIN_DIR = Path(__file__).resolve().parents[3] / "emulator_images" / "twin"
if str(TWIN_DIR) not in sys.path:
    sys.path.insert(0, str(TWIN_DIR))

from twinrt import init  # noqa: E402


def test_writes_nameserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.11\noptions ndots:0\n")
    monkeypatch.setenv("HONEYPHONE_DNS", "10.213.0.2")
    init.configure_dns(str(conf))
    assert conf.read_text().splitlines()[0] == "nameserver 10.213.0.2"
    assert "127.0.0.11" not in conf.read_text()


@pytest.mark.parametrize("value", ["", "fakenet", "10.0.0.2\nnameserver 8.8.8.8", "::1"])
def test_ignores_missing_or_bad_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.11\n")
    monkeypatch.setenv("HONEYPHONE_DNS", value)
    init.configure_dns(str(conf))
    assert conf.read_text() == "nameserver 127.0.0.11\n"
