"""Android helpers over a scripted shell: planting prerequisites (appops),
process lookup, strace attach command lines, privileged-app installation
plan and files, the emulator container's arguments."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import cast
from xml.etree import ElementTree

import pytest
from android_bundle import fota_bundle
from fake_android import FakeAndroid

from sandbox.clock.base import DeviceClock
from sandbox.clock.twin_clock import ClockConfig, TwinClock
from sandbox.containers.emulator_container import EMULATOR_CAPS, emulator_create_kwargs
from sandbox.containers.network import DeviceNetwork
from sandbox.device.android import parse_ps, prepare_for_planting
from sandbox.device.android_strace import attach_script, trace_file
from sandbox.device.android import Proc
from sandbox.device.device import Device
from sandbox.device.privapp import app_dir_name, install_commands, permissions_xml, plan_apps
from sandbox.errors import BundleError, PlantingError
from sandbox.settings import Settings

APK = Path(__file__).parent / "fixtures" / "apk" / "fota-fixture.apk"


def test_prepare_for_planting_sets_and_verifies_write_sms() -> None:
    fake = FakeAndroid()
    prepare_for_planting(cast(Device, fake))
    assert fake.commands[:2] == ["appops set com.android.shell WRITE_SMS allow", "appops get com.android.shell WRITE_SMS"]


def test_prepare_for_planting_fails_when_the_op_does_not_stick() -> None:
    fake = FakeAndroid()
    original = fake._run
    fake._run = lambda cmd: ("", 0) if cmd.startswith("appops set") else original(cmd)  # type: ignore[method-assign]
    with pytest.raises(PlantingError, match="appops did not take"):
        prepare_for_planting(cast(Device, fake))


def test_parse_toybox_ps() -> None:
    text = ("  PID NAME\n    1 init\n  612 zygote64\n 2345 com.adups.fota\n 2399 com.adups.fota:remote\n"
            " 2400 com.adups.fotax\n")
    procs = parse_ps(text)
    assert Proc(2345, "com.adups.fota") in procs and len(procs) == 5
    wanted = [p for p in procs if p.name == "com.adups.fota" or p.name.startswith("com.adups.fota:")]
    assert [p.pid for p in wanted] == [2345, 2399]


def test_strace_attach_script() -> None:
    proc = Proc(2399, "com.adups.fota:remote")
    assert trace_file(proc) == "/data/local/tmp/honeyphone/trace/com.adups.fota_remote-2399.strace"
    script = attach_script(proc)
    assert script.startswith("nohup strace -f -q -o ") and script.endswith(" & echo $!")
    argv = shlex.split(script.split(" </dev/null")[0])[1:]
    assert argv[argv.index("-p") + 1] == "2399" and "-Y" in argv and "--seccomp-bpf" not in argv
    assert "-Y" not in shlex.split(attach_script(proc, comm=False).split(" </dev/null")[0])


def test_privapp_permissions_xml_grants_what_the_manifest_requests(tmp_path: Path) -> None:
    from sandbox.device.axml import read_apk_manifest

    manifest = read_apk_manifest(APK)
    root = ElementTree.fromstring(permissions_xml(manifest))
    (entry,) = root.findall("privapp-permissions")
    assert entry.get("package") == "com.honeyphone.fixture.fota"
    assert tuple(p.get("name") for p in entry.findall("permission")) == manifest.permissions


def test_plan_apps_from_a_bundle(tmp_path: Path) -> None:
    with fota_bundle(tmp_path, "Fota Provider.apk") as bundle:
        (app,) = plan_apps(bundle)
    assert app.name == "Fota_Provider"
    assert app.apk_path == "/system/priv-app/Fota_Provider/Fota_Provider.apk"
    assert app.permissions_path == "/system/etc/permissions/privapp-permissions-com.honeyphone.fixture.fota.xml"
    cmds = install_commands(app)
    assert "chmod 755 /system/priv-app/Fota_Provider" in cmds
    assert any(c.startswith("chcon -R u:object_r:system_file:s0 /system/priv-app/Fota_Provider") for c in cmds)


@pytest.mark.parametrize("path,name", [("apps/Fota.apk", "Fota"), ("a/b/x y$z.APK", "x_y_z"), ("v1.2.apk", "v1.2")])
def test_app_dir_names(path: str, name: str) -> None:
    assert app_dir_name(path) == name


def test_app_dir_name_needs_something_usable() -> None:
    with pytest.raises(BundleError):
        app_dir_name("apps/$$$.apk")


def test_emulator_container_arguments() -> None:
    settings = Settings()
    net = DeviceNetwork("nid", "hp-a1", "10.213.0.0/28", "10.213.0.1", "hpa1")
    kw = emulator_create_kwargs(settings, "a1b2c3", net, "honeyphone/android:34", {"HONEYPHONE_DNS": "10.213.0.2"})
    assert kw["devices"] == ["/dev/kvm:/dev/kvm:rwm"]
    assert kw["cap_drop"] == ["ALL"] and kw["cap_add"] == EMULATOR_CAPS and "NET_ADMIN" not in EMULATOR_CAPS
    assert kw["security_opt"] == ["no-new-privileges"] and kw["network"] == "hp-a1"
    assert kw["mem_limit"] == 4 * 1024**3 and kw["nano_cpus"] == 2_000_000_000
    assert kw["labels"][settings.label_analysis] == "a1b2c3" and kw["labels"][settings.label_role] == "device"
    assert kw["environment"] == {"HONEYPHONE_DNS": "10.213.0.2"}


def test_both_clocks_are_device_clocks() -> None:
    twin = TwinClock(cast(Device, FakeAndroid()), ClockConfig(0.0, 1.0))
    assert isinstance(twin, DeviceClock)
    twin.configure()  # a no-op: the manifest configures the twin's clock
