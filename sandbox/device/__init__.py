"""The device layer: one ADB driver for the emulator and the twin."""

from .adb_server import AdbServer
from .device import Device, ShellResult

__all__ = ["AdbServer", "Device", "ShellResult"]
