"""Run a REAL strace with our argv and check attribution end to end.

The traced program opens a file named contacts2.db, connects to a loopback
listener this test owns, sends bytes, forks a child that does the same with
a different byte count, then runs a fake ``content`` CLI.  Loopback only.
Skipped when strace is missing (``apt-get install -y strace``) or ptrace is
not permitted here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sandbox.monitor.strace_cmd import strace_argv
from sandbox.monitor.summary import summarize_file

STRACE = shutil.which("strace")

PROGRAM = r"""
import os, socket, subprocess, sys

tmp, port = sys.argv[1], int(sys.argv[2])

def leak(nbytes):
    with open(os.path.join(tmp, "contacts2.db"), "rb") as f:
        f.read()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x" * nbytes)
    s.close()

leak(1111)
pid = os.fork()
if pid == 0:
    leak(2222)
    os._exit(7)
os.waitpid(pid, 0)
subprocess.run([os.path.join(tmp, "content"), "query", "--uri", "content://sms/inbox"],
               check=True)
"""


def _ptrace_allowed() -> bool:
    if STRACE is None:
        return False
    try:
        done = subprocess.run([STRACE, "-f", "-o", os.devnull, "true"],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


pytestmark = pytest.mark.skipif(
    not _ptrace_allowed(), reason="needs strace (apt-get install -y strace) and ptrace"
)


class _Listener:
    """Loopback TCP server counting the bytes of each connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[int] = []
        self.client_ports: dict[int, int] = {}  # bytes received -> the client's port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                total = 0
                while chunk := conn.recv(65536):
                    total += len(chunk)
                self.received.append(total)
                self.client_ports[total] = peer[1]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_real_strace_attribution(tmp_path: Path) -> None:
    assert STRACE is not None
    (tmp_path / "contacts2.db").write_bytes(b"SQLite format 3\0")
    content = tmp_path / "content"
    content.write_text("#!/bin/sh\nexit 0\n")
    content.chmod(0o755)
    prog = tmp_path / "leaky.py"
    prog.write_text(PROGRAM)
    trace = tmp_path / "trace.txt"

    listener = _Listener()
    try:
        argv = strace_argv([sys.executable, str(prog), str(tmp_path), str(listener.port)],
                           str(trace), strace=STRACE)
        done = subprocess.run(argv, capture_output=True, timeout=120)
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert sorted(listener.received) == [1111, 2222]

    summary = summarize_file(str(trace))
    stats = summary.parse_stats
    assert stats is not None
    assert stats.unparseable == 0, stats.unparseable_samples
    assert stats.orphaned == 0

    (parent,) = [p for p in summary.processes if p.exec_seen and str(prog) in p.argv]
    (child,) = [p for p in summary.processes if p.parent == parent.pid and p.exit_code == 7]
    (runner,) = [p for p in summary.processes if p.exe == str(content)]

    assert child.exec_seen is False and child.exe == parent.exe
    assert child.ancestry[0].pid == parent.pid
    assert runner.ancestry[0].pid == parent.pid
    assert runner.argv == (str(content), "query", "--uri", "content://sms/inbox")

    readers = {(r.process.pid, r.store) for r in summary.store_readers()}
    assert {(parent.pid, "contacts"), (child.pid, "contacts"), (runner.pid, "sms")} <= readers
    assert all(r.first_ts > 1e9 for r in summary.store_readers())  # host epoch seconds

    def dest(proc_pid: int) -> tuple[int, int, float]:
        rows = [r for r in summary.connections()
                if r.process.pid == proc_pid and r.address == "127.0.0.1"
                and r.port == listener.port]
        assert len(rows) == 1
        return rows[0].bytes_sent, rows[0].port or 0, rows[0].first_ts

    p_bytes, _, p_ts = dest(parent.pid)
    c_bytes, _, c_ts = dest(child.pid)
    assert (p_bytes, c_bytes) == (1111, 2222)
    assert p_ts < c_ts

    found = summary.who_connected("127.0.0.1", listener.port, c_ts, 0.05)
    assert found is not None and found.pid == child.pid
    found = summary.who_connected("127.0.0.1", listener.port, p_ts, 0.05)
    assert found is not None and found.pid == parent.pid

    # The client port the listener saw is the local port strace decorated the
    # sends with: it names the process even at the other one's time.
    wide = c_ts - p_ts + 1.0
    for nbytes, proc, other_ts in ((1111, parent, c_ts), (2222, child, p_ts)):
        port = listener.client_ports[nbytes]
        (d,) = [d for d in proc.destinations if d.port == listener.port]
        assert [p for p, _ in d.local_ports] == [port]
        found = summary.who_connected("127.0.0.1", listener.port, other_ts, wide, local_port=port)
        assert found is not None and found.pid == proc.pid
