"""The ``honeyphone`` command line.

Commands are thin: they parse arguments, build one ``Settings``, call the
library and render results.  Every error is printed with what went wrong and
how to fix it; the exit code for an error is 2.

One module per command group: ``analyze``, ``device``, ``images``, ``fleet``
(serve, worker, submit, status, list, cancel, report, artifacts) and
``campaign``; ``common`` holds what they share, ``progress`` the progress
displays and ``farm`` the embedded farm ``campaign`` starts when none runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import HoneyphoneError
from ..settings import Settings
from .common import EXIT_ERROR

__all__ = ["EXIT_ERROR", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from .analyze import add_analyze_command
    from .campaign import add_campaign_command
    from .device import add_device_commands
    from .fleet import add_fleet_commands
    from .images import add_images_commands

    p = argparse.ArgumentParser(prog="honeyphone", description="Catch phone firmware stealing personal data.")
    p.add_argument("--data-dir", type=Path, help="where analyses, artifacts and the store live")
    sub = p.add_subparsers(dest="command", required=True)
    add_images_commands(sub)
    add_analyze_command(sub)
    add_device_commands(sub)
    add_fleet_commands(sub)
    add_campaign_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    settings = Settings.from_env(**overrides)
    try:
        return int(args.func(args, settings))
    except HoneyphoneError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"fix:   {exc.fix}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
