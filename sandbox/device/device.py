"""One ``Device`` for every device kind, over adbutils and the real adb server.

The emulator and the twin are driven by exactly this code; anything kind
specific (installing apps versus services, the clock) lives in modules that
take a ``Device``.  The constructor does no I/O: ``Device.connect`` does.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import adbutils

from ..errors import DeviceError
from ..settings import Settings
from . import content
from .adb_server import AdbServer


@dataclass(frozen=True)
class ShellResult:
    command: str
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def error_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def check(self) -> "ShellResult":
        if self.exit_code != 0:
            raise DeviceError(
                f"device command failed with exit code {self.exit_code}: {self.command}\n"
                f"{self.error_text.strip() or self.text.strip()}"
            )
        return self


def _content_failed(result: ShellResult) -> bool:
    """``content`` on some Android releases exits 0 after printing an error."""
    if result.exit_code != 0:
        return True
    merged = result.text + result.error_text
    return "[ERROR]" in merged or "Error while accessing provider" in merged or "Exception" in merged


class Device:
    """A device reachable over ADB at ``serial`` (``host:port``)."""

    def __init__(self, client: adbutils.AdbClient, serial: str, settings: Settings):
        self._client = client
        self.serial = serial
        self._settings = settings
        self._dev = client.device(serial)

    @classmethod
    def connect(cls, server: AdbServer, serial: str, settings: Settings, timeout: float = 30.0) -> "Device":
        """``adb connect`` until the server lists the device as ``device``.

        Any transport the server still holds for ``serial`` is dropped first:
        addresses are reused (each analysis' device sits at .3 of its subnet),
        and ``adb connect`` to an address it believes connected keeps the old
        transport, whose device may be gone ("device offline" later).
        """
        client = server.client()
        try:
            client.disconnect(serial)
        except (adbutils.AdbError, OSError, EOFError):
            pass  # nothing to drop, or no server yet: connect reports real problems
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = client.connect(serial, timeout=5)
            except (adbutils.AdbError, OSError, EOFError) as exc:
                last = str(exc)
            for info in client.list():
                if info.serial == serial and info.state == "device":
                    return cls(client, serial, settings)
            time.sleep(0.1)
        raise DeviceError(f"adb could not connect to {serial}: {last}", fix="check that the device container is running")

    def disconnect(self) -> None:
        try:
            self._client.disconnect(self.serial)
        except (adbutils.AdbError, OSError):
            pass

    # -- commands ------------------------------------------------------------

    def shell(self, command: str | Sequence[str], timeout: float | None = None) -> ShellResult:
        """Run a command with shell v2: stdout, stderr and exit code kept apart.

        A sequence is quoted with ``shlex.quote`` per argument; a string is
        passed to the device shell as written.
        """
        cmd = command if isinstance(command, str) else shlex.join(command)
        try:
            ret = self._dev.shell2(cmd, timeout=timeout or self._settings.command_timeout_s, encoding=None, v2=True)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise DeviceError(f"adb shell on {self.serial} failed: {exc}: {cmd}") from exc
        return ShellResult(cmd, ret.returncode, ret.stdout, ret.stderr)

    def service(self, name: str, timeout: float = 30.0) -> str:
        """Open a host-side adbd service (``root:``, ``remount:``, ``reboot:``) and read its reply.

        These are what ``adb root``/``adb remount``/``adb reboot`` send; adbd may
        drop the connection afterwards (it restarts for ``root:``), which is
        not an error here: callers reconnect.
        """
        if not name.endswith(":") and ":" not in name:
            raise ValueError(f"not an adb service name: {name!r}")
        try:
            with self._dev.open_transport(timeout=timeout) as conn:
                conn.send_command(name)
                conn.check_okay()
                return str(conn.read_until_close())
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise DeviceError(f"adb service {name} on {self.serial} failed: {exc}") from exc

    def push(self, local: Path, remote: str, mode: int = 0o644) -> None:
        try:
            self._dev.sync.push(str(local), remote, mode=mode)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise DeviceError(f"adb push {local} -> {self.serial}:{remote} failed: {exc}") from exc

    def push_bytes(self, data: bytes, remote: str, mode: int = 0o644) -> None:
        try:
            self._dev.sync.push(data, remote, mode=mode)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise DeviceError(f"adb push -> {self.serial}:{remote} failed: {exc}") from exc

    def pull(self, remote: str, local: Path) -> None:
        try:
            self._dev.sync.pull(remote, str(local))
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise DeviceError(f"adb pull {self.serial}:{remote} failed: {exc}") from exc

    def pull_bytes(self, remote: str) -> bytes:
        try:
            return bytes(self._dev.sync.read_bytes(remote))
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise DeviceError(f"adb pull {self.serial}:{remote} failed: {exc}") from exc

    def getprop(self, name: str) -> str:
        return self.shell(["getprop", name]).check().text.strip()

    def wait_for_boot(self, timeout: float | None = None) -> float:
        """Wait until ``sys.boot_completed`` is 1; returns the seconds waited."""
        limit = timeout if timeout is not None else self._settings.boot_timeout_s
        t0 = time.monotonic()
        last = ""
        while time.monotonic() - t0 < limit:
            try:
                last = self.shell(["getprop", "sys.boot_completed"], timeout=5).text.strip()
                if last == "1":
                    return time.monotonic() - t0
            except DeviceError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise DeviceError(f"{self.serial} did not finish booting in {limit:.0f}s (last: {last!r})")

    # -- content providers -----------------------------------------------------

    def content_insert(self, uri: str, values: Mapping[str, content.BindValue]) -> None:
        result = self.shell(content.insert_command(uri, values))
        if _content_failed(result):
            raise DeviceError(f"content insert into {uri} failed: {(result.error_text + result.text).strip()}")

    def content_query(
        self, uri: str, projection: Sequence[str], where: str | None = None, sort: str | None = None
    ) -> list[dict[str, str | None]]:
        result = self.shell(content.query_command(uri, projection, where, sort))
        if _content_failed(result):
            raise DeviceError(f"content query of {uri} failed: {(result.error_text + result.text).strip()}")
        return content.parse_query_output(result.text, projection)

    def content_delete(self, uri: str, where: str | None = None) -> None:
        result = self.shell(content.delete_command(uri, where))
        if _content_failed(result):
            raise DeviceError(f"content delete from {uri} failed: {(result.error_text + result.text).strip()}")
