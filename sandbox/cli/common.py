"""What every command module of the CLI shares: the error exit code, the
stderr console, turning gRPC failures into explained errors, the options
and client of the commands that talk to a farm, the scenario options and
building an image before it is needed."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from ..model import Scenario
from ..errors import HoneyphoneError
from ..settings import Settings

if TYPE_CHECKING:
    from ..api.channel import ClientSecurity
    from ..api.client import SandboxClient

EXIT_ERROR = 2

CommandFn = Callable[[argparse.Namespace, Settings], int]


def console() -> Console:
    return Console(stderr=True)


def rpc_errors(fn: CommandFn) -> CommandFn:
    """Turn gRPC failures into ``HoneyphoneError`` so ``main`` prints them with a fix."""

    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace, settings: Settings) -> int:
        import grpc

        try:
            return fn(args, settings)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()
            # the address actually tried: the option, else the default the client used
            server = getattr(args, "server", None) or getattr(args, "orchestrator", None) or settings.fleet.listen
            fix = None
            if code == grpc.StatusCode.UNAVAILABLE:
                fix = f"is `honeyphone serve` running at {server}? (--server HOST:PORT)"
            elif code == grpc.StatusCode.UNAUTHENTICATED:
                fix = "pass --token-file with the server's token"
            raise HoneyphoneError(f"{code.name.lower()}: {details}", fix=fix) from None

    return wrapper


def client_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server connection")
    g.add_argument("--server", metavar="ADDR", help="orchestrator address (default 127.0.0.1:50551)")
    g.add_argument("--token-file", type=Path, help="file holding the bearer token")
    g.add_argument("--tls-ca", type=Path, help="CA certificate to verify the server (implies TLS)")
    g.add_argument("--tls", action="store_true", help="use TLS with the system trust store")


def client_security(args: argparse.Namespace) -> ClientSecurity:
    from ..api.channel import ClientSecurity

    return ClientSecurity.from_files(args.token_file, args.tls_ca, args.tls)


def sandbox_client(args: argparse.Namespace, settings: Settings) -> SandboxClient:
    from ..api.channel import open_channel
    from ..api.client import SandboxClient

    return SandboxClient(open_channel(args.server or settings.fleet.listen, client_security(args)))


def add_scenario_options(p: argparse.ArgumentParser, *, hours_help: str, seed_help: str,
                         defaults: Scenario | None = None) -> None:
    """``--hours --seed --contacts --sms --calls --locale``; without ``defaults``
    they stay None and the server's scenario defaults apply."""
    d = defaults
    p.add_argument("--hours", type=float, default=None if d is None else d.hours, help=hours_help)
    p.add_argument("--seed", type=int, default=None if d is None else d.seed, help=seed_help)
    p.add_argument("--contacts", type=int, default=None if d is None else d.contacts)
    p.add_argument("--sms", type=int, default=None if d is None else d.sms)
    p.add_argument("--calls", type=int, default=None if d is None else d.calls)
    p.add_argument("--locale", default=None if d is None else d.locale)


def ensure_image(settings: Settings, name: str, con: Console) -> None:
    """Build (or find cached) image ``name`` with a spinner on ``con``."""
    from ..containers.engine import docker_client
    from ..images import ImageBuilder
    from .progress import spinner

    with spinner(con, f"image {name}") as update:
        ImageBuilder(settings, docker_client(settings), progress=update).build(name)
