"""Packet capture of an analysis bridge, from the host.

tcpdump runs on the host on the analysis' bridge interface, not inside a
container: it sees every frame between the device and the fakenet (the
bridge is put in promiscuous mode, so forwarded frames reach it too), the
device cannot see or kill it, and it survives the device dying.  ``-U``
writes each packet as it arrives; stopping is SIGTERM to our own tcpdump's
PID followed by a wait, so the pcap is flushed and closed and opens in
Wireshark, tshark or dpkt.  Immediate mode makes every packet reach the
file before tcpdump sees the SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import EnvironmentProblem, HoneyphoneError

_COUNT_RE = re.compile(r"^(\d+) packets? (captured|received by filter|dropped by kernel)", re.M)


class CaptureError(HoneyphoneError):
    """tcpdump did not start or did not stop cleanly."""


@dataclass(frozen=True)
class CaptureResult:
    path: Path
    returncode: int
    captured: int | None
    dropped_by_kernel: int | None
    stderr: str


def parse_counts(stderr: str) -> tuple[int | None, int | None]:
    """(packets captured, packets dropped by kernel) from tcpdump's exit summary."""
    counts = {kind: int(n) for n, kind in _COUNT_RE.findall(stderr)}
    return counts.get("captured"), counts.get("dropped by kernel")


CAPTURE_BUFFER_KIB = 32 * 1024  # tcpdump -B takes KiB


def tcpdump_argv(binary: str, iface: str, path: Path, bpf: str | None = None) -> list[str]:
    # --immediate-mode: without it libpcap hands packets over in ring-buffer blocks
    # (up to a second late) and a SIGTERM loses the block in flight.
    # -B: a 32 MiB kernel buffer (libpcap's default is 2 MiB).  A burst while
    # tcpdump waits for a CPU on a loaded host overflowed the default and the
    # kernel dropped packets, which (rightly) makes detection incomplete.
    argv = [binary, "-i", iface, "-U", "--immediate-mode", "-B", str(CAPTURE_BUFFER_KIB),
            "-w", str(path), "-n", "-s", "0", "-Z", "root"]
    if bpf:
        argv.append(bpf)
    return argv


_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
               b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}


def trim_pcap(path: Path) -> int:
    """Truncate a classic pcap after its last complete record; returns the
    bytes removed (0 when it was whole, missing or not a classic pcap)."""
    try:
        with open(path, "r+b") as f:
            header = f.read(24)
            if len(header) < 24 or header[:4] not in _PCAP_MAGIC:
                return 0
            order = _PCAP_MAGIC[header[:4]]
            good = 24
            while True:
                rec = f.read(16)
                if len(rec) == 0:
                    return 0
                if len(rec) < 16:
                    break
                incl = struct.unpack(order + "IIII", rec)[2]
                if incl > 0x4000000:  # larger than any snaplen: garbage
                    break
                f.seek(incl, 1)
                if f.tell() > os.fstat(f.fileno()).st_size:
                    break
                good = f.tell()
            size = os.fstat(f.fileno()).st_size
            f.truncate(good)
            return size - good
    except OSError:
        return 0


class Capture:
    """One tcpdump process; ``start`` returns once tcpdump is listening."""

    def __init__(self, iface: str, path: Path, *, bpf: str | None = None, tcpdump: str = "tcpdump"):
        self.iface = iface
        self.path = path
        self.bpf = bpf
        self._tcpdump = tcpdump
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: list[str] = []
        self._listening = threading.Event()
        self._reader: threading.Thread | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def stopped(self) -> bool:
        """``stop`` was called (by the pipeline or its watchdog)."""
        return self._stopping

    def died(self) -> int | None:
        """tcpdump's return code when it exited without ``stop`` asking it to, else None."""
        if self._proc is None or self._stopping:
            return None
        return self._proc.poll()

    def stderr_tail(self, limit: int = 300) -> str:
        """tcpdump's last messages (e.g. why it died), on one line."""
        lines = [ln.strip() for ln in self._stderr if ln.strip() and not _COUNT_RE.match(ln.strip())]
        return " / ".join(lines[-3:])[-limit:]

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            self._stderr.append(line)
            if "listening on" in line:
                self._listening.set()

    def start(self, timeout: float = 15.0) -> "Capture":
        if self._proc is not None:
            raise CaptureError("capture already started")
        binary = shutil.which(self._tcpdump)
        if binary is None:
            raise EnvironmentProblem("tcpdump is not installed on the host", fix="apt-get install -y tcpdump")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(tcpdump_argv(binary, self.iface, self.path, self.bpf),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._proc = proc
        self._reader = threading.Thread(target=self._drain, args=(proc,), daemon=True, name=f"tcpdump-{self.iface}")
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise CaptureError(f"tcpdump on {self.iface} did not start: {''.join(self._stderr).strip()}")
        return self

    def stop(self, timeout: float = 15.0) -> CaptureResult:
        """SIGTERM our tcpdump and wait, so the pcap ends on a complete record."""
        proc = self._proc
        if proc is None:
            raise CaptureError("capture was never started")
        self._stopping = True
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        stderr = "".join(self._stderr)
        captured, dropped = parse_counts(stderr)
        # A tcpdump killed (or out of disk) mid-record leaves a torn last
        # record: cut it so the pcap stays valid for every reader.
        trimmed = trim_pcap(self.path) if proc.returncode != 0 else 0
        if trimmed:
            stderr += f"honeyphone: removed a torn last record ({trimmed} bytes)\n"
        return CaptureResult(self.path, int(proc.returncode), captured, dropped, stderr)

    def __enter__(self) -> "Capture":
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.stop()
