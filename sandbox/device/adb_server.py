"""The host's ``adb`` server, which every device connection goes through.

Honeyphone talks to devices only as adbutils -> the real adb server -> adbd,
for the emulator and the twin alike.  The server port comes from settings so
tests and parallel farms can run private servers.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass

import adbutils

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
        """Ask the server on our port to exit (only ever call this for a server you started)."""
        if self.is_running():
            subprocess.run([self._binary(), "-P", str(self.port), "kill-server"],
                           capture_output=True, timeout=30, check=False)

    def adb_argv(self, *args: str) -> list[str]:
        """An argv for the adb CLI against this server, for people and tests."""
        return [self._binary(), "-P", str(self.port), *args]

    def client(self) -> adbutils.AdbClient:
        self.ensure_running()
        return adbutils.AdbClient(host="127.0.0.1", port=self.port, socket_timeout=60)
