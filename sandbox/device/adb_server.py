"""The host's ``adb`` server, which every device connection goes through.

Honeyphone talks to devices only as adbutils -> the real adb server -> adbd,
for the emulator and the twin alike.  The server port comes from settings so
tests and parallel farms can run private servers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass

import adbutils
import psutil

from ..errors import EnvironmentProblem
from ..settings import Settings


@dataclass(frozen=True)
class AdbServer:
    adb_path: str
    port: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "AdbServer":
        return cls(settings.adb_path, settings.adb_server_port)

    def _binary(self) -> str:
        found = shutil.which(self.adb_path)
        if found is None:
            raise EnvironmentProblem(
                f"the adb binary ({self.adb_path}) is not installed",
                fix="apt-get install -y adb",
            )
        return found

    def is_running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def ensure_running(self) -> None:
        """Start the server on our port unless one already answers there."""
        if self.is_running():
            return
        proc = subprocess.run(
            [self._binary(), "-P", str(self.port), "start-server"],
            capture_output=True, text=True, timeout=30,
        )
        if proc.returncode != 0 or not self.is_running():
            raise EnvironmentProblem(
                f"adb server did not start on port {self.port}: {proc.stderr.strip()}",
                fix=f"check that nothing else holds port {self.port}",
            )

    def kill(self) -> None:
        """Stop the server on our port (only ever call this for a server you started).

        ``adb kill-server`` can hang while the server is busy reconnecting to
        devices that are gone; then the adb process holding our port is
        terminated by its PID.
        """
        if not self.is_running():
            return
        try:
            subprocess.run([self._binary(), "-P", str(self.port), "kill-server"],
                           capture_output=True, timeout=10, check=False)
        except subprocess.TimeoutExpired:
            pass
        if self.is_running():
            for pid in self._listener_pids():
                try:
                    proc = psutil.Process(pid)
                    if os.path.basename(proc.exe()) == "adb":
                        proc.terminate()
                        proc.wait(timeout=5)
                except (psutil.Error, OSError):
                    pass

    def _listener_pids(self) -> list[int]:
        pids = []
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == self.port and conn.pid:
                pids.append(conn.pid)
        return pids

    def disconnect(self, serial: str) -> None:
        """Forget a TCP device so the server stops reconnecting to it."""
        try:
            self.client().disconnect(serial)
        except (adbutils.AdbError, OSError):
            pass

    def adb_argv(self, *args: str) -> list[str]:
        """An argv for the adb CLI against this server, for people and tests."""
        return [self._binary(), "-P", str(self.port), *args]

    def client(self) -> adbutils.AdbClient:
        self.ensure_running()
        return adbutils.AdbClient(host="127.0.0.1", port=self.port, socket_timeout=60)
