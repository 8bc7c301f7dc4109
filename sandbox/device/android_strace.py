"""strace attached to the firmware apps' processes on the emulator.

Android apps are forked by zygote, so they cannot be started under strace
like the twin's services; instead, after boot and again after every clock
step, each new process of a firmware package gets ``strace -f -p PID``
(root shell, in the background, one trace file per process).  Attaching
after the fork misses only what the process did before; the trace file
format is the one the twin produces, minus ``--seccomp-bpf`` (strace refuses
it with ``-p``) and, on strace builds without it, ``-Y``.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import DeviceError
from ..monitor.strace_cmd import strace_attach_argv
from .android import Proc, package_processes
from .device import Device

TRACE_DIR = "/data/local/tmp/honeyphone/trace"


def trace_file(proc: Proc) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in proc.name)
    return f"{TRACE_DIR}/{safe}-{proc.pid}.strace"


def attach_script(proc: Proc, comm: bool = True) -> str:
    """Start strace detached from the adb shell; prints its pid."""
    out = trace_file(proc)
    argv = strace_attach_argv([proc.pid], out, comm=comm)
    return f"nohup {shlex.join(argv)} </dev/null >/dev/null 2>{shlex.quote(out + '.err')} & echo $!"


@dataclass
class StraceAttacher:
    packages: tuple[str, ...]
    attached: dict[int, str] = field(default_factory=dict)  # traced pid -> trace file
    tracers: dict[int, int] = field(default_factory=dict)  # traced pid -> strace's pid
    names: dict[int, str] = field(default_factory=dict)  # traced pid -> process name
    comm: bool = True

    def attach_new(self, device: Device) -> list[Proc]:
        """Attach to every process of the packages not traced yet; returns them."""
        device.shell(["mkdir", "-p", TRACE_DIR]).check()
        new = [p for p in package_processes(device, self.packages) if p.pid not in self.attached]
        for proc in new:
            self._attach(device, proc)
        return new

    def _attach(self, device: Device, proc: Proc) -> None:
        for comm in ((True, False) if self.comm else (False,)):
            res = device.shell(attach_script(proc, comm)).check()
            tracer = res.text.strip().splitlines()[-1] if res.text.strip() else ""
            time.sleep(0.5)
            alive = tracer.isdigit() and device.shell(["kill", "-0", tracer]).exit_code == 0
            if alive:
                self.comm = comm
                self.attached[proc.pid] = trace_file(proc)
                self.tracers[proc.pid] = int(tracer)
                self.names[proc.pid] = proc.name
                return
            err = device.shell(["cat", trace_file(proc) + ".err"]).text
            if not comm or "-Y" not in err and "invalid option" not in err and "unrecognized" not in err:
                raise DeviceError(f"strace could not attach to {proc.name} ({proc.pid}): {err.strip()[:300]}")

    def trace_files(self) -> Sequence[str]:
        return list(self.attached.values())

    def detach_all(self, device: Device, wait_s: float = 5.0) -> None:
        """SIGINT every tracer (strace detaches and flushes its file), then wait for them to end."""
        live = [str(t) for t in self.tracers.values()]
        if not live:
            return
        device.shell(shlex.join(["kill", "-INT", *live]) + " 2>/dev/null; true", timeout=30)
        deadline = time.monotonic() + wait_s
        while live and time.monotonic() < deadline:
            live = [t for t in live if device.shell(["kill", "-0", t]).exit_code == 0]
            if live:
                time.sleep(0.5)


__all__ = ["StraceAttacher", "TRACE_DIR", "attach_script", "trace_file"]
