"""The device profiles the contract suite runs against, behind one interface.

Each profile boots a device on the real Docker engine and adb, and knows the
few things that differ: how firmware with a 72 h wall-clock deadline is
installed and its firing read back, how the device clock is driven, and a
shell command that makes an HTTP request.  Everything else in the suite is
the same code for every profile.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from sandbox.bundle import load_bundle
from sandbox.clock.android_clock import AndroidClock, AndroidClockConfig
from sandbox.clock.base import DeviceClock
from sandbox.clock.twin_clock import ClockConfig, TwinClock
from sandbox.containers.cleanup import cleanup
from sandbox.containers.device_container import stop_container
from sandbox.containers.emulator_container import kvm_available, local_android_image
from sandbox.containers.network import DeviceNetwork
from sandbox.device import AdbServer
from sandbox.device.device import Device
from sandbox.device.firmware import install_twin_bundle, read_service_log, start_services
from sandbox.network.archive import read_file
from sandbox.settings import Settings

HERE = Path(__file__).parent
FW = HERE / "contract_fw"
TESTAPP = HERE / "android_testapp"
TESTAPP_PACKAGE = "dev.honeyphone.contract"
H = 3600.0


@dataclass
class Booted:
    device: Device
    ip: str
    container_id: str
    api: int | None = None


def android_image_or_skip(client: docker.DockerClient, settings: Settings) -> str:
    """The emulator image to use, or ``pytest.skip`` saying how to get one."""
    how = ("build one with `honeyphone images build android --api 34` on a host with KVM and the Android SDK "
           "(README: 'Android emulator profile'), or set HONEYPHONE_ANDROID_IMAGE to an existing image")
    ref = local_android_image(settings, client)  # the image a worker's android session boots
    if ref is None:
        pinned = settings.android_image or os.environ.get("HONEYPHONE_ANDROID_IMAGE")
        pytest.skip((f"HONEYPHONE_ANDROID_IMAGE={pinned} is not an image on this engine" if pinned else
                     f"no Android emulator image ({settings.android_image_repo}:<api>) on this engine") + f"; {how}")
    if not kvm_available():
        pytest.skip("the Android emulator needs /dev/kvm, which cannot be opened here")
    return ref


def android_test_apk(tmp: Path) -> Path:
    """The contract APK: HONEYPHONE_ANDROID_TEST_APK, or built with the SDK's build-tools, or skip."""
    given = os.environ.get("HONEYPHONE_ANDROID_TEST_APK")
    if given:
        return Path(given)
    sdk = os.environ.get("ANDROID_SDK_ROOT") or os.environ.get("ANDROID_HOME")
    if not sdk or not list(Path(sdk).glob("build-tools/*/d8")) or not list(Path(sdk).glob("platforms/android-*")):
        pytest.skip("the android contract firmware is an APK with code: set HONEYPHONE_ANDROID_TEST_APK, or "
                    "ANDROID_SDK_ROOT to an SDK with build-tools and a platform (android_testapp/build.sh builds it)")
    if shutil.which("javac") is None or shutil.which("keytool") is None:
        pytest.skip("building the android contract APK needs a JDK (javac, keytool)")
    out = tmp / "contract.apk"
    subprocess.run(["sh", str(TESTAPP / "build.sh"), str(out)], check=True, capture_output=True, timeout=600)
    return out


def android_bundle_dir(src: Path, apk: Path, name: str) -> Path:
    """A bundle directory (profile android) whose one app is ``apk``."""
    (src / "apps").mkdir(parents=True)
    shutil.copy(apk, src / "apps" / "Contract.apk")
    (src / "firmware.toml").write_text(f'[firmware]\nname = "{name}"\nversion = "1"\nprofile = "android"\n\n'
                                       '[[apps]]\npath = "apps/Contract.apk"\n')
    return src


