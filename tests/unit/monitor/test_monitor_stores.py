"""stores tests: which canary store a path or a ``content`` command names."""

from __future__ import annotations

import pytest

from sandbox.monitor.stores import canary_store_for_path, content_command_store


@pytest.mark.parametrize(
    ("path", "store"),
    [
        ("/data/user/0/com.android.providers.contacts/databases/contacts2.db", "contacts"),
        ("contacts2.db-journal", "contacts"),
        ("/x/calllog.db-wal", "call_log"),
        ("/x/mmssms.db", "sms"),
        ("/x/mmssms.db-shm", "sms"),
        ("/x/contacts2.db.bak", None),
        ("/x/contacts2.dbx", None),
        ("/x/notcontacts2.db", None),
        ("/x/-journal", None),
        ("", None),
        (None, None),
    ],
)
def test_canary_store_for_path(path: str | None, store: str | None) -> None:
    assert canary_store_for_path(path) == store


@pytest.mark.parametrize(
    ("path", "argv", "expected"),
    [
        ("/system/bin/content", ("content", "query", "--uri", "content://sms/inbox"), (True, "sms")),
        ("/usr/bin/python3", ("python3", "-m", "twinrt.content", "query", "--uri",
                              "content://call_log/calls"), (True, "call_log")),
        ("/bin/sh", ("/system/bin/content", "query", "--uri=content://com.android.contacts/data"),
         (True, "contacts")),
        ("/system/bin/app_process", ("app_process", "/", "com.android.commands.content.Content",
                                     "query", "--uri", "content://0@mms-sms/conversations"),
         (True, "sms")),
        ("/system/bin/content", ("content", "query", "--uri", "content://settings/secure"),
         (True, "unknown")),
        ("/system/bin/content", ("content", "call", "content://contacts/people"), (True, "contacts")),
        ("/bin/sh", ("sh", "-c", "content query --uri content://sms"), (False, None)),
        ("/usr/bin/contentious", ("contentious",), (False, None)),
    ],
)
def test_content_command_store(path: str, argv: tuple[str, ...], expected: tuple[bool, str | None]) -> None:
    assert content_command_store(path, argv) == expected
