"""The APK manifest reader, on an APK made offline by Debian's ``aapt`` (UTF-16
string pool) and on hand-built AXML (UTF-8 pool, stripped attribute names)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from sandbox.device.axml import AxmlError, manifest_from_axml, parse_axml, read_apk_manifest

FIX = Path(__file__).parent / "fixtures" / "apk"
FRAMEWORK_RES = Path("/usr/share/android-framework-res/framework-res.apk")
EXPECTED_PERMS = (
    "android.permission.READ_SMS", "android.permission.READ_CALL_LOG", "android.permission.READ_CONTACTS",
    "android.permission.INTERNET", "android.permission.READ_PRIVILEGED_PHONE_STATE",
    "android.permission.SCHEDULE_EXACT_ALARM",
)


def _check(manifest_apk: Path) -> None:
    m = read_apk_manifest(manifest_apk)
    assert m.package == "com.honeyphone.fixture.fota"
    assert (m.version_code, m.version_name) == ("53", "5.3.0")
    assert m.shared_user_id == "android.uid.system" and m.persistent is True
    assert m.permissions == EXPECTED_PERMS


def test_committed_aapt_apk() -> None:
    """fixtures/apk/fota-fixture.apk: `aapt package -M AndroidManifest.xml -I framework-res.apk`."""
    _check(FIX / "fota-fixture.apk")


@pytest.mark.skipif(shutil.which("aapt") is None or not FRAMEWORK_RES.is_file(),
                    reason="apt-get install aapt android-framework-res to rebuild the APK here")
def test_freshly_built_aapt_apk(tmp_path: Path) -> None:
    out = tmp_path / "fresh.apk"
    subprocess.run(["aapt", "package", "-f", "-M", str(FIX / "AndroidManifest.xml"), "-I", str(FRAMEWORK_RES),
                    "-F", str(out)], check=True, capture_output=True)
    _check(out)


def _utf8_pool(strings: list[str]) -> bytes:
    data = b""
    offsets = []
    for s in strings:
        raw = s.encode()
        assert len(raw) < 128
        offsets.append(len(data))
        data += bytes([len(s), len(raw)]) + raw + b"\0"
    while len(data) % 4:
        data += b"\0"
    header = 28
    strings_start = header + 4 * len(strings)
    body = b"".join(struct.pack("<I", o) for o in offsets) + data
    return struct.pack("<HHIIIIII", 0x0001, header, header + len(body), len(strings), 0, 0x100, strings_start, 0) + body


def _start(name: int, attrs: list[tuple[int, int, int, int]]) -> bytes:
    ext = struct.pack("<IIHHHHHH", 0xFFFFFFFF, name, 20, 20, len(attrs), 0, 0, 0)
    body = ext + b"".join(struct.pack("<IIIHBBI", 0xFFFFFFFF, n, raw, 8, 0, dt, val) for n, raw, dt, val in attrs)
    return struct.pack("<HHIII", 0x0102, 16, 16 + len(body), 1, 0xFFFFFFFF) + body


def _axml_utf8() -> bytes:
    # string 0 is an attribute name stripped to "" whose id (resource map) says android:name
    strings = ["", "package", "manifest", "uses-permission", "com.example.fw", "android.permission.READ_SMS"]
    pool = _utf8_pool(strings)
    resmap = struct.pack("<HHI", 0x0180, 8, 12) + struct.pack("<I", 0x01010003)
    nodes = _start(2, [(1, 4, 0x03, 4)]) + _start(3, [(0, 0xFFFFFFFF, 0x03, 5)])
    body = pool + resmap + nodes
    return struct.pack("<HHI", 0x0003, 8, 8 + len(body)) + body


def test_utf8_pool_and_resource_map() -> None:
    m = manifest_from_axml(_axml_utf8())
    assert m.package == "com.example.fw" and m.permissions == ("android.permission.READ_SMS",)


@pytest.mark.parametrize("mutate", [
    lambda b: b[:40],                                 # truncated
    lambda b: b"\x00\x00" + b[2:],                    # wrong magic
    lambda b: b[:8] + b"\x01\x00\x1c\x00\xff\xff\xff\x7f" + b[16:],  # chunk larger than the file
    lambda b: b"",
])
def test_malformed_axml_is_rejected(mutate: object) -> None:
    with pytest.raises(AxmlError):
        parse_axml(mutate(_axml_utf8()))  # type: ignore[operator]


def test_not_an_apk(tmp_path: Path) -> None:
    bad = tmp_path / "x.apk"
    bad.write_bytes(b"not a zip")
    with pytest.raises(AxmlError):
        read_apk_manifest(bad)
    empty = tmp_path / "empty.apk"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("classes.dex", b"")
    with pytest.raises(AxmlError, match="no AndroidManifest.xml"):
        read_apk_manifest(empty)
