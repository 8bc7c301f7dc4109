"""The Android session's steps, offline, against a scripted emulator shell.

What runs for real: the session, planting (with the twin's own ``content``
implementation answering), the emulator clock loop, strace attachment and
the pull of traces.  What is scripted: the shell's answers (AOSP formats,
tests/unit/core/fake_emulator.py) and the boot and privileged-app install,
which need an emulator and are replaced by seams.  Nothing here proves the
emulator behaves like the script; it proves the session sends the right
commands, in the right order, and handles the answers.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox.bundle import load_bundle
from sandbox.canary import CanarySpec, generate
from sandbox.clock.android_clock import AndroidClock
from sandbox.core.android_session import AndroidSession, trace_name
from sandbox.core.pipeline import open_session
from sandbox.core.report import syscall_summary
from sandbox.core.run_state import RunState
from sandbox.core.session import SessionContext
from sandbox.core.twin_session import TwinSession
from sandbox.device.android import EMULATOR_HOST_ALIAS, fence_command
from sandbox.device.emulator import AndroidHandle
from sandbox.errors import BundleError, PlantingError
from sandbox.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "device"))  # the scripted shells live there
from fake_android import FakeAlarm  # noqa: E402
from android_bundle import PACKAGE as PKG, fota_bundle  # noqa: E402
from fake_emulator import FakeEmulator  # noqa: E402

H = 3600.0
T0 = 1_700_000_000.0


@pytest.fixture()
def twin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "device-root"
    root.mkdir()
    monkeypatch.setenv("TWIN_ROOT", str(root))  # where the twin's content CLI keeps AOSP's databases
    return root


@pytest.fixture()
def bundle(tmp_path: Path) -> Any:
    with fota_bundle(tmp_path) as b:
        yield b


class Harness:
    def __init__(self, tmp_path: Path, fake: FakeEmulator) -> None:
        self.fake = fake
        self.state = RunState("a1", tmp_path / "out")
        self.ctx = SessionContext(Settings(), None, None, "a1", None, SimpleNamespace(ip="10.213.0.2"),  # type: ignore[arg-type]
                                  self.state)
        self.installs: list[tuple[list[str], Any]] = []
        self.routes = 0
        self.session = AndroidSession(self.ctx, boot=self._boot, install=self._install, route=self._route,
                                      clock_factory=self._clock)

    def _handle(self) -> AndroidHandle:
        container = SimpleNamespace(container_id="cid", ip="10.213.0.3", network=None)
        return AndroidHandle("a1", container, self.fake, 34, 12.5)  # type: ignore[arg-type]

    def _boot(self, ctx: SessionContext) -> AndroidHandle:
        return self._handle()

    def _route(self, ctx: SessionContext, handle: AndroidHandle) -> None:
        self.routes += 1

    def _install(self, ctx: SessionContext, handle: AndroidHandle, apps: list[Any], trust: Any) -> AndroidHandle:
        self.installs.append(([a.manifest.package for a in apps], trust))
        self.fake.install()  # the reboot: the app runs, the guest firewall is empty again
        return self._handle()

    def _clock(self, device: Any, config: Any, *, after_step: Any) -> AndroidClock:
        return AndroidClock(device, config, after_step=after_step, now=self.fake.now, sleep=self.fake.sleep)


def _canaries() -> Any:
    return generate(CanarySpec(seed=3, analysis_id="a1", contacts=2, sms=3, calls=2))


def test_open_session_picks_the_profile(tmp_path: Path) -> None:
    h = Harness(tmp_path, FakeEmulator(host_time=T0))
    assert isinstance(open_session("android", h.ctx), AndroidSession)
    assert isinstance(open_session("twin", h.ctx), TwinSession)
    with pytest.raises(BundleError):
        open_session("ios", h.ctx)


def test_boot_routes_and_fences_the_emulator_host(tmp_path: Path) -> None:
    h = Harness(tmp_path, FakeEmulator(host_time=T0))
    info = h.session.boot()
    assert (info.container_id, info.device_ip, info.boot_seconds) == ("cid", "10.213.0.3", 12.5)
    assert h.routes == 1
    assert fence_command() in h.fake.commands and EMULATOR_HOST_ALIAS in fence_command()
    argv = shlex.split(fence_command())
    assert argv[argv.index("--uid-owner") - 1:][:3] == ["!", "--uid-owner", "0"]  # only root (adbd) may go there
    h.session.boot()  # the rule is checked (-C) before it is inserted: never twice
    assert h.fake.commands.count(fence_command()) == 1 and len(h.fake.iptables) == 1


def test_plant_sets_write_sms_first_and_reads_everything_back(tmp_path: Path, twin_root: Path) -> None:
    h = Harness(tmp_path, FakeEmulator(host_time=T0))
    h.session.boot()
    canaries = _canaries()
    report = h.session.plant(canaries)
    assert (report.contacts, report.sms, report.calls) == (2, 3, 2)
    assert h.fake.dropped_sms == 0
    first_appops = next(i for i, c in enumerate(h.fake.commands) if c.startswith("appops set"))
    first_sms = next(i for i, c in enumerate(h.fake.commands) if "content://sms" in c)
    assert first_appops < first_sms


def test_without_the_app_op_android_drops_sms_and_read_back_says_so(tmp_path: Path, twin_root: Path) -> None:
    from sandbox.core.planting import plant

    fake = FakeEmulator(host_time=T0)
    with pytest.raises(PlantingError, match="appops get com.android.shell WRITE_SMS"):
        plant(fake, _canaries())  # type: ignore[arg-type]  # the twin's path: no appops step
    assert fake.dropped_sms == 3


def test_firmware_clock_and_traces_end_to_end(tmp_path: Path, twin_root: Path, bundle: Any) -> None:
    fake = FakeEmulator(host_time=T0, package=PKG)
    h = Harness(tmp_path, fake)
    h.session.boot()
    h.session.install_ca(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    h.session.plant(_canaries())
    start = float(int(T0))
    clock = h.session.start_firmware(bundle, start, 80.0)

    # the apps and the CA go in together (one reboot); the fence is back after it
    assert h.installs[0][0] == [PKG] and h.installs[0][1].api == 34
    assert len(fake.iptables) == 1
    # the clock is under control before the firmware's first process is traced
    assert fake.settings["auto_time"] == "0"
    set_time = next(i for i, c in enumerate(fake.commands) if c.startswith("cmd alarm set-time"))
    first_trace = next(i for i, c in enumerate(fake.commands) if c.startswith("nohup strace"))
    assert set_time < first_trace
    assert [p["name"] for p in h.state.services] == [PKG]

    # an RTC alarm 72 device hours out fires; the process it starts is traced after that step
    fake.alarms.append(FakeAlarm(PKG, int((start + 72 * H) * 1000), tag=f"*walarm*:{PKG}.UPLOAD"))
    firmware_start = clock.device_now()
    reached = clock.run_until(74.0, since=firmware_start)
    assert reached == pytest.approx(74.0)
    assert any(tag.endswith(".UPLOAD") for tag, _ in fake.fired)
    names = [s["name"] for s in h.state.services]
    assert names == [PKG, f"{PKG}:upload"]
    assert [e["process"] for e in h.state.timeline if e["event"] == "process_start"] == names

    status = h.session.service_status()
    assert {r["process"] for r in status} == set(names) and all(r["running"] for r in status)
    assert {r["name"] for r in status} == {trace_name(p) for p in h.session._attacher.attached.values()}  # type: ignore[union-attr]

    h.session.stop_firmware()
    assert f"am force-stop {PKG}" in fake.commands
    assert not fake.tracers  # every tracer detached or ended with its process
    assert h.state.mapping is not None and len(h.state.mapping.segments) >= 12  # >= 72 h / 6 h steps
    assert h.state.health["android"]["clock_steps"] == len(h.state.mapping.segments)

    h.session.collect(tmp_path / "syscalls", tmp_path / "logs")
    traces = sorted(p.name for p in (tmp_path / "syscalls").glob("*.strace"))
    assert traces == sorted(f"{trace_name(p)}.strace" for p in h.session._attacher.attached.values())  # type: ignore[union-attr]
    assert (tmp_path / "logs" / "logcat.txt").read_text().strip()

    # the traces are stamped in device time; the report maps them back to host time
    assert h.session.trace_clock == "device"
    summary = syscall_summary(tmp_path / "syscalls", h.state.mapping.to_host)
    conns = summary.connections()
    assert len(conns) == 2
    device_times = sorted(h.state.mapping.to_device(c.first_ts) for c in conns)
    # the upload process was attached just after the step past the 72 h alarm
    assert device_times[-1] - start == pytest.approx(72 * H, abs=120)
    assert device_times[0] - start < 60  # the main process, traced at the start


def test_an_android_bundle_without_apps_is_refused(tmp_path: Path, twin_root: Path) -> None:
    src = tmp_path / "fw"
    src.mkdir()
    (src / "firmware.toml").write_text('[firmware]\nname = "x"\nversion = "1"\nprofile = "android"\n')
    b = load_bundle(src, Settings().bundle_limits, tmp_path / "work")
    h = Harness(tmp_path, FakeEmulator(host_time=T0))
    h.session.boot()
    try:
        with pytest.raises(Exception, match="lists no \\[\\[apps\\]\\]"):
            h.session.start_firmware(b, T0, 80.0)
    finally:
        b.cleanup()
    assert h.installs == []  # nothing installed, no reboot spent
