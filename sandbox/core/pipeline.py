"""The one-shot analysis: boot, plant, start firmware, fast-forward, capture,
tear down, detect, report.

Every resource is created under the analysis id and removed in ``finally``
(containers, networks, firewall rules, capture process, temp files), so an
exception at any step leaves nothing behind.  The outcome always says why an
analysis could not complete.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import docker

from ..bundle import Bundle, load_bundle
from ..canary import CanarySpec, generate
from ..canary.serialize import to_json as canaries_to_json
from ..containers.cleanup import cleanup
from ..containers.emulator_container import android_preflight
from ..containers.engine import docker_client
from ..device.adb_server import AdbServer
from ..errors import BundleError, HoneyphoneError
from ..network import containment
from ..network.capture import Capture
from ..network.fakenet import collect_logs, stop_fakenet
from ..settings import Settings
from ..model import (
    AnalysisOutcome,
    AnalysisRequest,
    CancelToken,
    ProgressEvent,
    ProgressFn,
    Runner,
    Stage,
)
from .android_session import AndroidSession
from .environment import BringUpHooks, Environment, bring_up
from .health import limits_view, sample_container
from .run_state import RunState
from .session import BootInfo, DeviceSession, SessionContext
from .twin_session import TwinSession
from .watchdog import Watchdog

HOUR = 3600.0
PROFILES = ("twin", "android")


class Cancelled(HoneyphoneError):
    pass


def open_session(profile: str, ctx: SessionContext) -> DeviceSession:
    """The device session for a bundle's profile (both driven over ADB)."""
    if profile == "android":
        return AndroidSession(ctx)
    if profile == "twin":
        return TwinSession(ctx)
    raise BundleError(f"unknown device profile {profile!r}", path="firmware.profile")


def _check_cancel(cancel: CancelToken) -> None:
    if cancel.cancelled:
        raise Cancelled("the analysis was cancelled")


class _AnalysisHooks(BringUpHooks):
    """The pipeline's part of the shared bring-up: the watchdog watches what
    starts, cancellation is checked between steps, the boot is reported and
    recorded in the run's state."""

    def __init__(self, settings: Settings, dog: Watchdog, progress: ProgressFn, cancel: CancelToken,
                 state: RunState) -> None:
        self._settings, self._dog, self._progress, self._cancel, self._state = settings, dog, progress, cancel, state

    def watch(self, role: str, container_id: str) -> None:
        self._dog.watch(role, container_id)

    def watch_capture(self, capture: Capture) -> None:
        self._dog.watch_capture(capture)

    def fakenet_ready(self) -> None:
        _check_cancel(self._cancel)

    def booting(self, session: DeviceSession) -> None:
        self._state.trace_clock = session.trace_clock
        self._progress(ProgressEvent(Stage.BOOTING, "booting the device twin" if session.kind == "twin"
                                     else "booting the Android emulator"))

    def booted(self, environment: Environment, booted: BootInfo) -> None:
        network, fakenet = environment.network, environment.fakenet
        assert network is not None and fakenet is not None  # bring_up sets them before booting
        self._state.health["network"] = {"subnet": network.subnet, "pool": self._settings.subnet_pool,
                                         "gateway": network.gateway, "fakenet_ip": fakenet.ip,
                                         "device_ip": booted.device_ip}
        self._state.boot_seconds = booted.boot_seconds
        self._state.mark("boot")

    def ca_installed(self) -> None:
        _check_cancel(self._cancel)


