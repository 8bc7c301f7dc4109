"""PID 1 of the device twin.

Android's init brings up properties, the providers' storage and adbd, then
announces ``sys.boot_completed=1``.  This does the same for the twin, and as
PID 1 it also reaps every orphan (firmware services are started by ``hpctl``
and reparented here) and shuts everything down on SIGTERM.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import paths, props

ADBD_PORT = int(os.environ.get("HONEYPHONE_ADBD_PORT", "5555"))
SERVICES_RUN_DIR = "/run/honeyphone/services"
PROVIDER_PACKAGES = ("com.android.providers.contacts", "com.android.providers.telephony")


def log(msg: str) -> None:
    print(f"[init {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), uid, gid)


def prepare_storage() -> None:
    """Create the providers' databases, owned by system like on Android."""
    from . import providers  # imported here: init must start even if a provider is broken

    providers.init_databases()
    try:
        system = pwd.getpwnam("system")
    except KeyError:  # running outside the image (tests)
        return
    for pkg in PROVIDER_PACKAGES:
        pkg_dir = paths.under(f"{paths.USER_DATA}/{pkg}")
        if pkg_dir.exists():
            _chown_tree(pkg_dir, system.pw_uid, system.pw_gid)
            os.chmod(pkg_dir, 0o751)


def ensure_data_layout() -> None:
    """Recreate the image's /data layout: /data is a fresh tmpfs per container
    (size-limited scratch), which hides what the image had there."""
    for d, mode in ((paths.USER_DATA, 0o755), ("/data/local/tmp", 0o1777), ("/data/system", 0o755),
                    ("/data/honeyphone", 0o755)):
        p = paths.under(d)
        p.mkdir(parents=True, exist_ok=True)
        os.chmod(p, mode)
    link = paths.under("/data/data")
    if not link.is_symlink() and not link.exists():
        link.symlink_to("user/0")  # relative: also right under TWIN_ROOT


def record_service_exits(done: list[tuple[int, int]]) -> None:
    """For each reaped firmware service (its pid file names it), write
    ``<name>.exit`` next to the pid file: how it ended, for ``hpctl status``.
    Services are strace processes, so this is how the host learns that a
    tracer was killed."""
    if not done:
        return
    run_dir = paths.under(SERVICES_RUN_DIR)
    try:
        pidfiles = {int(p.read_text(encoding="ascii")): p for p in run_dir.glob("*.pid")}
    except (OSError, ValueError):
        return
    for pid, status in done:
        pidfile = pidfiles.get(pid)
        if pidfile is None:
            continue
        rec: dict[str, object] = {"pid": pid, "ts": time.time()}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                rec["signal"] = signal.Signals(sig).name
            except ValueError:
                rec["signal"] = str(sig)
        else:
            rec["code"] = os.WEXITSTATUS(status)
        try:
            pidfile.with_suffix(".exit").write_text(json.dumps(rec), encoding="utf-8")
        except OSError:
            pass


def set_boot_props() -> None:
    serial = os.environ.get("HONEYPHONE_SERIAL") or socket.gethostname()
    for name, value in (("ro.serialno", serial), ("ro.boot.serialno", serial)):
        try:
            props.set_prop(name, value)
        except props.PropError:
            pass  # already set by a previous boot of this container
    props.set_prop("sys.boot_completed", "0")
    props.set_prop("init.svc.adbd", "starting")


def configure_dns(resolv_conf: str = "/etc/resolv.conf") -> None:
    """Use the analysis' fakenet as the only resolver when ``HONEYPHONE_DNS`` names it.

    Docker points resolv.conf at its embedded resolver; the host passes the
    fakenet's address instead so name lookups are answered (and logged) there.
    resolv.conf is a bind mount, so it is rewritten in place, not replaced.
    """
    server = os.environ.get("HONEYPHONE_DNS", "").strip()
    if not server:
        return
    try:
        ipaddress.IPv4Address(server)
    except ValueError:
        log(f"ignoring HONEYPHONE_DNS={server!r}: not an IPv4 address")
        return
    try:
        with open(resolv_conf, "w", encoding="ascii") as f:
            f.write(f"nameserver {server}\noptions timeout:2 attempts:2\n")
    except OSError as exc:
        log(f"cannot write {resolv_conf}: {exc}")