class TwinProfile:
    name = "twin"
    android = False

    def __init__(self, settings: Settings, client: docker.DockerClient) -> None:
        self.settings, self.client = settings, client
        self.clock_start = float(int(time.time()))
        self._clock: TwinClock | None = None

    @contextmanager
    def booted(self, analysis_id: str, network: DeviceNetwork | None = None,
               environment: dict[str, str] | None = None) -> Iterator[Booted]:
        from sandbox.device.twin import boot_twin

        handle = boot_twin(self.settings, self.client, AdbServer.from_settings(self.settings), analysis_id,
                           network=network, environment=environment)
        try:
            yield Booted(handle.device, handle.container.ip, handle.container.container_id)
        finally:
            handle.device.disconnect()
            self._teardown(analysis_id, handle.container.container_id, own_network=network is None)

    def _teardown(self, analysis_id: str, container_id: str, own_network: bool) -> None:
        """Everything of the analysis when this profile made it; else only the device (the caller owns the rest)."""
        if own_network:
            cleanup(self.client, self.settings, analysis_id)
        else:
            stop_container(self.client, container_id)

    def prepare_for_planting(self, booted: Booted) -> None:
        """Nothing to do: the twin's providers take the shell's inserts."""

    def install_alarm_firmware(self, booted: Booted, tmp: Path) -> None:
        bundle = load_bundle(FW / "alarm72", self.settings.bundle_limits, tmp)
        config = ClockConfig(start_epoch=self.clock_start, horizon_hours=76.0, settings=self.settings.clock)
        try:
            install_twin_bundle(booted.device, bundle, clock=config.manifest_entry())
        finally:
            bundle.cleanup()
        start_services(booted.device)
        client, container_id = self.client, booted.container_id
        self._clock = TwinClock(lambda path: read_file(client, container_id, path), config)

    def clock(self, booted: Booted) -> DeviceClock:
        assert self._clock is not None
        return self._clock

    def alarm_record(self, booted: Booted) -> tuple[float, float] | None:
        """(t0, fired) in device epoch seconds, or None when it has not fired."""
        for line in read_service_log(booted.device, "alarm72").splitlines():
            if line.startswith("{") and json.loads(line).get("event") == "fired":
                ev = json.loads(line)
                return float(ev["t0"]), float(ev["t"])
        return None

    def http_get_command(self, host: str, path: str) -> str:
        return shlex.join(["curl", "-s", "-m", "20", "-o", "/dev/null", f"http://{host}{path}"])

    def leak_bundle(self, tmp: Path) -> Path:
        return FW / "leak"


class AndroidProfile:
    name = "android"
    android = True

    def __init__(self, settings: Settings, client: docker.DockerClient) -> None:
        self.image = android_image_or_skip(client, settings)
        self.settings, self.client = settings, client
        self.server = AdbServer.from_settings(settings)
        self._clock: AndroidClock | None = None

    @contextmanager
    def booted(self, analysis_id: str, network: DeviceNetwork | None = None,
               environment: dict[str, str] | None = None) -> Iterator[Booted]:
        from sandbox.device.emulator import boot_android

        handle = boot_android(self.settings, self.client, self.server, analysis_id, network=network,
                              environment=environment, image=self.image)
        booted = Booted(handle.device, handle.container.ip, handle.container.container_id, handle.api)
        self._handle = handle
        try:
            yield booted
        finally:
            booted.device.disconnect()
            if network is None:
                cleanup(self.client, self.settings, analysis_id)
            else:
                stop_container(self.client, handle.container.container_id)

    def prepare_for_planting(self, booted: Booted) -> None:
        from sandbox.device.android import prepare_for_planting

        prepare_for_planting(booted.device)

    def install_alarm_firmware(self, booted: Booted, tmp: Path) -> None:
        from sandbox.device.emulator import install_firmware
        from sandbox.device.privapp import plan_apps

        src = android_bundle_dir(tmp / "android-fw", android_test_apk(tmp), "contract")
        bundle = load_bundle(src, self.settings.bundle_limits, tmp / "work")
        try:
            handle = install_firmware(self._handle, self.server, self.settings, plan_apps(bundle))
        finally:
            bundle.cleanup()
        booted.device = handle.device
        config = AndroidClockConfig(start_epoch=float(int(time.time())), packages=(TESTAPP_PACKAGE,),
                                    api_level=handle.api)
        self._clock = AndroidClock(booted.device, config)
        deadline = time.monotonic() + 120
        while self._read(booted, "scheduled.txt") is None:
            assert time.monotonic() < deadline, "the contract app did not schedule its alarm after boot"
            time.sleep(2)

    def clock(self, booted: Booted) -> DeviceClock:
        assert self._clock is not None
        return self._clock

    def _read(self, booted: Booted, name: str) -> str | None:
        res = booted.device.shell(["cat", f"/data/data/{TESTAPP_PACKAGE}/files/{name}"])
        return res.text if res.exit_code == 0 and res.text.strip() else None

    def alarm_record(self, booted: Booted) -> tuple[float, float] | None:
        text = self._read(booted, "fired.txt")
        if text is None:
            return None
        t0, now = text.split()
        return int(t0) / 1000.0, int(now) / 1000.0

    def http_get_command(self, host: str, path: str) -> str:
        request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n"
        return f"printf {shlex.quote(request)} | nc -w 20 {shlex.quote(host)} 80 >/dev/null"

    def leak_bundle(self, tmp: Path) -> Path:
        return android_bundle_dir(tmp / "android-leak", android_test_apk(tmp), "contract-leak")


Profile = TwinProfile | AndroidProfile
