"""Which planted canary store a file or a ``content`` command names.

Why here and not in the parser: it is the one piece of Honeyphone's own
knowledge in turning syscalls into events (the providers' database names
and content authorities), and the same answer is wanted wherever a path or
a command line is looked at, not only while parsing strace.
"""

from __future__ import annotations

from .events import CanaryStore

__all__ = ["canary_store_for_path", "content_command_store"]

_STORE_BY_DB: dict[str, CanaryStore] = {
    "contacts2.db": "contacts",
    "calllog.db": "call_log",
    "mmssms.db": "sms",
}
_DB_SUFFIXES = ("-journal", "-wal", "-shm")


def canary_store_for_path(path: str | None) -> CanaryStore | None:
    """The canary store a file belongs to, by basename: the database itself
    or its SQLite side files (``-journal``, ``-wal``, ``-shm``)."""
    if not path or ".db" not in path:
        return None
    base = path.rsplit("/", 1)[-1]
    store = _STORE_BY_DB.get(base)
    if store is not None:
        return store
    for suffix in _DB_SUFFIXES:
        if base.endswith(suffix):
            return _STORE_BY_DB.get(base[: -len(suffix)])
    return None


_STORE_BY_AUTHORITY: dict[str, CanaryStore] = {
    "sms": "sms",
    "mms": "sms",
    "mms-sms": "sms",
    "call_log": "call_log",
    "call_log_shadow": "call_log",
    "com.android.contacts": "contacts",
    "contacts": "contacts",
}
_CONTENT_MARKERS = frozenset(
    {"twinrt.content", "/system/bin/content", "com.android.commands.content.Content"}
)


def content_command_store(path: str, argv: tuple[str, ...]) -> tuple[bool, CanaryStore | None]:
    """Whether an exec runs Android's ``content`` CLI, and which store its
    ``--uri`` reads (``"unknown"`` when no URI names a canary store)."""
    is_content = (
        (bool(argv) and argv[0].rsplit("/", 1)[-1] == "content")
        or path.rsplit("/", 1)[-1] == "content"
        or any(arg in _CONTENT_MARKERS for arg in argv)
    )
    if not is_content:
        return False, None
    uri: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--uri" and i + 1 < len(argv):
            uri = argv[i + 1]
            break
        if arg.startswith("--uri="):
            uri = arg[6:]
            break
    if uri is None:
        uri = next((a for a in argv if a.startswith("content://")), None)
    store: CanaryStore = "unknown"
    if uri is not None and uri.startswith("content://"):
        authority = uri[10:].split("/", 1)[0].rsplit("@", 1)[-1].lower()
        store = _STORE_BY_AUTHORITY.get(authority, "unknown")
    return True, store
