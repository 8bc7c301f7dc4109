"""The environment of an adb shell, as a device's init and adbd give it.

Which variables a shell sees (``ANDROID_*``, ``PATH``, ``HOME``,
``HOSTNAME``...), the shell binary, and the planted environment file that
adds to them; adbd's own environment stays out except what the twin's
``/system/bin`` wrappers need.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import socket

from .. import paths, props

log = logging.getLogger("twinrt.adbd")

SHELL = "/bin/sh"
ANDROID_SHELL = "/system/bin/sh"
SHELL_PATH = "/system/bin:/system/xbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEVICE_HOME = "/data/local/tmp"
FALLBACK_HOME = "/tmp"
# Variables our tools need (the /system/bin wrappers run ``python3 -m twinrt…``);
# everything else of adbd's own environment stays out of shells.
PASSTHROUGH_ENV = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "TWIN_ROOT")
# Environment a real device's init gives adbd and hence every adb shell.
ANDROID_ENV = {
    "ANDROID_ROOT": "/system",
    "ANDROID_DATA": "/data",
    "ANDROID_STORAGE": "/storage",
    "ANDROID_ASSETS": "/system/app",
    "ANDROID_BOOTLOGO": "1",
    "ASEC_MOUNTPOINT": "/mnt/asec",
    "EXTERNAL_STORAGE": "/sdcard",
    "DOWNLOAD_CACHE": "/data/cache",
}


_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_env_lines(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of the shell env file.

    Blank lines and ``#`` comments are skipped, an ``export`` prefix is
    allowed, the value is taken verbatim (no quote removal, like
    ``docker --env-file``); malformed lines and values with NUL are ignored.
    """
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _ENV_KEY.match(key) or "\0" in value:
            continue
        env[key] = value
    return env


def read_shell_env_file() -> dict[str, str]:
    """Read at every spawn so the device clock can change it at any time."""
    path = paths.under(paths.SHELL_ENV_FILE)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return {}
    return parse_env_lines(text)


def _home_dir() -> str:
    """``/data/local/tmp``, created if missing, else ``/tmp``.

    It is only created when the twin root is ``/`` (we are the device); with
    ``TWIN_ROOT`` pointing elsewhere (host-side tests) the host's file system
    is left alone.
    """
    if os.path.isdir(DEVICE_HOME) and os.access(DEVICE_HOME, os.W_OK | os.X_OK):
        return DEVICE_HOME
    if os.path.realpath(paths.root()) != "/":
        return FALLBACK_HOME
    try:
        os.makedirs(DEVICE_HOME, mode=0o771, exist_ok=True)
    except OSError:
        return FALLBACK_HOME
    return DEVICE_HOME if os.access(DEVICE_HOME, os.W_OK | os.X_OK) else FALLBACK_HOME


def _hostname() -> str:
    """adbd's ``GetHostName``: the host name unless it is "localhost"."""
    name = socket.gethostname()
    if name and name != "localhost":
        return name
    return props.get("ro.product.device", "android") or "android"


def shell_environment(term: str | None, *, interactive: bool = False) -> dict[str, str]:
    """Environment of every process adbd starts (built fresh per spawn).

    Order of precedence: the shell env file, then what adbd itself sets,
    then the Android defaults.
    """
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = "root" if os.getuid() == 0 else str(os.getuid())
    home = _home_dir()
    env = dict(ANDROID_ENV)
    env.update(
        {
            "PATH": SHELL_PATH,
            "HOME": home,
            "TMPDIR": home,
            "USER": user,
            "LOGNAME": user,
            "SHELL": ANDROID_SHELL if os.path.exists(ANDROID_SHELL) else SHELL,
            "HOSTNAME": _hostname(),
        }
    )
    for key in PASSTHROUGH_ENV:
        if key in os.environ:
            env[key] = os.environ[key]
    if term:
        env["TERM"] = term
    if interactive:
        # What Android's mkshrc shows ("twin:/ # "); dash expands it per prompt.
        env["PS1"] = "${HOSTNAME}:${PWD} " + ("# " if os.getuid() == 0 else "$ ")
    env.update(read_shell_env_file())
    return env