def run_analysis(
    settings: Settings,
    request: AnalysisRequest,
    progress: ProgressFn,
    cancel: CancelToken,
    artifacts_dir: Path,
    *,
    client: docker.DockerClient | None = None,
) -> AnalysisOutcome:
    """Run one analysis end to end on the local Docker engine."""
    from .report import build_report  # detection is heavy; import when needed

    aid = request.analysis_id
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    state = RunState(aid, artifacts_dir)
    scenario = request.scenario
    bundle: Bundle | None = None
    client = client or docker_client(settings)
    server = AdbServer.from_settings(settings)
    env = Environment(aid)  # filled in by bring_up; what exists is stopped and removed in `finally`
    # issue 9: watches the containers, tcpdump and the artifact disk; names what died
    dog = Watchdog(client, settings, artifacts_dir)
    progress = dog.track(progress)
    try:
        workdir = settings.data_dir / "tmp" / "bundles"
        workdir.mkdir(parents=True, exist_ok=True)
        bundle = load_bundle(request.bundle_path, settings.bundle_limits, workdir)
        profile = bundle.manifest.firmware.profile
        if profile == "android":
            android_preflight(settings, client)  # KVM and an image, before anything is created
        canaries = generate(CanarySpec(
            seed=scenario.seed, analysis_id=aid, contacts=scenario.contacts, sms=scenario.sms,
            calls=scenario.calls, locale=scenario.locale,
        ))
        (artifacts_dir / "canaries.json").write_text(canaries_to_json(canaries), encoding="utf-8")

        progress(ProgressEvent(Stage.BOOTING, "creating network and fakenet"))
        # A re-leased analysis (its earlier worker died) may find that attempt's
        # network, containers and rules still here: they would collide by name.
        cleanup(client, settings, aid, extra=(containment.remove_rules,))

        def session_for(ctx: SessionContext) -> DeviceSession:
            return open_session(profile, ctx)

        bring_up(env, settings, client, server, state, session_for, pcap=artifacts_dir / "capture.pcap",
                 hooks=_AnalysisHooks(settings, dog, progress, cancel, state))
        _, fakenet, session, booted = env.ready()
        capture = env.capture
        assert capture is not None  # bring_up starts it when given a pcap path

        progress(ProgressEvent(Stage.PLANTING, f"planting {len(canaries.contacts)} contacts, "
                               f"{len(canaries.sms)} SMS, {len(canaries.calls)} calls"))
        report = session.plant(canaries)
        state.plant_seconds = report.seconds
        state.mark("planting", contacts=report.contacts, sms=report.sms, calls=report.calls)
        _check_cancel(cancel)

        # Marked when launched: on the twin the clock may jump as soon as the services sleep.
        launched = time.time()
        clock = session.start_firmware(bundle, float(int(launched)), scenario.hours)
        # issue 9: the baselines the health section and the rootfs limit count from
        dog.baseline()
        device_cpus = (settings.android_nano_cpus if profile == "android" else settings.device_limits.nano_cpus) / 1e9
        state.health.update(limits=limits_view(settings), device_cpus=device_cpus,
                            device_start=sample_container(client, booted.container_id, session.health_mounts))

        def on_progress(hours: float) -> None:
            progress(ProgressEvent(Stage.FAST_FORWARDING, f"{hours:.1f}/{scenario.hours:g} device hours", hours))

        # The horizon counts from the clock's origin: on the twin its start
        # (the firmware may have jumped the clock already), on the emulator now.
        firmware_start = clock.origin()
        state.mark("firmware_started", host_ts=launched)
        reached = clock.run_until(scenario.hours, on_progress,
                                          should_stop=lambda: cancel.cancelled or dog.tripped(),
                                          since=firmware_start)
        _check_cancel(cancel)
        dog.check()  # issue 9: a death or an overused limit during fast-forward fails here, by name
        # issue 9: sample health while the device runs (its cgroup goes with it), then stop the
        # firmware (on the twin through the engine, not adb: that works even when it used up the pids limit)
        services = session.service_status()
        sessions = session.cpu_sessions(services)
        state.health.update(services=services, fakenet=sample_container(client, fakenet.container_id),
                            device=sample_container(client, booted.container_id, session.health_mounts, sessions))
        session.stop_firmware()  # also refreshes state.mapping (the firmware's own `date` jumps, clock steps)
        state.mark("horizon", device_hours=reached)

        progress(ProgressEvent(Stage.ANALYZING, "collecting artifacts"))
        session.collect(artifacts_dir / "syscalls", artifacts_dir / "service-logs")
        pcap_path = capture.path
        try:
            capture_result = capture.stop()
            stop_error = None
        except Exception as exc:  # reported (health.capture, an incident, no clean verdict): the pcap may lack its end
            capture_result, stop_error = None, f"{type(exc).__name__}: {exc}"
        env.capture = None
        state.health["capture"] = {
            "packets": capture_result.captured if capture_result else None,
            "dropped_by_kernel": capture_result.dropped_by_kernel if capture_result else None,
            "bytes": pcap_path.stat().st_size if pcap_path.exists() else 0,
            "stopped_at_limit": any(n.kind == "capture_limit" for n in dog.notes),
            "stop_error": stop_error,
        }
        state.health["notes"] = [{"kind": n.kind, "message": n.message} for n in dog.notes]
        dog.unwatch("fakenet")
        stop_fakenet(client, fakenet)
        logs = collect_logs(client, fakenet, artifacts_dir)
        progress(ProgressEvent(Stage.ANALYZING, "detecting leaks"))
        rep = build_report(
            settings=settings, request=request, bundle=bundle, canaries=canaries, state=state,
            fakenet_dir=logs.dir, pcap=artifacts_dir / "capture.pcap", device_ip=booted.device_ip,
            syscalls_dir=artifacts_dir / "syscalls",
        )
        (artifacts_dir / "report.json").write_text(json.dumps(rep.report, indent=2), encoding="utf-8")
        progress(ProgressEvent(Stage.FINISHED, f"verdict: {rep.verdict.value}"))
        return AnalysisOutcome(aid, rep.verdict, rep.report, _artifact_map(artifacts_dir))
    except Cancelled as exc:
        progress(ProgressEvent(Stage.CANCELLED, str(exc)))
        return AnalysisOutcome(aid, None, {}, _artifact_map(artifacts_dir), error=str(exc))
    except HoneyphoneError as exc:
        msg = dog.explain(exc) or exc.message + (f" (fix: {exc.fix})" if exc.fix else "")
        progress(ProgressEvent(Stage.FAILED, msg))
        return AnalysisOutcome(aid, None, {}, _artifact_map(artifacts_dir), error=msg,
                               retryable=not isinstance(exc, BundleError)  # a bad bundle stays bad
                               and getattr(dog.fault or exc, "retryable", True))  # so does a disk filler
    except Exception as exc:  # issue 9: a full artifact disk or a silent engine, by name; else a bug
        explained = dog.explain(exc)
        if explained is None:
            raise
        progress(ProgressEvent(Stage.FAILED, explained))
        return AnalysisOutcome(aid, None, {}, _artifact_map(artifacts_dir), error=explained, retryable=True)
    finally:
        env.release()  # a capture still running here means the analysis already failed
        _cleanup_until_done(client, settings, aid)
        if bundle is not None:
            bundle.cleanup()