ADBD_PID_FILE = "/run/honeyphone/adbd.pid"


def start_adbd() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "twinrt.adbd", "--host", "0.0.0.0", "--port", str(ADBD_PORT)],
        stdin=subprocess.DEVNULL,
    )
    # The clock controller tells the host's adb commands (busy) from firmware by this.
    try:
        pid_file = paths.under(ADBD_PID_FILE)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(proc.pid), encoding="ascii")
    except OSError as exc:
        log(f"cannot record adbd's pid: {exc}")
    return proc


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def reap() -> list[tuple[int, int]]:
    """Collect every exited child; returns (pid, status) pairs."""
    done: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def stop_services() -> None:
    subprocess.run([sys.executable, "-m", "twinrt.hpctl", "stop"], check=False)


def stop_services_in_process() -> None:
    """``hpctl stop`` without starting a process: on SIGUSR1 from the host
    (``docker kill --signal USR1``), which sends it when ``docker exec``
    cannot start one because firmware has used up the pids limit."""
    from . import hpctl

    try:
        hpctl.stop()
    except Exception as exc:  # keep running: the host sees the services still listed
        log(f"stopping services failed: {exc!r}")


def main() -> int:
    stopping = False
    rebooting = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    def on_hup(signum: int, frame: object) -> None:
        nonlocal rebooting
        rebooting = True

    stop_requested = False

    def on_usr1(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGUSR1, on_usr1)
    t0 = time.monotonic()
    try:
        ensure_data_layout()
    except OSError as exc:
        log(f"cannot prepare /data: {exc}")
    configure_dns()
    set_boot_props()
    try:
        prepare_storage()
    except Exception as exc:  # keep booting: adb must stay reachable to diagnose
        log(f"storage preparation failed: {exc!r}")
        props.set_prop("sys.init.storage_error", type(exc).__name__)
    adbd = start_adbd()
    if wait_port(ADBD_PORT, 30.0):
        props.set_prop("init.svc.adbd", "running")
        props.set_prop("sys.boot_completed", "1")
        props.set_prop("dev.bootcomplete", "1")
        log(f"boot completed in {time.monotonic() - t0:.2f}s")
    else:
        log("adbd did not come up")
    adbd_down = False
    while not stopping:
        if rebooting:
            # `adb reboot` / `reboot`: services stop, adb drops, the device boots again.
            rebooting = False
            log("reboot requested")
            props.set_prop("sys.boot_completed", "0")
            stop_services()
            adbd.terminate()
            adbd.wait()
            adbd = start_adbd()
            if wait_port(ADBD_PORT, 30.0):
                props.set_prop("sys.boot_completed", "1")
                log("rebooted")
        if stop_requested:
            stop_requested = False
            log("stopping services (SIGUSR1 from the host)")
            stop_services_in_process()
        done = reap()
        record_service_exits(done)
        if any(pid == adbd.pid for pid, _ in done):
            log("adbd exited; restarting")
            adbd_down = True
        if adbd_down:
            try:  # firmware may have used up the pids limit: retry, never die
                adbd = start_adbd()
                adbd_down = False
            except OSError as exc:
                log(f"cannot restart adbd yet: {exc}")
        time.sleep(0.1)
    log("shutting down")
    stop_services()
    adbd.terminate()
    try:
        adbd.wait(timeout=3)
    except subprocess.TimeoutExpired:
        adbd.kill()
    reap()
    return 0


if __name__ == "__main__":
    sys.exit(main())
