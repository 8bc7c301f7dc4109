"""Twin service control: start, stop and list firmware services.

The host writes ``/system/etc/honeyphone/services.json`` (over adb sync) with
fully built argv (strace and clock wrappers included), then runs
``hpctl start``.  Keeping the policy on the host means the twin only executes,
and the host's strace parser always matches the strace command line used.

Each service runs in its own session so it can be signalled as a group; its
pid is recorded under ``/run/honeyphone/services``.  When hpctl exits the
services are reparented to the twin's init, which reaps them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import clockd, paths

SERVICES_JSON = "/system/etc/honeyphone/services.json"
RUN_DIR = "/run/honeyphone/services"
OOM_SCORE_ADJ = "1000"


def _run_dir() -> Path:
    d = paths.under(RUN_DIR)
    d.mkdir(parents=True, exist_ok=True)
    return d


def load_specs() -> list[dict[str, object]]:
    data = json.loads(paths.under(SERVICES_JSON).read_text(encoding="utf-8"))
    services = data.get("services", [])
    if not isinstance(services, list):
        raise ValueError("services.json: 'services' must be a list")
    return services


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def start_clock(clock: dict[str, object]) -> dict[str, str]:
    """Start the device clock controller; returns the env that joins its clock.

    The controller itself runs on real time (no LD_PRELOAD), as root, and
    outlives this command (its own session; init reaps it)."""
    env_file = paths.under(clockd.CLOCK_ENV)
    env_file.unlink(missing_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/system/bin:/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", "/opt/honeyphone"),
        "TZ": "UTC",
    }
    if "TWIN_ROOT" in os.environ:  # tests outside the image
        env["TWIN_ROOT"] = os.environ["TWIN_ROOT"]
    log_path = paths.under("/data/honeyphone/logs/clock.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as logf:  # never the caller's stdout: adb shell would wait on it
        proc = subprocess.Popen(
            [sys.executable, "-m", "twinrt.clockd", json.dumps(clock)],
            env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
        )
    (_run_dir() / "clock.pid").write_text(str(proc.pid), encoding="ascii")
    deadline = time.monotonic() + 10
    while not env_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("device clock did not start")
        time.sleep(0.01)
    joined = dict(
        line.split("=", 1) for line in env_file.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    # Every adb shell joins the device clock too, so `date` prints device time.
    shell_env = paths.under(paths.SHELL_ENV_FILE)
    shell_env.parent.mkdir(parents=True, exist_ok=True)
    shell_env.write_text("".join(f"{k}={v}\n" for k, v in joined.items()), encoding="utf-8")
    return joined


def start() -> list[dict[str, object]]:
    started: list[dict[str, object]] = []
    for stale in _run_dir().glob("*.exit"):
        stale.unlink(missing_ok=True)
    data = json.loads(paths.under(SERVICES_JSON).read_text(encoding="utf-8"))
    clock_env: dict[str, str] = {}
    if isinstance(data.get("clock"), dict):
        clock_env = start_clock(data["clock"])
    for spec in load_specs():
        name = str(spec["name"])
        argv = [str(a) for a in spec["argv"]]  # type: ignore[attr-defined]
        env = {"PATH": os.environ.get("PATH", "/system/bin:/usr/bin:/bin")}
        env.update(clock_env)
        env.update({str(k): str(v) for k, v in dict(spec.get("env", {})).items()})  # type: ignore[call-overload]
        if spec.get("tracer_argc") and "LD_PRELOAD" in env:
            # The tracer itself stays on real time (its timestamps are mapped on
            # the host); the traced service gets the preload through strace -E.
            n = int(spec["tracer_argc"])  # type: ignore[call-overload]
            argv = argv[:n] + ["-E", f"LD_PRELOAD={env.pop('LD_PRELOAD')}"] + argv[n:]
        log_path = paths.under(str(spec.get("log", f"/data/honeyphone/logs/{name}.log")))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        uid = spec.get("drop_to_uid")
        gid = spec.get("drop_to_gid", uid)

        def demote(uid: object = uid, gid: object = gid) -> None:
            # Firmware is the out-of-memory killer's first choice, never
            # init, adbd or the clock (raising one's own score needs no privilege).
            try:
                with open("/proc/self/oom_score_adj", "w", encoding="ascii") as f:
                    f.write(OOM_SCORE_ADJ)
            except OSError:
                pass
            if uid is not None:
                os.setgroups([])
                os.setgid(int(gid))  # type: ignore[arg-type]
                os.setuid(int(uid))  # type: ignore[arg-type]

        with open(log_path, "ab") as logf:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=str(spec.get("cwd", "/")),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=demote,
            )
        (_run_dir() / f"{name}.pid").write_text(str(proc.pid), encoding="ascii")
        started.append({"name": name, "pid": proc.pid, "started_at": time.time()})
    if clock_env:
        # Every service is running: from now on a device with nothing left
        # to wait for may be carried to the horizon (clockd).
        paths.under(clockd.CLOCK_ARMED).write_text("1", encoding="ascii")
    return started


def status() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for pidfile in sorted(_run_dir().glob("*.pid")):
        if pidfile.stem == "clock":
            continue
        pid = int(pidfile.read_text(encoding="ascii"))
        row: dict[str, object] = {"name": pidfile.stem, "pid": pid, "running": _alive(pid)}
        exit_file = pidfile.with_suffix(".exit")
        if exit_file.exists():  # written by init when it reaped the service
            try:
                row["exit"] = json.loads(exit_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
        out.append(row)
    return out


def stop(grace: float = 3.0) -> None:
    pids = [int(p.read_text(encoding="ascii")) for p in _run_dir().glob("*.pid")]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
    for pidfile in [*_run_dir().glob("*.pid"), *_run_dir().glob("*.exit")]:
        pidfile.unlink(missing_ok=True)
    paths.under(paths.SHELL_ENV_FILE).unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("start", "stop", "status"):
        print("usage: hpctl start|stop|status", file=sys.stderr)
        return 2
    if argv[0] == "start":
        print(json.dumps(start()))
    elif argv[0] == "stop":
        stop()
    else:
        print(json.dumps(status()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
