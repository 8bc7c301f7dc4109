"""The one definition of a safe relative path inside a bundle.

Archive member names, directory entries, symlink targets and the manifest's
``apps.path`` all come from the bundle author, so all of them pass through
these functions before anything touches the file system.  The rules are
deliberately stricter than POSIX: no NUL or other control characters, no
backslashes, no drive letters, nothing absolute, no ``..`` at all (even one
that would normalise back inside), only valid UTF-8, and bounded lengths.
"""

from __future__ import annotations

import re

from sandbox.errors import BundleError

MAX_PATH_CHARS = 1024
MAX_COMPONENT_BYTES = 255
_SHOWN_CHARS = 200
_DRIVE = re.compile(r"[A-Za-z]:")
_ESCAPES = "path escapes the bundle root"


class UnsafePath(Exception):
    """A path broke a rule; ``reason`` says which, for the caller to place."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def display(name: str) -> str:
    """Render an untrusted name for an error message: printable and bounded."""
    if len(name) <= _SHOWN_CHARS and name.isprintable():
        return name
    shown = repr(name[:_SHOWN_CHARS])
    return shown + "..." if len(name) > _SHOWN_CHARS else shown


def quote(value: str) -> str:
    """Like :func:`display`, but always visibly delimited (for values, not paths)."""
    shown = display(value)
    return shown if shown.startswith(("'", '"')) else f"'{shown}'"


def check_component(part: str) -> None:
    """Reject one path component that is unprintable, not UTF-8 or too long."""
    if "\x00" in part:
        raise UnsafePath("path contains a NUL byte")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in part):
        raise UnsafePath("path contains a control character")
    try:
        encoded = part.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePath("path is not valid UTF-8") from None
    if len(encoded) > MAX_COMPONENT_BYTES:
        raise UnsafePath(f"path component is longer than {MAX_COMPONENT_BYTES} bytes")


def split_relative(name: str) -> tuple[str, ...]:
    """Split a '/'-separated name into components, or raise :class:`UnsafePath`.

    Empty and ``.`` components are dropped, so ``./a//b/`` is ``("a", "b")``
    and ``.`` is ``()`` (the root itself).
    """
    if "\x00" in name:
        raise UnsafePath("path contains a NUL byte")
    if "\\" in name:
        raise UnsafePath("path contains a backslash (use '/' as the separator)")
    if _DRIVE.match(name):
        raise UnsafePath(f"{_ESCAPES} (drive letters are not allowed)")
    if name.startswith("/"):
        raise UnsafePath(f"{_ESCAPES} (absolute paths are not allowed)")
    if len(name) > MAX_PATH_CHARS:
        raise UnsafePath(f"path is longer than {MAX_PATH_CHARS} characters")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafePath(f"{_ESCAPES} ('..' is not allowed)")
        check_component(part)
        parts.append(part)
    return tuple(parts)


def member_parts(name: str) -> tuple[str, ...]:
    """:func:`split_relative` for archive members: failures become ``BundleError``."""
    try:
        return split_relative(name)
    except UnsafePath as exc:
        raise BundleError(exc.reason, path=display(name)) from None


def check_link_target(target: str) -> None:
    """Reject symlink targets that cannot be valid inside ``files/``.

    This is only the syntactic half; ``tree.verify_tree`` resolves every link
    once the whole tree exists and rejects those that land outside ``files/``.
    """
    if not target:
        raise UnsafePath("symlink has an empty target")
    if "\x00" in target or "\\" in target or _DRIVE.match(target):
        raise UnsafePath(f"symlink target {display(target)} is not a plain relative path")
    if target.startswith("/"):
        raise UnsafePath(
            f"symlink target {display(target)} is absolute; only relative links "
            "that stay inside files/ are allowed"
        )
    if len(target) > MAX_PATH_CHARS:
        raise UnsafePath(f"symlink target is longer than {MAX_PATH_CHARS} characters")
    for part in target.split("/"):
        check_component(part)
