"""The twin's ``getprop`` and ``setprop``: ``python3 -m twinrt.propcli getprop|setprop ...``.

They print and fail like Android's toolbox ``getprop.cpp`` and
``setprop.cpp`` (``[name]: [value]`` listing sorted by name, missing or empty
properties giving the default, ``Max 2 arguments``, setprop's own name and
length checks and its quirk of testing the *value* for an ``ro.`` prefix),
on top of :mod:`twinrt.props`, which stores the properties.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from . import props

PROP_VALUE_MAX = 92
GETPROP_HELP = (
    "usage: getprop [-TZ] [NAME [DEFAULT]]\n"
    "\n"
    "Gets an Android system property, or lists them all.\n"
    "\n"
    "-T\tShow property types instead of values\n"
    "-Z\tShow property contexts instead of values\n"
)
SETPROP_USAGE = "usage: setprop NAME VALUE\n\nSets an Android system property.\n"
# The twin has no property_contexts; every property reports the catch-all.
DEFAULT_CONTEXT = "u:object_r:default_prop:s0"
DEFAULT_TYPE = "string"


def _parse_getprop_options(args: list[str], err: TextIO) -> tuple[str, list[str]] | int:
    """getopt_long("TZ", --help) with bionic's argument permutation."""
    mode = "value"
    operands: list[str] = []
    options_done = False
    for arg in args:
        if options_done or arg == "-" or not arg.startswith("-"):
            operands.append(arg)
            continue
        if arg == "--":
            options_done = True
            continue
        if arg.startswith("--"):
            if arg == "--help":
                return -2
            err.write(f"getprop: unknown option -- {arg[2:]}\n")
            return 255
        for letter in arg[1:]:
            if letter not in "TZ":
                err.write(f"getprop: unknown option -- {letter}\n")
                return 255
            if mode != "value":
                err.write("Only one of -T or -Z may be specified\n")
                return 255
            mode = "type" if letter == "T" else "context"
    return mode, operands


def getprop(args: list[str], out: TextIO, err: TextIO) -> int:
    """``getprop [-T|-Z] [NAME [DEFAULT]]``; returns the exit status."""
    parsed = _parse_getprop_options(args, err)
    if parsed == -2:
        out.write(GETPROP_HELP + "\n")
        return 0
    if isinstance(parsed, int):
        return parsed
    mode, operands = parsed

    def shown(value: str) -> str:
        if mode == "type":
            return DEFAULT_TYPE
        if mode == "context":
            return DEFAULT_CONTEXT
        return value

    if not operands:
        for name, value in sorted(props.read_all().items()):
            out.write(f"[{name}]: [{shown(value)}]\n")
        return 0
    if len(operands) > 2:
        err.write('getprop: Max 2 arguments (see "getprop --help")\n')
        return 255
    name = operands[0]
    default = operands[1] if len(operands) == 2 else ""
    if mode != "value":
        out.write(shown("") + "\n")  # property_info lookups succeed for any name
        return 0
    # android::base::GetProperty: an empty property counts as missing.
    out.write((props.read_all().get(name) or default) + "\n")
    return 0


def setprop(args: list[str], out: TextIO, err: TextIO) -> int:
    """``setprop NAME VALUE``; returns the exit status."""
    if len(args) != 2:
        out.write(SETPROP_USAGE + "\n")
        return 1
    name, value = args
    if name and (name[0] == "." or name[-1] == "."):
        err.write("Property names must not start or end with a '.'\n")
        return 1
    if ".." in name:
        err.write("'..' is not allowed in a property name\n")
        return 1
    for c in name:
        if not ((c.isascii() and c.isalnum()) or c in ":@_.-"):
            err.write(f"Invalid character '{c}' in name '{name}'\n")
            return 1
    size = len(value.encode("utf-8", "surrogateescape"))
    if size >= PROP_VALUE_MAX and not value.startswith("ro."):
        err.write(f"Value '{value}' is too long, {size} bytes vs a max of {PROP_VALUE_MAX}\n")
        return 1
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        err.write(f"Value '{value}' is not a UTF8 encoded string\n")
        return 1
    failed = f"Failed to set property '{name}' to '{value}'.\nSee dmesg for error reason.\n"
    # init refuses long values for names outside ro.*, whatever the value says.
    if not name or (size >= PROP_VALUE_MAX and not name.startswith("ro.")):
        err.write(failed)
        return 1
    try:
        props.set_prop(name, value)
    except (props.PropError, OSError):
        err.write(failed)
        return 1
    return 0


def run(argv: list[str], out: TextIO, err: TextIO) -> int:
    """Dispatch ``getprop``/``setprop`` (argv[0] is the tool name)."""
    if not argv or argv[0] not in ("getprop", "setprop"):
        err.write("usage: python3 -m twinrt.propcli getprop|setprop [ARGS...]\n")
        return 2
    tool = getprop if argv[0] == "getprop" else setprop
    return tool(argv[1:], out, err)


def main() -> None:
    out = open(sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogateescape", closefd=False)
    err = open(sys.stderr.fileno(), "w", encoding="utf-8", errors="surrogateescape", closefd=False)
    try:
        status = run([os.fsdecode(os.fsencode(a)) for a in sys.argv[1:]], out, err)
    finally:
        out.flush()
        err.flush()
    sys.exit(status)


if __name__ == "__main__":
    main()
