"""Android system properties for the twin.

Read-only properties come from ``/system/build.prop`` and ``/default.prop``
(``key=value`` lines, as on Android).  Runtime properties, set with ``setprop``,
live one file per key under ``/dev/__properties__`` so concurrent writers never
corrupt each other (each write is an atomic rename).  ``ro.*`` properties can
be set once, as on Android.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from . import paths

_NAME = re.compile(r"^[A-Za-z0-9_.\-@:]{1,256}$")
MAX_VALUE = 92  # PROP_VALUE_MAX on Android, counting the NUL, for non ro.* properties


class PropError(Exception):
    pass


def _parse_prop_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip()
    return out


def read_all() -> dict[str, str]:
    """All properties, runtime ones overriding the files, sorted by name."""
    props: dict[str, str] = {}
    props.update(_parse_prop_file(paths.under(paths.DEFAULT_PROP)))
    props.update(_parse_prop_file(paths.under(paths.BUILD_PROP)))
    runtime = paths.under(paths.RUNTIME_PROPS_DIR)
    if runtime.is_dir():
        for entry in runtime.iterdir():
            if entry.name.startswith("."):
                continue
            try:
                props[entry.name] = entry.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
    return dict(sorted(props.items()))


def get(name: str, default: str = "") -> str:
    return read_all().get(name, default)


def set_prop(name: str, value: str) -> None:
    if not _NAME.match(name):
        raise PropError(f"Failed to set property '{name}' to '{value}'.")
    if not name.startswith("ro.") and len(value.encode("utf-8")) >= MAX_VALUE:
        raise PropError(f"Failed to set property '{name}' to '{value}'.")
    current = read_all()
    if name.startswith("ro.") and name in current:
        raise PropError(f"Failed to set property '{name}' to '{value}'.")
    runtime = paths.under(paths.RUNTIME_PROPS_DIR)
    runtime.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=runtime, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    os.chmod(tmp, 0o644)
    os.replace(tmp, runtime / name)


def banner_props() -> dict[str, str]:
    """The properties adbd puts into its CNXN banner."""
    props = read_all()
    return {
        "ro.product.name": props.get("ro.product.name", "honeyphone_twin"),
        "ro.product.model": props.get("ro.product.model", "Honeyphone Twin"),
        "ro.product.device": props.get("ro.product.device", "twin"),
    }
