"""``appops`` command lines and what ``appops get`` prints.

Android drops an SMS insert from the shell silently (exit 0, no row) unless
``com.android.shell`` holds the WRITE_SMS app-op, so planting sets it and
then reads it back.  Output format, from AOSP ``AppOpsService`` shell
``get``: one line per op, ``WRITE_SMS: allow`` optionally followed by
``; time=+1m2s ago``, ``; rejectTime=... ago``, `` (running)`` or
``; duration=...``; uid-level modes are prefixed ``Uid mode: ``; an op never
touched prints ``No operations.`` and, on newer releases, ``Default mode:
allow``.  Mode names are AppOpsManager's: allow, ignore, deny, default,
foreground.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

MODES = ("allow", "ignore", "deny", "default", "foreground")
SHELL_PACKAGE = "com.android.shell"
_LINE = re.compile(r"^(?P<uid>Uid mode: )?(?P<op>[A-Z][A-Z0-9_]*): (?P<mode>[a-z]+)(?P<rest>.*)$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class OpMode:
    op: str
    mode: str
    uid_level: bool


def _checked(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"invalid {what} {value!r}")
    return value


def set_command(package: str, op: str, mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown app-op mode {mode!r}")
    return shlex.join(["appops", "set", _checked(package, "package"), _checked(op, "op"), mode])


def get_command(package: str, op: str) -> str:
    return shlex.join(["appops", "get", _checked(package, "package"), _checked(op, "op")])


def parse_get_output(text: str) -> list[OpMode]:
    """Every op line of ``appops get``; ``No operations.`` gives []."""
    out: list[OpMode] = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m and m.group("mode") in MODES:
            out.append(OpMode(m.group("op"), m.group("mode"), bool(m.group("uid"))))
    return out


def default_mode(text: str) -> str | None:
    m = re.search(r"^Default mode: ([a-z]+)", text, re.MULTILINE)
    return m.group(1) if m else None


def effective_allowed(text: str, op: str) -> bool:
    """Whether ``op`` is allowed for the package, per ``appops get`` output.

    The package mode must be ``allow``; a uid-level mode, when present,
    overrides it unless it is ``default`` (AppOpsService checks the uid mode
    first), so it must be ``allow`` or ``default``.
    """
    modes = [m for m in parse_get_output(text) if m.op == op]
    package = [m.mode for m in modes if not m.uid_level]
    uid = [m.mode for m in modes if m.uid_level]
    if uid and uid[-1] not in ("allow", "default"):
        return False
    if package:
        return package[-1] == "allow"
    return bool(uid) and uid[-1] == "allow"


__all__ = ["OpMode", "SHELL_PACKAGE", "default_mode", "effective_allowed", "get_command", "parse_get_output",
           "set_command"]
