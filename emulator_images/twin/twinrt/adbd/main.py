"""Entry point of the daemon: ``python3 -m twinrt.adbd [--host H] [--port P] [-v]``.

Logging setup (one line per event on stderr, which init leaves to the
container's log), SIGTERM/SIGINT handling and the asyncio loop around
:meth:`Daemon.serve`; ``__main__`` runs :func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .services import Daemon

log = logging.getLogger("twinrt.adbd")

def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d adbd[%(process)d] %(levelname)s %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def _loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    exc = context.get("exception")
    log.error("event loop: %s", context.get("message"), exc_info=exc if isinstance(exc, BaseException) else None)


async def _amain(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_exception_handler)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await Daemon().serve(host, port, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m twinrt.adbd", description="ADB daemon of the device twin")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=5555, help="TCP port (default 5555; 0 picks a free one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        asyncio.run(_amain(args.host, args.port))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 1
    return 0
