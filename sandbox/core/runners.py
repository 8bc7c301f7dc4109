"""Choosing a worker's runner and cleaning up after crashed workers.

Library code shared by the worker CLI, the embedded farm of campaigns and the
pytest plugin; it lives here so none of them has to import the CLI.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import cast

from ..errors import EnvironmentProblem
from ..settings import Settings
from ..model import Runner

_log = logging.getLogger(__name__)


def load_runner(spec: str | None, settings: Settings) -> Runner:
    """``module:function`` names a factory ``(Settings) -> Runner``; None: the real pipeline."""
    if spec is None:
        try:
            pipeline = importlib.import_module("sandbox.core.pipeline")
        except ImportError as exc:
            raise EnvironmentProblem(
                f"the analysis pipeline is not available ({exc})", fix="update Honeyphone, or pass --runner MODULE:FUNCTION"
            ) from None
        return cast(Runner, pipeline.make_runner(settings))
    module, sep, func = spec.partition(":")
    if not sep:
        raise EnvironmentProblem(f"--runner {spec!r} is not MODULE:FUNCTION")
    try:
        factory = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise EnvironmentProblem(f"--runner {spec}: {exc}") from None
    return cast(Runner, factory(settings))


def default_cleanup(settings: Settings, everything: bool = False) -> Callable[[list[str]], None]:
    """Remove the leftovers (containers, networks, firewall rules) of analyses a crashed worker left behind.

    By default only the analyses named (those of dead workers sharing this data
    dir); with ``everything`` every Honeyphone container and network on the
    host, which is only safe when nothing else on the host uses Honeyphone.
    """

    def run(analysis_ids: list[str]) -> None:
        if not analysis_ids and not everything:
            return
        from ..containers.cleanup import cleanup
        from ..containers.engine import docker_client
        from ..errors import EnvironmentProblem
        from ..network.containment import remove_rules

        try:
            client = docker_client(settings)
        except EnvironmentProblem:
            _log.info("Docker does not answer; no container leftovers to clean up")
            return
        for target in [None] if everything else analysis_ids:
            report = cleanup(client, settings, target, extra=(remove_rules,))
            for item in (*report.containers, *report.networks, *report.other):
                _log.info("removed leftover %s", item)
            for err in report.errors:
                _log.warning("cleanup: %s", err)

    return run
