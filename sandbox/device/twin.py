"""Booting and tearing down a device twin for one analysis.

Boot = labelled internal network -> twin container -> ``adb connect`` ->
``sys.boot_completed=1``.  Any failure along the way removes what was
created before the error propagates, so a failed boot leaves nothing.
"""

from __future__ import annotations

import secrets
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors

from ..containers.cleanup import CleanupReport, ExtraCleanup, cleanup
from ..containers.device_container import DeviceContainer, start_twin
from ..containers.network import DeviceNetwork
from ..network.bridge import create_device_network
from ..errors import DeviceError
from ..network.archive import read_file
from ..settings import Settings
from .adb_server import AdbServer
from .boot import abandon_boot
from .device import Device


def new_analysis_id() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True)
class TwinHandle:
    analysis_id: str
    container: DeviceContainer
    device: Device
    boot_seconds: float

    @property
    def network(self) -> DeviceNetwork:
        return self.container.network


def boot_twin(
    settings: Settings,
    client: docker.DockerClient,
    server: AdbServer,
    analysis_id: str,
    *,
    network: DeviceNetwork | None = None,
    environment: dict[str, str] | None = None,
) -> TwinHandle:
    t0 = time.monotonic()
    container: DeviceContainer | None = None
    try:
        net = network or create_device_network(client, settings, analysis_id)
        container = start_twin(client, settings, analysis_id, net, environment=environment)
        device = Device.connect(server, container.serial, settings, timeout=settings.boot_timeout_s)
        device.wait_for_boot()
        return TwinHandle(analysis_id, container, device, time.monotonic() - t0)
    except BaseException as exc:
        abandon_boot(settings, client, server, analysis_id, container, exc, "twin")


def shutdown_twin(
    settings: Settings,
    client: docker.DockerClient,
    handle: TwinHandle,
    extra: tuple[ExtraCleanup, ...] = (),
) -> CleanupReport:
    handle.device.disconnect()
    return cleanup(client, settings, handle.analysis_id, extra)


def file_reader(client: docker.DockerClient, handle: TwinHandle) -> Callable[[str], bytes]:
    """Reads a file of the twin's own file system through the engine
    (``get_archive``): no process starts in the device, so reading the clock's
    state does not count as an adb command (busy) and works at the pids limit."""
    container_id = handle.container.container_id

    def read(path: str) -> bytes:
        # The engine stats a file before it streams it: a file replaced in
        # between (the clock's state is rewritten with os.replace) gives a
        # torn tar stream.  Such a read is simply taken again.
        for _ in range(4):
            try:
                return read_file(client, container_id, path)
            except tarfile.ReadError:
                time.sleep(0.01)
        return read_file(client, container_id, path)

    return read


def hpctl_via_engine(client: docker.DockerClient, handle: TwinHandle, command: str) -> str:
    """Run ``hpctl status|stop`` in the twin through the engine (``docker exec``), not adb.

    ``docker exec`` needs no fork inside the container and hpctl forks
    nothing, so this usually works when firmware has used up the pids limit
    or starved adbd.  Usually: runc must still add one process to the pids
    cgroup, and at the limit it can fail ("read init-p: connection reset by
    peer", exit 126).  So ``stop`` falls back to :func:`stop_by_signal`,
    which needs no new process in the container.
    """
    if command not in ("status", "stop"):
        raise ValueError(f"hpctl {command!r} is not run through the engine")
    try:
        return _exec_hpctl(client, handle, command)
    except DeviceError as exc:
        if command == "stop":
            return stop_by_signal(client, handle, why=exc.message)
        first = exc
    # status: runc fails only while the pids cgroup is exactly full; a pid
    # is freed whenever a fork-bomb child exits, so a few more tries usually
    # get through.  (What it reads could be fetched without a process in the
    # container -- get_archive of the pid and exit files -- not done yet.)
    for _ in range(STATUS_RETRIES):
        time.sleep(0.25)
        try:
            return _exec_hpctl(client, handle, command)
        except DeviceError:
            pass
    raise first


STATUS_RETRIES = 20


def _exec_hpctl(client: docker.DockerClient, handle: TwinHandle, command: str) -> str:
    try:
        res = client.containers.get(handle.container.container_id).exec_run(
            ["/system/bin/hpctl", command], user="root", demux=True)
    except docker.errors.DockerException as exc:
        raise DeviceError(f"hpctl {command} in {handle.container.name} failed: {exc}") from exc
    out, err = res.output if isinstance(res.output, tuple) else (res.output, b"")
    if res.exit_code != 0:
        raise DeviceError(f"hpctl {command} in {handle.container.name} exited with {res.exit_code}: "
                          f"{(err or out or b'').decode('utf-8', 'replace').strip()[:500]}")
    return (out or b"").decode("utf-8", "replace")


#: The twin's init stops every service in-process on this signal (twinrt/init.py).
STOP_SIGNAL = "SIGUSR1"


def stop_by_signal(client: docker.DockerClient, handle: TwinHandle, *, why: str = "", patience: float = 60.0) -> str:
    """Stop the firmware services without a new process in the container:
    the engine signals the twin's init (``docker kill --signal USR1``), which
    kills the services' process groups itself.  Done when ``hpctl status``
    lists no service (stopping frees the pids, so ``docker exec`` works
    again); ``patience`` only bounds a twin that never gets there."""
    name = handle.container.name
    try:
        client.containers.get(handle.container.container_id).kill(signal=STOP_SIGNAL)
    except docker.errors.DockerException as exc:
        raise DeviceError(f"stopping the services of {name} failed: {why}; and signalling its init: {exc}") from exc
    deadline = time.monotonic() + patience
    last = why
    while True:
        try:
            if _exec_hpctl(client, handle, "status").strip() in ("", "[]"):
                return ""
            last = "services still listed"
        except DeviceError as exc:
            last = exc.message
        if time.monotonic() > deadline:
            raise DeviceError(f"stopping the services of {name} by signal did not finish: {last} (first: {why})")
        time.sleep(0.2)
