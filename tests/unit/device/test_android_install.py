"""Installing firmware on the emulator, offline: ``adb root``, verification off,
remount (with the reboot it asks for the first time), privileged apps, the
CA in the store each API level reads, one reboot, and the checks after it.

The device is a scripted shell (fake_emulator.py) that answers with the
replies AOSP's adbd, ``avbctl``, ``pm`` and toybox print, and forgets on a
reboot what a real one forgets (root, tmpfs mounts, iptables).  It cannot
prove the emulator does what the script says; it proves the order of the
steps and that each answer is read correctly.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from android_bundle import PACKAGE as PKG, fota_bundle
from fake_emulator import FakeEmulator
from sandbox.device.emulator import AndroidHandle, after_reboot, install_firmware
from sandbox.device.privapp import plan_apps
from sandbox.errors import DeviceError
from sandbox.device.certhash import android_ca_name
from sandbox.device.trust_android import APEX_CACERTS, AndroidTrust
from sandbox.settings import Settings

HERE = Path(__file__).parent
PEM = (HERE / "fixtures" / "ca" / "mitm-ca.pem").read_bytes()


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandbox.device.android.time.sleep", lambda s: None)


@pytest.fixture()
def apps(tmp_path: Path) -> Any:
    with fota_bundle(tmp_path) as bundle:
        yield plan_apps(bundle)


def _install(monkeypatch: pytest.MonkeyPatch, fake: FakeEmulator, apps: Any) -> tuple[AndroidHandle, AndroidTrust]:
    monkeypatch.setattr("sandbox.device.android.reconnect", lambda server, serial, settings, timeout: fake)
    handle = AndroidHandle("a1", SimpleNamespace(container_id="cid", ip="10.213.0.3"), fake, fake.api, 1.0)  # type: ignore[arg-type]
    trust = AndroidTrust(PEM, fake.api)
    return install_firmware(handle, None, Settings(), apps, trust), trust  # type: ignore[arg-type]


def _services(fake: FakeEmulator) -> list[str]:
    return [c for c in fake.commands if c.startswith("<service")]


def test_api_33_system_store_and_priv_app(monkeypatch: pytest.MonkeyPatch, apps: Any) -> None:
    fake = FakeEmulator(api=33)
    handle, trust = _install(monkeypatch, fake, apps)
    # verification off needs a reboot, remount's first overlay another, the firmware a third
    assert _services(fake) == ["<service reboot:>", "<service root:>", "<service remount:>", "<service reboot:>",
                               "<service root:>", "<service remount:>", "<service reboot:>", "<service root:>"]
    assert fake.reboots == 3 and fake.root
    i_disable = fake.commands.index("avbctl disable-verification")
    assert i_disable < fake.commands.index("<service remount:>")
    # the app and its allowlist, where PackageManager scans privileged apps
    assert fake.packages == {PKG: "/system/priv-app/Fota/Fota.apk"}
    xml = fake.files[f"/system/etc/permissions/privapp-permissions-{PKG}.xml"].decode()
    assert f'package="{PKG}"' in xml
    assert any(c.startswith("chcon -R u:object_r:system_file:s0 /system/priv-app/Fota") for c in fake.commands)
    # the CA went in before the last reboot, by subject_hash_old, and is checked after it
    assert trust.name == android_ca_name(PEM) and trust.name in fake.cacerts
    i_cp = next(i for i, c in enumerate(fake.commands) if c.startswith("cp ") and trust.name in c)
    last_reboot = max(i for i, c in enumerate(fake.commands) if c == "<service reboot:>")
    assert i_cp < last_reboot < fake.commands.index(f"ls /system/etc/security/cacerts/{trust.name}")
    # runtime permissions: granted where pm allows, refusals are not errors
    assert "pm grant com.honeyphone.fixture.fota android.permission.READ_SMS" in fake.commands
    assert handle.device is fake


def test_api_34_apex_mounts_after_the_reboot(monkeypatch: pytest.MonkeyPatch, apps: Any) -> None:
    fake = FakeEmulator(api=34, verity=False, overlay_ready=True)
    handle, trust = _install(monkeypatch, fake, apps)
    assert fake.reboots == 1  # verification already off, overlay ready: only the firmware's reboot
    assert trust.name not in fake.cacerts  # never written to /system: the APEX store is read instead
    assert fake.zygote_sees >= {trust.name}  # what apps see, checked through zygote's mount namespace
    i_inject = fake.commands.index("sh /data/local/tmp/honeyphone-ca/inject.sh")
    assert fake.commands.index("<service reboot:>") < i_inject
    # the name avoids names already in the store apps read
    assert f"ls {APEX_CACERTS}" in fake.commands
    # a later reboot drops the mounts; after_reboot puts them back
    fake.reboot_now()
    assert trust.name not in fake.zygote_sees
    fake.root = True
    after_reboot(handle, trust)
    assert trust.name in fake.zygote_sees


def test_an_app_package_manager_skipped_is_named(monkeypatch: pytest.MonkeyPatch, apps: Any) -> None:
    fake = FakeEmulator(api=34, verity=False, overlay_ready=True)
    original = fake.reboot_now

    def reboot_without_scan() -> None:
        original()
        fake.packages.clear()  # e.g. a signature PackageManager refused

    fake.reboot_now = reboot_without_scan  # type: ignore[method-assign]
    with pytest.raises(DeviceError, match=f"PackageManager did not pick up {PKG}"):
        _install(monkeypatch, fake, apps)


def test_remount_without_writable_system_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, apps: Any) -> None:
    fake = FakeEmulator(api=33, verity=False, overlay_ready=True)
    fake.service = lambda name, timeout=30.0: (  # type: ignore[method-assign]
        "adbd is already running as root\n" if name == "root:" else "remount failed\n")
    with pytest.raises(DeviceError, match="-writable-system"):
        _install(monkeypatch, fake, apps)
