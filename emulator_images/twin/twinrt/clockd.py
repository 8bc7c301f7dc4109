"""The twin's device clock anchor.

libfaketime (0.9.10, Debian bookworm) gives each process its own start-at
base unless ``FAKETIME_DONT_RESET=1`` is set and the process joins the shared
memory that the ``faketime`` wrapper created (``FAKETIME_SHARED``).  So
``hpctl`` starts this anchor under ``faketime -f "@START xRATE"``; the anchor
opens that shared state to every uid, publishes the environment that joins
the clock (``clock.env``, used for services and adb shells) and records pairs
of (real, device) time so the host can map its timestamps to device time.

Real time is read with a raw ``clock_gettime`` syscall, which libfaketime
does not intercept; device time with the intercepted libc call.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time
from pathlib import Path

from . import paths

CLOCK_ENV = "/run/honeyphone/clock.env"
CLOCK_JSON = "/run/honeyphone/clock.json"
CLOCK_SPEC = "/run/honeyphone/faketime.rc"
CLOCK_JUMPS = "/run/honeyphone/clock_jumps.jsonl"
SYS_clock_gettime = 228  # x86_64
JOIN_KEYS = ("LD_PRELOAD", "FAKETIME", "FAKETIME_SHARED", "FAKETIME_DONT_RESET", "FAKETIME_DONT_FAKE_MONOTONIC")


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def real_time() -> float:
    libc = ctypes.CDLL(None, use_errno=True)
    ts = _Timespec()
    if libc.syscall(SYS_clock_gettime, 0, ctypes.byref(ts)) != 0:
        raise OSError(ctypes.get_errno(), "clock_gettime")
    return ts.tv_sec + ts.tv_nsec / 1e9


def sample() -> tuple[float, float]:
    """A (real, device) pair read within microseconds of each other."""
    r1 = real_time()
    d = time.time()
    r2 = real_time()
    return (r1 + r2) / 2, d


def _open_shared_state() -> None:
    shared = os.environ.get("FAKETIME_SHARED", "")
    for name in shared.split():
        base = name.lstrip("/")
        for candidate in (Path("/dev/shm") / base, Path("/dev/shm") / f"sem.{base}"):
            if candidate.exists():
                os.chmod(candidate, 0o666)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main() -> int:
    if "FAKETIME_SHARED" not in os.environ:
        print("clockd: must run under the faketime wrapper", file=sys.stderr)
        return 2
    _open_shared_state()
    # Joiners read the spec from a file, not from FAKETIME, so that `date`
    # can move the device wall clock for every process at once (the shared
    # base stays; only the spec's start moves).  NO_CACHE makes a change
    # visible at once instead of after libfaketime's 10 s cache.
    spec_file = paths.under(CLOCK_SPEC)
    _write_atomic(spec_file, os.environ.get("FAKETIME", "") + "\n")
    env_lines = [f"{k}={os.environ[k]}" for k in JOIN_KEYS if k in os.environ and k != "FAKETIME"]
    env_lines += [f"FAKETIME_TIMESTAMP_FILE={CLOCK_SPEC}", "FAKETIME_NO_CACHE=1"]
    rate = float(os.environ.get("HONEYPHONE_CLOCK_RATE", "1"))
    samples = [sample()]
    state = {"rate": rate, "samples": samples, "env": dict(line.split("=", 1) for line in env_lines)}
    _write_atomic(paths.under(CLOCK_JSON), json.dumps(state))
    _write_atomic(paths.under(CLOCK_ENV), "\n".join(env_lines) + "\n")
    # Keep the shared state alive; refresh samples once per real second for drift checks.
    while True:
        libc_sleep_real(1.0)
        samples = (samples + [sample()])[-30:]
        state["samples"] = samples
        _write_atomic(paths.under(CLOCK_JSON), json.dumps(state))


def libc_sleep_real(seconds: float) -> None:
    """Sleep in real time: a raw nanosleep syscall, not libfaketime's scaled one."""
    libc = ctypes.CDLL(None, use_errno=True)
    ts = _Timespec(int(seconds), int((seconds % 1) * 1e9))
    libc.syscall(35, ctypes.byref(ts), None)  # SYS_nanosleep on x86_64


if __name__ == "__main__":
    sys.exit(main())
