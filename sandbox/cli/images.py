"""``honeyphone images build``: the device, fakenet and farm images."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..settings import Settings
from .common import console


def cmd_images_build(args: argparse.Namespace, settings: Settings) -> int:
    from ..containers.engine import docker_client
    from ..images import ImageBuilder
    from .progress import spinner

    con = console()
    if "android" in args.names:
        # The SDK check fails fast (no Docker, no network needed) when nothing is there.
        from ..images.android_sdk import find_sdk, no_sdk_error

        if not args.download and find_sdk(args.api, os.environ, args.sdk) is None:
            raise no_sdk_error(args.api, os.environ)
    client = docker_client(settings)
    for name in args.names:
        with spinner(con, f"image {name}") as update:
            result = ImageBuilder(settings, client, progress=update).build(
                name, force=args.force, api=args.api, sdk=args.sdk, download=args.download)
        state = "cached" if result.cached else f"built in {result.seconds:.1f}s"
        print(f"{result.tag} {result.image_id[:19]} ({state}, base {result.base})")
    return 0


def add_images_commands(sub: Any) -> None:
    images = sub.add_parser("images", help="build the device, fakenet and farm images").add_subparsers(dest="images_cmd", required=True)
    b = images.add_parser("build", help="build images from emulator_images/ and deploy/images/ (cached when unchanged)")
    b.add_argument("names", nargs="+", choices=["twin", "fakenet", "android", "orchestrator", "worker", "postgres"])
    b.add_argument("--api", type=int, default=34, choices=[30, 33, 34, 35],
                   help="android: API level of the system image (default 34)")
    b.add_argument("--sdk", type=Path, help="android: an SDK root holding emulator/ and the system image "
                   "(default $HONEYPHONE_ANDROID_SDK, $HONEYPHONE_ANDROID_SDK_ZIP, $ANDROID_SDK_ROOT)")
    b.add_argument("--download", action="store_true",
                   help="android: let the Docker build fetch the SDK from Google's repository (needs internet)")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    b.set_defaults(func=cmd_images_build)
