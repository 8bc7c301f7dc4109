"""The twin over the real adb binary and over adbutils, on the real twin image."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from sandbox.device import AdbServer
from sandbox.device.twin import TwinHandle
from sandbox.settings import Settings

pytestmark = pytest.mark.integration

TRICKY = 'Hi, it\'s me: "quoted", comma, colon: a\\:b back\\slash\nnew line 🎉 你好 日本語 ✓'


def adb(settings: Settings, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(AdbServer.from_settings(settings).adb_argv(*args), input=input,
                          capture_output=True, timeout=120)


def test_adb_cli_connect_and_basics(hp_settings: Settings, twin: TwinHandle) -> None:
    serial = twin.device.serial
    out = adb(hp_settings, "connect", serial)
    assert b"connected" in out.stdout
    devices = adb(hp_settings, "devices").stdout.decode()
    assert f"{serial}\tdevice" in devices
    assert adb(hp_settings, "-s", serial, "shell", "exit 3").returncode == 3
    assert adb(hp_settings, "-s", serial, "shell", "getprop", "sys.boot_completed").stdout.strip() == b"1"
    model = adb(hp_settings, "-s", serial, "shell", "getprop", "ro.product.model").stdout.strip()
    assert model == b"Honeyphone Twin"


def test_adb_cli_push_pull_50mib(hp_settings: Settings, twin: TwinHandle, tmp_path: Path) -> None:
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(50 * 1024 * 1024))
    serial = twin.device.serial
    assert adb(hp_settings, "-s", serial, "push", str(src), "/data/local/tmp/blob").returncode == 0
    back = tmp_path / "back"
    assert adb(hp_settings, "-s", serial, "pull", "/data/local/tmp/blob", str(back)).returncode == 0
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_adb_cli_content_roundtrip(hp_settings: Settings, twin: TwinHandle) -> None:
    from sandbox.device.content import insert_command, query_command

    serial = twin.device.serial
    ins = adb(hp_settings, "-s", serial, "shell", insert_command("content://sms/inbox", {"address": "+15405550123", "body": TRICKY}))
    assert ins.returncode == 0, ins.stderr
    q = adb(hp_settings, "-s", serial, "shell", query_command("content://sms/inbox", ["address", "body"]))
    assert q.stdout.decode() == f"Row: 0 address=+15405550123, body={TRICKY}\n"


def test_adbutils_same_checks(twin: TwinHandle, tmp_path: Path) -> None:
    dev = twin.device
    assert dev.shell("exit 3").exit_code == 3
    res = dev.shell("echo out; echo err >&2")
    assert (res.stdout, res.stderr) == (b"out\n", b"err\n")
    assert dev.getprop("sys.boot_completed") == "1"
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(50 * 1024 * 1024))
    dev.push(src, "/data/local/tmp/blob2")
    back = tmp_path / "back2"
    dev.pull("/data/local/tmp/blob2", back)
    assert back.read_bytes() == src.read_bytes()
    dev.content_insert("content://sms/inbox", {"address": "+15405550199", "body": TRICKY, "date": 1_700_000_000_123})
    rows = dev.content_query("content://sms/inbox", ["address", "body", "date"])
    assert rows == [{"address": "+15405550199", "body": TRICKY, "date": "1700000000123"}]


def test_firmware_reads_provider_db_directly(twin: TwinHandle) -> None:
    """Privileged firmware (uid system) opening mmssms.db read-only sees planted rows."""
    dev = twin.device
    dev.content_insert("content://sms/inbox", {"address": "+15405550111", "body": "direct read ✓"})
    script = (
        "import sqlite3;"
        "c=sqlite3.connect('file:/data/data/com.android.providers.telephony/databases/mmssms.db?mode=ro',uri=True);"
        "print(c.execute('select address, body from sms').fetchall())"
    )
    res = dev.shell(["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "python3", "-c", script])
    assert res.exit_code == 0, res.error_text
    assert "direct read ✓" in res.text and "+15405550111" in res.text


def test_adb_reboot_comes_back(hp_settings: Settings, twin: TwinHandle) -> None:
    serial = twin.device.serial
    twin.device.shell("echo before > /data/local/tmp/persist")
    adb(hp_settings, "-s", serial, "reboot")
    twin.device.disconnect()
    from sandbox.device import Device

    dev = Device.connect(AdbServer.from_settings(hp_settings), serial, hp_settings, timeout=30)
    dev.wait_for_boot(30)
    assert dev.shell("cat /data/local/tmp/persist").text == "before\n"  # /data survives a reboot
