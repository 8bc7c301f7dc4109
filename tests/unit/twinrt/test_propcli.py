"""propcli.py: toolbox getprop/setprop output and errors over props.py."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

TWIN_DIR = Path(__file__).resolve().parents[3] / "emulator_images" / "twin"
sys.path.insert(0, str(TWIN_DIR))

from twinrt import propcli  # noqa: E402


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))
    (tmp_path / "system").mkdir()
    (tmp_path / "system/build.prop").write_text(
        "# build\nro.product.model=Pixel 7\nro.build.version.sdk=34\nro.empty=\n"
    )
    (tmp_path / "default.prop").write_text("ro.debuggable=1\nro.product.model=overridden\n")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = propcli.run(list(args), out, err)
    return status, out.getvalue(), err.getvalue()


def test_getprop_lists_all_sorted(root: Path) -> None:
    assert run("setprop", "persist.sys.locale", "en-US") == (0, "", "")
    assert run("getprop") == (
        0,
        "[persist.sys.locale]: [en-US]\n"
        "[ro.build.version.sdk]: [34]\n"
        "[ro.debuggable]: [1]\n"
        "[ro.empty]: []\n"
        "[ro.product.model]: [Pixel 7]\n",
        "",
    )


def test_getprop_name_and_default(root: Path) -> None:
    assert run("getprop", "ro.product.model") == (0, "Pixel 7\n", "")
    assert run("getprop", "no.such.prop") == (0, "\n", "")
    assert run("getprop", "no.such.prop", "fallback") == (0, "fallback\n", "")
    assert run("getprop", "ro.empty", "fallback") == (0, "fallback\n", "")  # empty counts as missing
    assert run("getprop", "ro.product.model", "fallback") == (0, "Pixel 7\n", "")


def test_getprop_errors_and_options(root: Path) -> None:
    assert run("getprop", "a", "b", "c") == (255, "", 'getprop: Max 2 arguments (see "getprop --help")\n')
    assert run("getprop", "-x") == (255, "", "getprop: unknown option -- x\n")
    assert run("getprop", "-T", "-Z") == (255, "", "Only one of -T or -Z may be specified\n")
    assert run("getprop", "-Z", "ro.debuggable") == (0, "u:object_r:default_prop:s0\n", "")
    assert run("getprop", "ro.debuggable", "-T") == (0, "string\n", "")
    assert run("getprop", "--", "-x") == (0, "\n", "")
    status, out, _ = run("getprop", "--help")
    assert status == 0 and out.startswith("usage: getprop [-TZ] [NAME [DEFAULT]]\n")
    assert run("getprop", "-Z")[1].splitlines()[0] == "[ro.build.version.sdk]: [u:object_r:default_prop:s0]"


def test_setprop_sets_and_ro_once(root: Path) -> None:
    assert run("setprop", "debug.x", "1") == (0, "", "")
    assert run("setprop", "debug.x", "2") == (0, "", "")
    assert run("getprop", "debug.x") == (0, "2\n", "")
    assert run("setprop", "ro.new.thing", "a") == (0, "", "")
    assert run("setprop", "ro.new.thing", "b") == (
        1, "", "Failed to set property 'ro.new.thing' to 'b'.\nSee dmesg for error reason.\n"
    )
    assert run("setprop", "debug.empty", "") == (0, "", "")
    assert run("getprop", "debug.empty", "dflt") == (0, "dflt\n", "")


@pytest.mark.parametrize(
    ("args", "status", "out", "err"),
    [
        (["x"], 1, "usage: setprop NAME VALUE\n\nSets an Android system property.\n\n", ""),
        (["a", "b", "c"], 1, "usage: setprop NAME VALUE\n\nSets an Android system property.\n\n", ""),
        ([".a", "v"], 1, "", "Property names must not start or end with a '.'\n"),
        (["a.", "v"], 1, "", "Property names must not start or end with a '.'\n"),
        (["a..b", "v"], 1, "", "'..' is not allowed in a property name\n"),
        (["a b", "v"], 1, "", "Invalid character ' ' in name 'a b'\n"),
        (["a/b", "v"], 1, "", "Invalid character '/' in name 'a/b'\n"),
        (["debug.long", "v" * 92], 1, "", f"Value '{'v' * 92}' is too long, 92 bytes vs a max of 92\n"),
        (["debug.ok", "v" * 91], 0, "", ""),
        # setprop.cpp tests the *value* for "ro.", not the name: a long ro.* value is refused ...
        (["ro.long", "v" * 200], 1, "", f"Value '{'v' * 200}' is too long, 200 bytes vs a max of 92\n"),
        (["ro.long", "ro." + "v" * 200], 0, "", ""),
        # ... and a long value that starts with "ro." passes setprop but init refuses it.
        (["debug.quirk", "ro." + "v" * 100], 1, "", "Failed to set property 'debug.quirk' to '"
         + "ro." + "v" * 100 + "'.\nSee dmesg for error reason.\n"),
        (["x.y:z@w-v_u", "ok"], 0, "", ""),
    ],
)
def test_setprop_checks(root: Path, args: list[str], status: int, out: str, err: str) -> None:
    assert run("setprop", *args) == (status, out, err)


def test_cli_subprocess(root: Path) -> None:
    env = {**os.environ, "TWIN_ROOT": str(root), "PYTHONPATH": str(TWIN_DIR)}

    def cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "twinrt.propcli", *args], env=env, capture_output=True,
                              timeout=60)

    assert cli("setprop", "persist.twin.name", "表示 😀").returncode == 0
    r = cli("getprop", "persist.twin.name")
    assert (r.returncode, r.stdout.decode("utf-8")) == (0, "表示 😀\n")
    r = cli("getprop")
    assert b"[persist.twin.name]: [\xe8\xa1\xa8\xe7\xa4\xba \xf0\x9f\x98\x80]\n" in r.stdout
    r = cli("getprop", "a", "b", "c")
    assert r.returncode == 255 and r.stderr == b'getprop: Max 2 arguments (see "getprop --help")\n'
    r = cli("setprop", "debug.bad", b"\xff\xfe")
    assert r.returncode == 1 and r.stderr == b"Value '\xff\xfe' is not a UTF8 encoded string\n"
    r = cli("bogus")
    assert r.returncode == 2
