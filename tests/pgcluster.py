"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, our own process.

``initdb`` into a fresh directory, then ``postgres`` on a free loopback port
(and a unix socket inside that directory), trust authentication, nothing
else.  PostgreSQL refuses to run as root, so when we are root (CI) the server
runs as the ``postgres`` user that Debian's package creates, started with
``subprocess.Popen(user=…)`` so the PID we hold is the postmaster itself:
stopping and restarting it (the fault tests) signals only that PID.

(tests/ is on sys.path through tests/conftest.py; benchmarks add it.)
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

SKIP_HINT = "scripts/setup-host.sh installs them (Debian package postgresql)"


def find_bin_dir() -> Path | None:
    """Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin, off PATH."""
    override = os.environ.get("HONEYPHONE_PG_BIN")
    if override:
        return Path(override) if (Path(override) / "initdb").exists() else None
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    if find_bin_dir() is None:
        return f"PostgreSQL server binaries (initdb, postgres) not found; {SKIP_HINT}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return f"running as root and there is no 'postgres' user to run the server as; {SKIP_HINT}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One server; ``start``/``stop`` may be called again (same data, same port)."""

    def __init__(self, bin_dir: Path | None = None, *, fsync: bool = False) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise RuntimeError(unavailable_reason() or "no PostgreSQL binaries")
        self.bin = found
        self.root = Path(tempfile.mkdtemp(prefix="honeyphone-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.root / "server.log"
        # fsync off is safe against a killed process (the page cache keeps the
        # writes), which is the only crash these tests cause; it spares the CPU.
        self._fsync = fsync
        self._user: tuple[int, int] | None = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self._user = (pw.pw_uid, pw.pw_gid)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-sync", "--no-instructions"])

    def _popen_kw(self) -> dict[str, object]:
        if self._user is None:
            return {}
        return {"user": self._user[0], "group": self._user[1], "extra_groups": []}

    def _run(self, argv: list[str]) -> None:
        subprocess.run(argv, check=True, capture_output=True, cwd=self.root, **self._popen_kw())  # type: ignore[call-overload]

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(  # type: ignore[call-overload]
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
             "-c", "listen_addresses=127.0.0.1", "-c", f"fsync={'on' if self._fsync else 'off'}",
             "-c", "max_connections=200", "-c", "shared_buffers=32MB"],
            stdout=out, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True, **self._popen_kw(),
        )
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.admin_dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """``fast`` (SIGINT: clean shutdown) or ``immediate`` (SIGQUIT: like a crash, WAL replay on start)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def new_database(self) -> str:
        """A fresh, empty database; returns its DSN."""
        name = "hp_" + secrets.token_hex(6)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # our own random name
        return self.dsn(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def running_server() -> Iterator[PgServer]:
    """A started server for a fixture to yield from (skips, saying why, without
    the binaries); destroyed when the fixture ends."""
    reason = unavailable_reason()
    if reason is not None:
        import pytest

        pytest.skip(reason)
    server = PgServer()
    server.start()
    yield server
    server.destroy()
