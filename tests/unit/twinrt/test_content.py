"""content.py: Content.java's parsing, output format and errors.

Runs ``run()`` in-process and ``python3 -m twinrt.content`` as a subprocess
against a temporary TWIN_ROOT.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

TWIN_DIR = Path(__file__).resolve().parents[3] / "emulator_images" / "twin"
sys.path.insert(0, str(TWIN_DIR))

from twinrt import content  # noqa: E402
from twinrt.content import UsageError  # noqa: E402


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = content.run(list(args), out, err)
    return status, out.getvalue(), err.getvalue()


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TWIN_ROOT": str(root), "PYTHONPATH": str(TWIN_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "twinrt.content", *args], env=env, capture_output=True, timeout=60
    )


def usage_error(message: str) -> str:
    return content.USAGE + "\n" + f"[ERROR] {message}\n"


# -- parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Unsupported operation: null"),
        (["select"], "Unsupported operation: select"),
        (["query"], "Content provider URI not specified. Did you specify --uri argument?"),
        (["insert", "--uri", "content://sms"], "Bindings not specified. Did you specify --bind argument(s)?"),
        (["update", "--uri", "content://sms", "--where", "1"], "Bindings not specified. Did you specify --bind argument(s)?"),
        (["query", "--uri"], "No value for argument: --uri"),
        (["query", "--uri", "--where"], "No value for argument: --uri"),
        (["query", "--uri", "content://sms", "--where", ""], "No value for argument: --where"),
        (["insert", "--where", "x"], "Unsupported argument: --where"),
        (["query", "--uri", "content://sms", "--bind", "a:s:b"], "Unsupported argument: --bind"),
        (["insert", "--uri", "content://sms", "--bind"], "Binding not well formed: null"),
        (["insert", "--uri", "content://sms", "--bind", ""], "Binding not well formed: "),
        (["insert", "--uri", "content://sms", "--bind", "body"], "Binding not well formed: body"),
        (["insert", "--uri", "content://sms", "--bind", "body:s:a:b"], "Binding not well formed: body:s:a:b"),
        (["insert", "--uri", "content://sms", "--bind", "body:s:a\\"], "Invalid escaping"),
        (["insert", "--uri", "content://sms", "--bind", "body:x:1"], "Unsupported type: x"),
        (["insert", "--uri", "content://sms", "--bind", "body:S:1"], "Unsupported type: S"),
        (["insert", "--uri", "content://sms", "--bind", "type:i:abc"], 'For input string: "abc"'),
        (["insert", "--uri", "content://sms", "--bind", "type:i:2147483648"], 'For input string: "2147483648"'),
        (["insert", "--uri", "content://sms", "--bind", "type:l:1.5"], 'For input string: "1.5"'),
        (["insert", "--uri", "content://sms", "--bind", "x:f:"], "empty String"),
        (["insert", "--uri", "content://sms", "--bind", "x:d:pi"], 'For input string: "pi"'),
        (["query", "--uri", "content://sms", "--user", "me"], 'For input string: "me"'),
        (["call", "--uri", "content://sms"], "Content provider method not specified."),
    ],
)
def test_usage_errors_print_usage_and_error_to_stdout(root: Path, args: list[str], message: str) -> None:
    assert run(*args) == (1, usage_error(message), "")


def test_usage_text_is_contents_current_text() -> None:
    assert content.USAGE.startswith("usage: adb shell content [subcommand] [options]\n\n")
    assert "  b - boolean, s - string, i - integer, l - long, f - float, d - double, n - null\n" in content.USAGE
    assert "  <BINDING> is like --bind above, typed data of the form <KEY>:{b,s,i,l,f,d}:<VAL>\n" in content.USAGE
    assert content.USAGE.endswith("  adb shell content gettype --uri content://media/internal/audio/media/\n\n")


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("body:s:hello", ("body", "hello")),
        ("body:s:", ("body", "")),
        ("body:s:a\\:b", ("body", "a:b")),
        ("body:s:back\\\\slash", ("body", "back\\slash")),
        ("body:s:\\x\\y", ("body", "xy")),
        ("we\\:ird:s:v", ("we:ird", "v")),
        ("read:b:TRUE", ("read", True)),
        ("read:B:yes", ("read", False)),
        ("n:i:-42", ("n", -42)),
        ("n:I:+7", ("n", 7)),
        ("n:l:9223372036854775807", ("n", 9223372036854775807)),
        ("n:d:1e3", ("n", 1000.0)),
        ("n:d: 2.5d ", ("n", 2.5)),
        ("n:f:3.14", ("n", 3.140000104904175)),
        ("n:d:-Infinity", ("n", float("-inf"))),
        ("n:d:0x1p3", ("n", 8.0)),
        ("n:n:", ("n", None)),
        ("n:N:ignored", ("n", None)),
    ],
)
def test_parse_binding(argument: str, expected: tuple[str, object]) -> None:
    assert content.parse_binding(argument) == expected


@settings(max_examples=200)
@given(st.text(), st.text())
def test_bind_escaping_round_trips_any_text(column: str, value: str) -> None:
    assert content.parse_binding(content.bind_argument(column, "s", value)) == (column, value)


@given(st.lists(st.text(), min_size=1))
def test_split_with_escaping_inverts_escaping(parts: list[str]) -> None:
    joined = ":".join(content.escape_bind_part(p) for p in parts)
    assert content.split_with_escaping(joined, ":") == parts


def test_split_projection_like_java_split() -> None:
    assert content.split_projection("a:b : c") == ["a", "b", "c"]
    assert content.split_projection("a::b") == ["a", "", "b"]
    assert content.split_projection("a:b::") == ["a", "b"]
    assert content.split_projection(":a") == ["", "a"]


def test_parse_command_fields() -> None:
    cmd = content.parse_command(
        ["query", "--uri", "content://sms/inbox", "--projection", "_id:body", "--where", "read=0",
         "--sort", "date ASC", "--user", "0"]
    )
    assert (cmd.op, cmd.uri.authority, cmd.projection, cmd.where, cmd.sort, cmd.user) == (
        "query", "sms", ["_id", "body"], "read=0", "date ASC", 0
    )
    cmd = content.parse_command(["insert", "--uri", "content://sms", "--bind", "a:s:1", "--bind", "a:i:2"])
    assert cmd.values == {"a": 2}
    with pytest.raises(UsageError):
        content.parse_command(["delete", "--uri", "content://sms", "--projection", "a"])


# -- output --------------------------------------------------------------------


def test_format_value_and_row() -> None:
    assert content.format_value(None) == "NULL"
    assert content.format_value(b"\x00") == "BLOB"
    assert content.format_value(7) == "7"
    assert content.format_value(0.1) == "0.1"
    assert content.format_value(1e10) == "1.0E10"
    assert content.format_row(3, ["a", "b"], (1, None)) == "Row: 3 a=1, b=NULL"


def test_insert_prints_nothing_and_query_prints_rows(root: Path) -> None:
    assert run("insert", "--uri", "content://sms/inbox", "--bind", "address:s:5551212",
               "--bind", "body:s:first", "--bind", "date:l:2") == (0, "", "")
    assert run("insert", "--uri", "content://sms/sent", "--bind", "address:s:5551212",
               "--bind", "body:s:second", "--bind", "date:l:1", "--bind", "subject:n:") == (0, "", "")
    status, out, err = run("query", "--uri", "content://sms", "--projection", "_id:thread_id:type:read:subject:body")
    assert (status, err) == (0, "")
    assert out == (
        "Row: 0 _id=1, thread_id=1, type=1, read=0, subject=NULL, body=first\n"
        "Row: 1 _id=2, thread_id=1, type=2, read=1, subject=NULL, body=second\n"
    )
    assert run("query", "--uri", "content://sms/inbox", "--projection", "body", "--where", "body='none'") == (
        0, "No result found.\n", ""
    )
    assert run("query", "--uri", "content://sms", "--projection", "_id", "--sort", "_id DESC") == (
        0, "Row: 0 _id=2\nRow: 1 _id=1\n", ""
    )


def test_typed_bindings_are_stored_with_their_types(root: Path) -> None:
    run("insert", "--uri", "content://call_log/calls", "--bind", "number:s:1", "--bind", "duration:f:1.5",
        "--bind", "new:b:true", "--bind", "data_usage:d:0.25", "--bind", "type:i:2")
    status, out, _ = run("query", "--uri", "content://call_log/calls",
                         "--projection", "duration:new:data_usage:type:post_dial_digits")
    assert out == "Row: 0 duration=1.5, new=1, data_usage=0.25, type=2, post_dial_digits=\n"


def test_update_and_delete_print_nothing(root: Path) -> None:
    run("insert", "--uri", "content://sms/inbox", "--bind", "address:s:1", "--bind", "body:s:x")
    assert run("update", "--uri", "content://sms/1", "--bind", "read:i:1") == (0, "", "")
    assert run("query", "--uri", "content://sms/1", "--projection", "read")[1] == "Row: 0 read=1\n"
    assert run("delete", "--uri", "content://sms/1") == (0, "", "")
    assert run("query", "--uri", "content://sms")[1] == "No result found.\n"


TRICKY = [
    "a, b, c",
    "key=value, other=thing",
    "colon: here and \\ backslash",
    "quotes ' and \" and `",
    "line one\nline two\r\nthree",
    "emoji 😀👍🏽 and CJK 漢字かなカナ한국어",
    "  leading and trailing  ",
    "",
    "NULL",
    "tab\there",
]


@pytest.mark.parametrize("body", TRICKY)
def test_values_round_trip_exactly(root: Path, body: str) -> None:
    bind = content.bind_argument("body", "s", body)
    assert run("insert", "--uri", "content://sms/inbox", "--bind", "address:s:1", "--bind", bind)[0] == 0
    assert run("query", "--uri", "content://sms", "--projection", "body") == (0, f"Row: 0 body={body}\n", "")


@settings(max_examples=40, deadline=None)
@given(st.text())
def test_any_body_round_trips_through_insert_and_query(tmp_path_factory: pytest.TempPathFactory, body: str) -> None:
    os.environ["TWIN_ROOT"] = str(tmp_path_factory.mktemp("content"))
    try:
        bind = content.bind_argument("body", "s", body)
        assert run("insert", "--uri", "content://sms/inbox", "--bind", "address:s:1", "--bind", bind) == (0, "", "")
        assert run("query", "--uri", "content://sms", "--projection", "body") == (0, f"Row: 0 body={body}\n", "")
    finally:
        del os.environ["TWIN_ROOT"]


def test_ambiguous_comma_in_body_is_printed_as_android_does(root: Path) -> None:
    run("insert", "--uri", "content://sms/inbox", "--bind", "address:s:1", "--bind", "body:s:x, _id=99")
    assert run("query", "--uri", "content://sms", "--projection", "body:_id")[1] == "Row: 0 body=x, _id=99, _id=1\n"


# -- errors --------------------------------------------------------------------


def test_unknown_authority(root: Path) -> None:
    status, out, err = run("query", "--uri", "content://nope/x")
    assert (status, out) == (1, "")
    assert err.startswith(
        "Error while accessing provider:nope\n"
        "java.lang.IllegalStateException: Could not find provider: nope\n"
        "\tat com.android.commands.content.Content$Command.execute(Content.java:"
    )
    assert run("query", "--uri", "content://sms", "--user", "10")[2].startswith(
        "Error while accessing provider:sms\njava.lang.IllegalStateException: Could not find provider: sms\n"
    )


def test_provider_exceptions_print_java_stack_traces(root: Path) -> None:
    status, out, err = run("insert", "--uri", "content://call_log/calls", "--bind", "bogus:s:1")
    assert (status, out) == (1, "")
    lines = err.splitlines()
    assert lines[:4] == [
        "Error while accessing provider:call_log",
        "java.lang.IllegalArgumentException: Column 'bogus'. Is invalid.",
        "\tat android.database.DatabaseUtils.readExceptionFromParcel(DatabaseUtils.java:172)",
        "\tat android.database.DatabaseUtils.readExceptionFromParcel(DatabaseUtils.java:142)",
    ]
    assert lines[4].startswith("\tat android.content.ContentProviderProxy.insert(")
    assert lines[5].startswith("\tat com.android.commands.content.Content$InsertCommand.onExecute(")
    assert all(line.startswith("\tat ") for line in lines[2:])

    status, _, err = run("query", "--uri", "content://sms", "--where", "nope=1")
    assert err.splitlines()[1] == (
        "android.database.sqlite.SQLiteException: no such column: nope (code 1 SQLITE_ERROR): , "
        "while compiling: SELECT * FROM sms WHERE (nope=1) ORDER BY date DESC"
    )
    status, _, err = run("query", "--uri", "content://call_log/calls", "--projection", "bogus")
    assert err.splitlines()[1] == "java.lang.IllegalArgumentException: Invalid column bogus"
    status, _, err = run("delete", "--uri", "content://call_log/calls/1")
    assert err.splitlines()[1] == (
        "java.lang.UnsupportedOperationException: Cannot delete that URL: content://call_log/calls/1"
    )
    status, _, err = run("insert", "--uri", "content://com.android.contacts/raw_contacts",
                         "--bind", "account_name:s:me@example.com")
    assert status == 1
    assert err.splitlines()[1].startswith(
        "java.lang.IllegalArgumentException: Must specify both or neither of ACCOUNT_NAME and ACCOUNT_TYPE; "
        "URI: content://com.android.contacts/raw_contacts, calling user: "
    )


def test_unknown_sms_path_behaves_like_smsprovider(root: Path) -> None:
    # SmsProvider logs "Invalid request" and returns null for insert and query.
    assert run("insert", "--uri", "content://sms/bogus", "--bind", "body:s:x") == (0, "", "")
    assert run("query", "--uri", "content://sms/bogus") == (0, "No result found.\n", "")
    status, _, err = run("delete", "--uri", "content://sms/bogus")
    assert status == 1 and err.splitlines()[1] == "java.lang.IllegalArgumentException: Unknown URL"


def test_gettype_call_read(root: Path) -> None:
    assert run("gettype", "--uri", "content://call_log/calls") == (0, "Result: vnd.android.cursor.dir/calls\n", "")
    assert run("gettype", "--uri", "content://sms/1") == (0, "Result: vnd.android.cursor.item/sms\n", "")
    assert run("call", "--uri", "content://sms", "--method", "x") == (0, "Result: null\n", "")
    status, _, err = run("read", "--uri", "content://sms/1")
    assert status == 1
    assert err.splitlines()[1] == "java.io.FileNotFoundException: No files supported by provider at content://sms/1"


# -- contacts through the command ----------------------------------------------


def test_contacts_flow(root: Path) -> None:
    assert run("insert", "--uri", "content://com.android.contacts/raw_contacts",
               "--bind", "account_name:s:", "--bind", "account_type:s:") == (0, "", "")
    assert run("insert", "--uri", "content://com.android.contacts/data", "--bind", "raw_contact_id:i:1",
               "--bind", "mimetype:s:vnd.android.cursor.item/name", "--bind", "data1:s:Jane Doe") == (0, "", "")
    assert run("insert", "--uri", "content://com.android.contacts/data", "--bind", "raw_contact_id:i:1",
               "--bind", "mimetype:s:vnd.android.cursor.item/phone_v2", "--bind", "data1:s:+1 650 555 0101",
               "--bind", "data2:i:2") == (0, "", "")
    assert run("query", "--uri", "content://com.android.contacts/data",
               "--projection", "raw_contact_id:mimetype:data1:display_name")[1] == (
        "Row: 0 raw_contact_id=1, mimetype=vnd.android.cursor.item/name, data1=Jane Doe, display_name=Jane Doe\n"
        "Row: 1 raw_contact_id=1, mimetype=vnd.android.cursor.item/phone_v2, data1=+1 650 555 0101, "
        "display_name=Jane Doe\n"
    )
    assert run("query", "--uri", "content://com.android.contacts/data/phones", "--projection", "data1:data2")[1] == (
        "Row: 0 data1=+1 650 555 0101, data2=2\n"
    )
    assert run("query", "--uri", "content://com.android.contacts/raw_contacts",
               "--projection", "_id:display_name:account_name")[1] == (
        "Row: 0 _id=1, display_name=Jane Doe, account_name=NULL\n"
    )
    assert run("query", "--uri", "content://com.android.contacts/contacts",
               "--projection", "_id:display_name:has_phone_number")[1] == (
        "Row: 0 _id=1, display_name=Jane Doe, has_phone_number=1\n"
    )


# -- as a subprocess -------------------------------------------------------------


def test_cli_round_trip_utf8_and_exit_codes(tmp_path: Path) -> None:
    body = "héllo, 世界 😀: a\\b"
    r = run_cli(tmp_path, "insert", "--uri", "content://sms/inbox", "--bind", "address:s:+15550100",
                "--bind", content.bind_argument("body", "s", body))
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    r = run_cli(tmp_path, "query", "--uri", "content://sms/inbox", "--projection", "address:body")
    assert r.returncode == 0
    assert r.stdout.decode("utf-8") == f"Row: 0 address=+15550100, body={body}\n"
    r = run_cli(tmp_path, "query")
    assert r.returncode == 1
    assert r.stdout.decode() == usage_error("Content provider URI not specified. Did you specify --uri argument?")
    r = run_cli(tmp_path, "query", "--uri", "content://call_log/nope")
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr.decode().startswith(
        "Error while accessing provider:call_log\njava.lang.IllegalArgumentException: Unknown URL content://call_log/nope\n"
    )


def test_cli_invalid_utf8_argument_becomes_replacement_char(tmp_path: Path) -> None:
    env = {**os.environ, "TWIN_ROOT": str(tmp_path), "PYTHONPATH": str(TWIN_DIR)}
    args = [sys.executable, "-m", "twinrt.content", "insert", "--uri", "content://sms/inbox",
            "--bind", "address:s:1", "--bind", b"body:s:bad\xffbyte"]
    assert subprocess.run(args, env=env, capture_output=True, timeout=60).returncode == 0
    r = run_cli(tmp_path, "query", "--uri", "content://sms", "--projection", "body")
    assert r.stdout.decode("utf-8") == "Row: 0 body=bad\ufffdbyte\n"


def test_concurrent_inserts_all_land(tmp_path: Path) -> None:
    env = {**os.environ, "TWIN_ROOT": str(tmp_path), "PYTHONPATH": str(TWIN_DIR)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "twinrt.content", "insert", "--uri", "content://sms/inbox",
             "--bind", f"address:s:+1555010{i % 3}", "--bind", f"body:s:msg {i}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    r = run_cli(tmp_path, "query", "--uri", "content://sms", "--projection", "body")
    bodies = sorted(line.split("body=", 1)[1] for line in r.stdout.decode().splitlines())
    assert bodies == sorted(f"msg {i}" for i in range(8))
    db = tmp_path / "data/user/0/com.android.providers.telephony/databases/mmssms.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("SELECT COUNT(*), SUM(message_count) FROM threads").fetchone() == (3, 8)
    conn.close()
