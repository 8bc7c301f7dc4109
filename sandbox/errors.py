"""Exception hierarchy shared by every layer.

Each error says what went wrong and, where there is one, how to fix it, so the
CLI and the gRPC servicers can show it to a person unchanged.
"""

from __future__ import annotations


class HoneyphoneError(Exception):
    """Base class for every error Honeyphone raises on purpose."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message} (fix: {fix})")


class BundleError(HoneyphoneError):
    """A firmware bundle is malformed or hostile; nothing from it was installed."""

    def __init__(self, message: str, *, path: str | None = None, fix: str | None = None) -> None:
        self.path = path
        full = message if path is None else f"{path}: {message}"
        super().__init__(full, fix=fix)


class DeviceError(HoneyphoneError):
    """A device did not behave: it would not boot, a command failed, it died."""


class PlantingError(DeviceError):
    """A canary plant did not land on the device (read-back mismatch)."""


class ImageError(HoneyphoneError):
    """A device or fakenet image could not be built or found."""


class EnvironmentProblem(HoneyphoneError):
    """The host lacks something Honeyphone needs (Docker, adb, KVM, root)."""