def _cleanup_until_done(client: docker.DockerClient, settings: Settings, aid: str, patience: float = 90.0) -> None:
    """Remove the analysis' containers, networks and rules; while the engine
    is restarting, keep trying (the firewall rules go at the first try)."""
    deadline = time.monotonic() + patience
    while cleanup(client, settings, aid, extra=(containment.remove_rules,)).engine_down:
        if time.monotonic() > deadline:
            return
        time.sleep(2.0)


def _artifact_map(artifacts_dir: Path) -> dict[str, Path]:
    names = {
        "pcap": "capture.pcap", "flows": "fakenet/flows.jsonl", "dns": "fakenet/dns.jsonl",
        "report.json": "report.json", "report.html": "report.html", "canaries": "canaries.json",
        "clock-jumps": "clock-jumps.jsonl",
    }
    out = {k: artifacts_dir / v for k, v in names.items() if (artifacts_dir / v).exists()}
    sys_dir = artifacts_dir / "syscalls"
    if sys_dir.is_dir():
        for p in sorted(sys_dir.glob("*.strace")):
            out[f"syscalls.{p.name}"] = p  # artifact names are flat: [A-Za-z0-9._-]
    logs_dir = artifacts_dir / "service-logs"
    if logs_dir.is_dir():
        for p in sorted(logs_dir.glob("*.log")):
            name = f"service-logs.{p.name}"  # what the firmware's services printed
            if len(name) <= 64:  # the orchestrator's limit for a name; the report lists every log anyway
                out[name] = p
    return out


def make_runner(settings: Settings) -> Runner:
    """The worker's default runner: a full local analysis per request."""

    def runner(request: AnalysisRequest, progress: ProgressFn, cancel: CancelToken) -> AnalysisOutcome:
        out = settings.data_dir / "worker-runs" / request.analysis_id
        if out.exists():
            shutil.rmtree(out)
        return replace(run_analysis(settings, request, progress, cancel, out), workdir=out)

    return runner
