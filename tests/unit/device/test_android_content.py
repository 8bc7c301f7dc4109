"""``content`` command lines as Android's ``cmds/content`` Content.java parses them.

Content.java's Tokenizer takes argv as given, ``--bind`` values are
``COLUMN:TYPE:VALUE`` and ``query`` prints ``Row: N col=value, col=value``
(``NULL`` for null, ``No result found.`` when empty).  The command travels
through ``adb shell``, so it is split here with ``shlex`` the way the
device's shell splits it.
"""

from __future__ import annotations

import shlex

import pytest

from sandbox.device import content


def _binds(command: str) -> dict[str, str]:
    argv = shlex.split(command)
    assert argv[:2] == ["content", "insert"] and argv[2] == "--uri"
    out = {}
    for i, arg in enumerate(argv):
        if arg == "--bind":
            out[argv[i + 1].split(":", 1)[0]] = argv[i + 1]
    return out


def test_sms_insert_binds_types_and_escapes() -> None:
    cmd = content.insert_command("content://sms/inbox", {
        "address": "+1 555 0100", "body": "code: 12:34 it's \"here\"", "date": 1_700_000_000_123, "read": 0,
    })
    binds = _binds(cmd)
    assert binds["address"] == "address:s:+1 555 0100"
    assert binds["body"] == "body:s:code\\: 12\\:34 it's \"here\""
    assert binds["date"] == "date:l:1700000000123"  # epoch ms needs the 64-bit type
    assert binds["read"] == "read:l:0"


def test_null_and_bool_types() -> None:
    cmd = content.insert_command("content://call_log/calls", {"name": None, "new": True, "x": 1.5})
    assert _binds(cmd) == {"name": "name:n:", "new": "new:b:true", "x": "x:d:1.5"}


def test_column_names_cannot_break_the_binding() -> None:
    with pytest.raises(ValueError):
        content.insert_command("content://sms", {"a:b": "x"})


def test_query_command_and_output() -> None:
    cmd = content.query_command("content://sms", ["address", "date", "body"], where="type=1", sort="date ASC")
    assert shlex.split(cmd) == ["content", "query", "--uri", "content://sms", "--projection", "address:date:body",
                                "--where", "type=1", "--sort", "date ASC"]
    out = ("Row: 0 address=+15550100, date=1700000000123, body=hi, there, date=fake\n"
           "Row: 1 address=NULL, date=1700000000999, body=line one\nline two\n")
    rows = content.parse_query_output(out, ["address", "date", "body"])
    assert rows == [
        {"address": "+15550100", "date": "1700000000123", "body": "hi, there, date=fake"},
        {"address": None, "date": "1700000000999", "body": "line one\nline two"},
    ]
    assert content.parse_query_output("No result found.\n", ["address"]) == []
