"""The android image build: SDK discovery fails fast and names what is
missing, nothing is downloaded unless asked, and the image scripts do what
the Dockerfile relies on (run here against a fake SDK)."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.errors import ImageError
from sandbox.images import ImageBuilder
from sandbox.images.android_sdk import find_sdk, missing_in_dir, stage_sdk, system_image_rel, zip_prefix
from sandbox.settings import Settings

IMAGE_DIR = Path(__file__).resolve().parents[3] / "emulator_images" / "android"
SCRIPTS = IMAGE_DIR / "scripts"


def fake_sdk(root: Path, api: int = 34) -> Path:
    (root / "emulator").mkdir(parents=True)
    (root / "emulator" / "emulator").write_text("#!/bin/sh\necho fake\n")
    (root / "emulator" / "emulator").chmod(0o755)
    (root / "emulator" / "source.properties").write_text("Pkg.Revision=34.2.15\n")
    img = root / system_image_rel(api)
    img.mkdir(parents=True)
    (img / "system.img").write_bytes(b"\0" * 64)
    (img / "source.properties").write_text("Pkg.Revision=14\n")
    return root


class NoDocker:
    """Any use of Docker fails the test: the SDK check must come first."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"docker was used ({name}) before the SDK check")


def test_no_sdk_fails_fast_without_docker_or_network() -> None:
    builder = ImageBuilder(Settings(), NoDocker())  # type: ignore[arg-type]
    with pytest.raises(ImageError) as info:  # "fast": before Docker (NoDocker) or any download is touched
        builder.build("android", api=34, env={})
    err = info.value
    assert "system-images;android-34;google_apis;x86_64" in err.message and "emulator" in err.message
    assert "HONEYPHONE_ANDROID_SDK (unset)" in err.message and "no download is attempted" in err.message
    assert err.fix and "sdkmanager --sdk_root=DIR" in err.fix and "--download" in err.fix


def test_unsupported_api() -> None:
    with pytest.raises(ImageError, match="not supported"):
        ImageBuilder(Settings(), NoDocker()).build("android", api=29, env={})  # type: ignore[arg-type]


def test_tags() -> None:
    b = ImageBuilder(Settings(), NoDocker())  # type: ignore[arg-type]
    assert b.tag_for("android", 30) == "honeyphone/android:30" and b.tag_for("android") == "honeyphone/android:34"
    assert Settings(android_image="my/emu:1").android_image_tag() == "my/emu:1"


