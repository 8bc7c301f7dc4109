"""Bringing up a contained device environment: the one sequence the pipeline
and ``honeyphone device up`` share.

Internal network, host firewall rules, fakenet, optional capture, then the
device (its only way out the fakenet) and the fakenet's CA in its trust
store.  ``bring_up`` is that sequence, once; what differs between its users
joins in through ``BringUpHooks``: the pipeline registers the fakenet, the
capture and the device with its watchdog, reports progress, checks for
cancellation and records the boot in the run's state; ``device up`` does
none of that.

``bring_up`` removes nothing when a step fails: it fills in an
``Environment`` step by step and the caller, who owns the analysis, cleans
up what exists.  The pipeline must ask its watchdog *why* a step failed
(a container that died, a full disk) before anything is removed;
``bring_up_twin`` (for ``device up``) removes everything at once, all or
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker

from ..containers.cleanup import CleanupReport, cleanup
from ..containers.network import DeviceNetwork
from ..device.adb_server import AdbServer
from ..device.twin import TwinHandle
from ..errors import DeviceError
from ..network import containment
from ..network.bridge import create_device_network
from ..network.capture import Capture
from ..network.fakenet import FakenetHandle, fetch_ca_pem, start_fakenet, wait_ready
from ..settings import Settings
from .run_state import RunState
from .session import BootInfo, DeviceSession, SessionContext
from .twin_session import TwinSession

ADB_PORT = 5555

_log = logging.getLogger(__name__)

OpenSession = Callable[[SessionContext], DeviceSession]


def control_channel_filter(network: DeviceNetwork) -> str:
    """BPF that keeps the host's own adb session (the planting commands) out of the pcap."""
    return f"not (host {network.gateway} and tcp port {ADB_PORT})"


class BringUpHooks:
    """Where a caller joins the bring-up; every hook does nothing here.

    The ``watch*`` hooks are the watchdog registration: called as soon as
    the thing to watch exists, so a death during the rest of the bring-up is
    named.  The others mark the points between steps where the pipeline
    checks for cancellation and records progress.
    """

    def watch(self, role: str, container_id: str) -> None:
        """A container of the environment (``fakenet``, ``device``) was started."""

    def watch_capture(self, capture: Capture) -> None:
        """The packet capture was started."""

    def fakenet_ready(self) -> None:
        """The fakenet answers; the device has not been created yet."""

    def booting(self, session: DeviceSession) -> None:
        """The device is about to boot (the slow step)."""

    def booted(self, environment: Environment, booted: BootInfo) -> None:
        """The device is up and fenced, before its CA is installed."""

    def ca_installed(self) -> None:
        """The device trusts the fakenet's CA: the environment is complete."""


@dataclass
class Environment:
    """A contained environment as ``bring_up`` fills it in, step by step.

    Mutable and partly empty on purpose: when a step fails, the fields set
    so far are what the caller has to stop (the capture) or close (the
    session) before removing the analysis' containers, networks and rules.
    """

    analysis_id: str
    network: DeviceNetwork | None = None
    fakenet: FakenetHandle | None = None
    capture: Capture | None = None
    session: DeviceSession | None = None
    booted: BootInfo | None = None

    def release(self) -> None:
        """Stop the capture and close the session, whichever exist: what must
        happen before the analysis' containers, networks and rules are
        removed.  Called while a failure or the run's end is already being
        handled, so a capture that will not stop is logged (its pcap may lack
        its end), not raised."""
        if self.capture is not None:
            try:
                self.capture.stop()
            except Exception as exc:
                _log.warning("analysis %s: stopping the packet capture failed: %s: %s",
                             self.analysis_id, type(exc).__name__, exc)
            self.capture = None
        if self.session is not None:
            self.session.close()

    def ready(self) -> tuple[DeviceNetwork, FakenetHandle, DeviceSession, BootInfo]:
        """The parts of a complete environment; ``DeviceError`` if bring-up did not finish."""
        if self.network is None or self.fakenet is None or self.session is None or self.booted is None:
            raise DeviceError(f"the environment of {self.analysis_id} is not up")
        return self.network, self.fakenet, self.session, self.booted


def bring_up(
    env: Environment,
    settings: Settings,
    client: docker.DockerClient,
    server: AdbServer,
    state: RunState,
    open_session: OpenSession,
    *,
    pcap: Path | None = None,
    hooks: BringUpHooks | None = None,
) -> Environment:
    """Network, firewall rules, fakenet, capture (when ``pcap``), device, CA; in that order.

    Fills ``env`` as it goes and returns it; on failure it propagates the
    error and leaves the clean-up to the caller (see the module docstring).
    """
    hooks = hooks or BringUpHooks()
    aid = env.analysis_id
    network = env.network = create_device_network(client, settings, aid)
    containment.install_rules(aid, network.bridge)
    fakenet = env.fakenet = start_fakenet(client, settings, aid, network)
    hooks.watch("fakenet", fakenet.container_id)
    if pcap is not None:
        env.capture = Capture(network.bridge, pcap, bpf=control_channel_filter(network)).start()
        hooks.watch_capture(env.capture)
    wait_ready(client, fakenet)
    hooks.fakenet_ready()
    session = env.session = open_session(SessionContext(settings, client, server, aid, network, fakenet, state))
    hooks.booting(session)
    booted = env.booted = session.boot()
    hooks.watch("device", booted.container_id)
    hooks.booted(env, booted)
    session.install_ca(fetch_ca_pem(client, fakenet))
    hooks.ca_installed()
    return env


def bring_up_twin(
    settings: Settings,
    client: docker.DockerClient,
    server: AdbServer,
    analysis_id: str,
    *,
    pcap: Path | None = None,
) -> tuple[Environment, TwinHandle]:
    """The twin in its contained environment, for ``device up``: all or nothing.

    A failure at any step stops the capture and removes what the earlier
    steps created (by the analysis label and rule comment) before the error
    propagates.  Nothing is watched: the device is left running for a person.
    """
    env = Environment(analysis_id)
    # A session needs a run's scratchpad; booting the twin and installing its CA write nothing to it.
    state = RunState(analysis_id, settings.data_dir / "tmp" / "device-up" / analysis_id)
    try:
        bring_up(env, settings, client, server, state, TwinSession, pcap=pcap)
        session = env.session
        assert isinstance(session, TwinSession)
        return env, session.handle
    except BaseException:
        env.release()
        tear_down(settings, client, analysis_id)
        raise


def tear_down(settings: Settings, client: docker.DockerClient, analysis_id: str) -> CleanupReport:
    """Remove every container, network and firewall rule of the analysis."""
    return cleanup(client, settings, analysis_id, extra=(containment.remove_rules,))


__all__ = ["BringUpHooks", "Environment", "bring_up", "bring_up_twin", "control_channel_filter", "tear_down"]
