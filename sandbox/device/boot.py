"""What a failed device boot leaves behind, removed in one place.

Both device kinds boot the same way (network, container, ``adb connect``,
readiness); when any step fails, the adb server must forget the serial (or it
keeps reconnecting), everything labelled with the analysis id goes, and the
error carries the container's log so the reason is visible.
"""

from __future__ import annotations

from typing import NoReturn

import docker

from ..containers.cleanup import cleanup
from ..containers.device_container import DeviceContainer, container_logs
from ..errors import DeviceError
from ..settings import Settings
from .adb_server import AdbServer


def abandon_boot(
    settings: Settings,
    client: docker.DockerClient,
    server: AdbServer,
    analysis_id: str,
    container: DeviceContainer | None,
    exc: BaseException,
    kind: str,
) -> NoReturn:
    """Clean up after a failed boot and re-raise ``exc`` (with the ``kind`` log attached)."""
    logs = container_logs(client, container.container_id) if container else ""
    if container is not None:
        server.disconnect(container.serial)
    cleanup(client, settings, analysis_id)
    if isinstance(exc, DeviceError) and logs:
        raise DeviceError(f"{exc.message}\n--- {kind} log ---\n{logs}", fix=exc.fix) from exc
    raise exc