def test_cli_fails_fast(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("HONEYPHONE_ANDROID_SDK", "HONEYPHONE_ANDROID_SDK_ZIP", "ANDROID_SDK_ROOT", "ANDROID_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # proves Docker is not reached first
    assert main(["images", "build", "android", "--api", "34"]) == 2
    err = capsys.readouterr().err
    assert "system-images;android-34;google_apis;x86_64" in err and "--download" in err


def test_sdk_dir_sources(tmp_path: Path) -> None:
    sdk = fake_sdk(tmp_path / "sdk")
    src = find_sdk(34, {"HONEYPHONE_ANDROID_SDK": str(sdk)})
    assert src is not None and src.kind == "dir" and src.origin == "HONEYPHONE_ANDROID_SDK"
    assert find_sdk(34, {"ANDROID_SDK_ROOT": str(sdk)}) is not None
    assert find_sdk(33, {"ANDROID_SDK_ROOT": str(sdk)}) is None  # another API level is not there
    with pytest.raises(ImageError, match="system-images;android-33"):
        find_sdk(33, {}, explicit=sdk)
    before = src.fingerprint(34)
    (sdk / system_image_rel(34) / "source.properties").write_text("Pkg.Revision=15\n")
    assert src.fingerprint(34) != before
    assert missing_in_dir(tmp_path / "nothing", 34) == [
        "emulator (emulator/emulator)", "system-images;android-34;google_apis;x86_64 "
        "(system-images/android-34/google_apis/x86_64/system.img)"]


def _zip_tree(root: Path, out: Path, prefix: str) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + str(p.relative_to(root)))
    return out


def test_sdk_zip_source(tmp_path: Path) -> None:
    sdk = fake_sdk(tmp_path / "sdk")
    z = _zip_tree(sdk, tmp_path / "sdk.zip", "android-sdk/")
    src = find_sdk(34, {"HONEYPHONE_ANDROID_SDK_ZIP": str(z)})
    assert src is not None and src.kind == "zip"
    with zipfile.ZipFile(z) as zf:
        assert zip_prefix(zf.namelist(), 34) == "android-sdk/"
    with pytest.raises(ImageError, match="holds no SDK root"):
        find_sdk(30, {"HONEYPHONE_ANDROID_SDK_ZIP": str(z)})
    (tmp_path / "bad.zip").write_bytes(b"nope")
    with pytest.raises(ImageError, match="not a readable zip"):
        find_sdk(34, {"HONEYPHONE_ANDROID_SDK_ZIP": str(tmp_path / "bad.zip")})


def test_stage_and_install_scripts_dir_and_zip(tmp_path: Path) -> None:
    sdk = fake_sdk(tmp_path / "sdk")
    env = {**os.environ, "API_LEVEL": "34"}
    for kind in ("dir", "zip"):
        ctx = tmp_path / f"ctx-{kind}"
        src = find_sdk(34, {"HONEYPHONE_ANDROID_SDK": str(sdk)} if kind == "dir" else
                       {"HONEYPHONE_ANDROID_SDK_ZIP": str(_zip_tree(sdk, tmp_path / "s.zip", "x/"))})
        assert src is not None
        stage_sdk(src, 34, ctx)
        if kind == "dir":  # hard links, not copies of gigabytes
            assert (ctx / system_image_rel(34) / "system.img").stat().st_ino == \
                (sdk / system_image_rel(34) / "system.img").stat().st_ino
        run = subprocess.run(["sh", str(SCRIPTS / "install-sdk.sh")], env={**env, "ANDROID_SDK_ROOT": str(ctx)},
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert (ctx / system_image_rel(34) / "system.img").is_file() and not (ctx / "sdk.zip").exists()


def test_install_script_refuses_to_download_unless_asked(tmp_path: Path) -> None:
    run = subprocess.run(["sh", str(SCRIPTS / "install-sdk.sh")], capture_output=True, text=True,
                         env={**os.environ, "API_LEVEL": "34", "ANDROID_SDK_ROOT": str(tmp_path)})
    assert run.returncode == 1 and "SDK_DOWNLOAD is not 1" in run.stderr


def test_avd_and_emulator_arguments(tmp_path: Path) -> None:
    env = {**os.environ, "ANDROID_AVD_HOME": str(tmp_path / "avd"), "ANDROID_EMULATOR_HOME": str(tmp_path / "h"),
           "HONEYPHONE_AVD": "honeyphone", "HONEYPHONE_API_LEVEL": "33"}
    subprocess.run(["sh", str(SCRIPTS / "create-avd.sh")], env=env, check=True, capture_output=True)
    config = (tmp_path / "avd" / "honeyphone.avd" / "config.ini").read_text()
    assert "image.sysdir.1=system-images/android-33/google_apis/x86_64/" in config
    assert "hw.ramSize=3072" in config and "hw.cpu.ncore=2" in config and "PlayStore.enabled=false" in config
    out = subprocess.run(["sh", "-c", f". {SCRIPTS / 'emulator-args.sh'}; emulator_args"],
                         env={**env, "HONEYPHONE_DNS": "10.213.0.2"}, capture_output=True, text=True, check=True)
    args = out.stdout.split()
    for flag in ("-no-window", "-no-audio", "-no-boot-anim", "-writable-system", "-skip-adb-auth"):
        assert flag in args
    assert args[args.index("-gpu") + 1] == "swiftshader_indirect"
    assert args[args.index("-dns-server") + 1] == "10.213.0.2"
    assert args[args.index("-ports") + 1] == "5556,5557"


def test_image_files_are_consistent() -> None:
    docker = (IMAGE_DIR / "Dockerfile").read_text()
    assert "ARG API_LEVEL" in docker and 'CMD ["/opt/honeyphone/launch.sh"]' in docker
    launch = (SCRIPTS / "launch.sh").read_text()
    assert "tcp:127.0.0.1:5557" in launch and "-no-snapshot-save" in launch
    for script in SCRIPTS.glob("*.sh"):
        subprocess.run(["sh", "-n", str(script)], check=True)
        assert os.access(script, os.X_OK), script
