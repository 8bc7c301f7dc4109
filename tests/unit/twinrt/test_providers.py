"""twinrt.providers: AOSP schemas at AOSP paths, URI logic, Java semantics.

Runs the twin runtime against a temporary TWIN_ROOT.
"""

from __future__ import annotations

import math
import os
import sqlite3
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

TWIN_DIR = Path(__file__).resolve().parents[3] / "emulator_images" / "twin"
sys.path.insert(0, str(TWIN_DIR))

from twinrt import paths, providers  # noqa: E402
from twinrt.providers import ProviderError, parse_uri  # noqa: E402


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))
    return tmp_path


def ro_connect(device_path: str) -> sqlite3.Connection:
    """How a firmware service of another uid opens a provider database."""
    return sqlite3.connect(f"file:{paths.under(device_path)}?mode=ro", uri=True)


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def sms() -> providers.SmsProvider:
    return providers.SmsProvider()


def contacts() -> providers.ContactsProvider:
    return providers.ContactsProvider()


def calls() -> providers.CallLogProvider:
    return providers.CallLogProvider()


# -- files ---------------------------------------------------------------------


def test_init_databases_creates_files_at_aosp_paths(root: Path) -> None:
    providers.init_databases()
    expected = {
        "data/user/0/com.android.providers.contacts/databases/contacts2.db": 1701,
        "data/user/0/com.android.providers.contacts/databases/calllog.db": 12,
        "data/user/0/com.android.providers.telephony/databases/mmssms.db": 69,
    }
    for rel, version in expected.items():
        path = root / rel
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o771
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT locale FROM android_metadata").fetchall() == [("en_US",)]
        conn.close()
    # Idempotent: a second boot keeps the data.
    providers.init_databases()


def test_schema_columns_match_aosp(root: Path) -> None:
    providers.init_databases()
    mms = ro_connect(paths.MMSSMS_DB)
    assert columns(mms, "sms") == [
        "_id", "thread_id", "address", "person", "date", "date_sent", "protocol", "read", "status",
        "type", "reply_path_present", "subject", "body", "service_center", "locked", "sub_id",
        "error_code", "creator", "seen",
    ]
    assert columns(mms, "threads") == [
        "_id", "date", "message_count", "recipient_ids", "snippet", "snippet_cs", "read", "archived",
        "type", "error", "has_attachment", "sub_id",
    ]
    assert columns(mms, "canonical_addresses") == ["_id", "address", "sub_id"]
    log = ro_connect(paths.CALLLOG_DB)
    call_cols = columns(log, "calls")
    assert call_cols[:6] == ["_id", "number", "presentation", "post_dial_digits", "via_number", "date"]
    assert "is_call_log_phone_account_migration_pending" in call_cols
    assert call_cols[-1] == "is_omtp_voicemail" and len(call_cols) == 56  # 42 Calls + 14 Voicemails columns
    con = ro_connect(paths.CONTACTS_DB)
    assert columns(con, "mimetypes") == ["_id", "mimetype"]
    assert columns(con, "accounts") == [
        "_id", "account_name", "account_type", "data_set", "sim_slot_index", "sim_ef_type",
        "ungrouped_visible", "should_sync", "x_is_default",
    ]
    data_cols = columns(con, "data")
    assert data_cols[:4] == ["_id", "package_id", "mimetype_id", "raw_contact_id"]
    assert "mimetype" not in data_cols
    # As on a device, the views need the PHONEBOOK collation ContactsProvider registers:
    # a plain reader can read the tables but not view_data.
    with pytest.raises(sqlite3.OperationalError, match="no such collation sequence: PHONEBOOK"):
        con.execute("SELECT * FROM view_data")
    full = providers.open_db(providers.CONTACTS)
    assert "mimetype" in columns(full, "view_data")
    full.close()
    assert {"display_name", "display_name_alt", "sort_key", "contact_id", "account_id"} <= set(
        columns(con, "raw_contacts")
    )
    assert {"name_raw_contact_id", "lookup", "has_phone_number"} <= set(columns(con, "contacts"))
    # COMMON_MIME_TYPES are pre-populated in AOSP's order.
    rows = con.execute("SELECT _id, mimetype FROM mimetypes ORDER BY _id").fetchall()
    assert rows[0] == (1, "vnd.android.cursor.item/email_v2")
    assert rows[4] == (5, "vnd.android.cursor.item/phone_v2")
    assert rows[6] == (7, "vnd.android.cursor.item/name")
    assert len(rows) == 16


def test_concurrent_first_use_creates_schema_once(root: Path) -> None:
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from twinrt import providers; providers.init_databases()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(TWIN_DIR)], env={**os.environ, "TWIN_ROOT": str(root)})
        for _ in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    con = ro_connect(paths.CONTACTS_DB)
    assert con.execute("SELECT COUNT(*) FROM mimetypes").fetchone()[0] == 16


# -- Java semantics ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0), ("a", 97), ("hello", 99162322), ("Aa", 2112), ("BB", 2112),
     ("\U0001F600", 1772899), ("polygenelubricants", -2147483648)],
)
def test_java_string_hash(text: str, expected: int) -> None:
    assert providers.java_string_hash(text) == expected


def test_java_hashmap_iteration_order() -> None:
    pmap = providers.JavaHashMap()
    for key in ("c", "b", "a"):
        pmap.add(key)
    assert [k for k, _ in pmap.items()] == ["a", "b", "c"]
    # Colliding keys keep insertion order.
    for first, second in (("Aa", "BB"), ("BB", "Aa")):
        m = providers.JavaHashMap().add(first).add(second)
        assert [k for k, _ in m.items()] == [first, second]
    m = providers.JavaHashMap().add("x", "0")
    assert m.items() == [("x", "0 AS x")]


def test_call_log_projection_map_is_in_arraymap_order() -> None:
    keys = [k for k, _ in providers._calls_projection_map().items()]
    assert keys == sorted(providers._CALLS_COLUMNS, key=providers.java_string_hash)
    assert set(keys) == set(providers._CALLS_COLUMNS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3.14, "3.14"), (1e10, "1.0E10"), (0.001, "0.001"), (1e-4, "1.0E-4"), (100.0, "100.0"),
     (1234567.0, "1234567.0"), (12345678.0, "1.2345678E7"), (-2.5, "-2.5"), (0.0, "0.0"),
     (-0.0, "-0.0"), (math.inf, "Infinity"), (1e39, "Infinity"), (math.nan, "NaN"),
     (3.140000104904175, "3.14"), (0.1 + 0.2, "0.3")],
)
def test_java_float_str(value: float, expected: str) -> None:
    assert providers.java_float_str(value) == expected


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_java_float_str_round_trips_float32(value: float) -> None:
    text = providers.java_float_str(value).replace("E", "e")
    assert struct.pack("<f", float(text)) == struct.pack("<f", value)


@pytest.mark.parametrize(
    ("value", "as_string", "as_long"),
    [(True, "true", None), (5, "5", 5), (2.5, "2.5", 2), ("12", "12", 12), ("1x", "1x", None), (None, None, None)],
)
def test_content_values_getters(value, as_string, as_long) -> None:
    assert providers.get_as_string(value) == as_string
    assert providers.get_as_long(value) == as_long


def test_uri_parsing_and_matching() -> None:
    uri = parse_uri("content://sms/inbox/12?limit=3")
    assert (uri.scheme, uri.authority, uri.segments, uri.param("limit")) == ("content", "sms", ["inbox", "12"], "3")
    assert providers._match(uri, providers._SMS_URIS) == "INBOX_ID"
    assert providers._match(parse_uri("content://sms"), providers._SMS_URIS) == "ALL"
    assert providers._match(parse_uri("content://sms/x1"), providers._SMS_URIS) is None
    assert parse_uri("sms").authority is None


def test_phone_numbers_equal() -> None:
    eq = providers.phone_numbers_equal
    assert eq("+1 650-555-1234", "6505551234")
    assert eq("(650) 555-1234", "650.555.1234")
    assert not eq("6505551234", "6505551235")
    assert eq("12345", "12345") and not eq("12345", "2345")


# -- SMS -----------------------------------------------------------------------


def test_sms_insert_defaults_and_thread_derivation(root: Path) -> None:
    p = sms()
    assert p.insert(parse_uri("content://sms/inbox"), {"address": "+1 650-555-1234", "body": "hi"}) == "content://sms/1"
    p.insert(parse_uri("content://sms/sent"), {"address": "6505551234", "body": "yo", "date": 5})
    p.insert(parse_uri("content://sms"), {"address": "Alice <Alice@Example.com>", "body": "mail"})
    p.insert(parse_uri("content://sms"), {"address": "alice@example.COM", "body": "again", "type": 2})
    conn = ro_connect(paths.MMSSMS_DB)
    rows = conn.execute("SELECT _id, thread_id, type, read, date, creator, sub_id FROM sms ORDER BY _id").fetchall()
    assert [r[:4] for r in rows] == [(1, 1, 1, 0), (2, 1, 2, 1), (3, 2, 1, 0), (4, 2, 2, 1)]
    assert rows[0][4] > 1_600_000_000_000 and rows[1][4] == 5  # date defaults to now in ms
    assert rows[0][5] == providers.calling_package() and rows[0][6] == providers.DEFAULT_SUB_ID
    assert conn.execute("SELECT _id, address FROM canonical_addresses").fetchall() == [
        (1, "+1 650-555-1234"),
        (2, "alice@example.com"),
    ]
    threads = conn.execute("SELECT _id, recipient_ids, message_count, snippet, read FROM threads").fetchall()
    assert threads == [(1, "1", 2, "yo", 0), (2, "2", 2, "again", 0)]
    words = conn.execute("SELECT source_id, index_text, table_to_use FROM words ORDER BY source_id").fetchall()
    assert words[0] == (1, "hi", 1)


def test_sms_explicit_thread_id_is_kept(root: Path) -> None:
    sms().insert(parse_uri("content://sms"), {"address": "555", "body": "x", "thread_id": 42})
    assert ro_connect(paths.MMSSMS_DB).execute("SELECT thread_id FROM sms").fetchone() == (42,)


def test_sms_query_by_box_and_id(root: Path) -> None:
    p = sms()
    p.insert(parse_uri("content://sms/inbox"), {"address": "1", "body": "in", "date": 1})
    p.insert(parse_uri("content://sms/sent"), {"address": "1", "body": "out", "date": 2})
    cur = p.query(parse_uri("content://sms"), ["body"], None, None)
    assert cur.rows == [("out",), ("in",)]  # Sms.DEFAULT_SORT_ORDER is "date DESC"
    assert p.query(parse_uri("content://sms/inbox"), ["body"], None, None).rows == [("in",)]
    assert p.query(parse_uri("content://sms/sent"), ["_id", "type"], None, None).rows == [(2, 2)]
    assert p.query(parse_uri("content://sms/2"), ["body"], None, None).rows == [("out",)]
    assert p.query(parse_uri("content://sms/draft"), None, None, None).rows == []
    assert p.query(parse_uri("content://sms/bogus"), None, None, None) is None  # "Invalid request"
    full = p.query(parse_uri("content://sms"), None, "_id=1", None)
    assert full.columns[:3] == ["_id", "thread_id", "address"] and len(full.rows) == 1


def test_sms_unknown_column_is_a_sqlite_error_on_query_but_silent_on_insert(root: Path) -> None:
    p = sms()
    with pytest.raises(ProviderError) as err:
        p.query(parse_uri("content://sms"), ["nope"], None, None)
    assert err.value.java_class == "android.database.sqlite.SQLiteException"
    assert err.value.message == (
        "no such column: nope (code 1 SQLITE_ERROR): , while compiling: SELECT nope FROM sms ORDER BY date DESC"
    )
    # SQLiteDatabase.insert logs and returns -1; the provider returns null.
    assert p.insert(parse_uri("content://sms"), {"nope": "x", "body": "b"}) is None
    assert ro_connect(paths.MMSSMS_DB).execute("SELECT COUNT(*) FROM sms").fetchone() == (0,)


def test_sms_delete_updates_and_drops_threads(root: Path) -> None:
    p = sms()
    for body in ("a", "b"):
        p.insert(parse_uri("content://sms/inbox"), {"address": "555-0100", "body": body})
    p.insert(parse_uri("content://sms/inbox"), {"address": "555-0199", "body": "c"})
    assert p.delete(parse_uri("content://sms/1"), None) == 1
    conn = ro_connect(paths.MMSSMS_DB)
    assert conn.execute("SELECT _id, message_count, snippet FROM threads ORDER BY _id").fetchall() == [
        (1, 1, "b"), (2, 1, "c")
    ]
    assert p.delete(parse_uri("content://sms"), "address='555-0100'") == 1
    assert conn.execute("SELECT _id FROM threads").fetchall() == [(2,)]
    assert conn.execute("SELECT address FROM canonical_addresses").fetchall() == [("555-0199",)]
    with pytest.raises(ProviderError, match="Unknown URL"):
        p.delete(parse_uri("content://sms/inbox"), None)


def test_sms_draft_replaces_draft_in_thread(root: Path) -> None:
    p = sms()
    p.insert(parse_uri("content://sms/draft"), {"address": "123", "body": "v1"})
    p.insert(parse_uri("content://sms/draft"), {"address": "123", "body": "v2"})
    assert p.query(parse_uri("content://sms/draft"), ["body"], None, None).rows == [("v2",)]


def test_sms_update(root: Path) -> None:
    p = sms()
    p.insert(parse_uri("content://sms/inbox"), {"address": "1", "body": "x"})
    assert p.update(parse_uri("content://sms/1"), {"read": 1, "creator": "evil"}, None) == 1
    assert ro_connect(paths.MMSSMS_DB).execute("SELECT read, creator FROM sms").fetchone() == (
        1, providers.calling_package()
    )
    with pytest.raises(ProviderError, match="not supported"):
        p.update(parse_uri("content://sms/nope"), {"read": 1}, None)


def test_inbox_sms_person_is_looked_up_in_contacts(root: Path) -> None:
    c = contacts()
    c.insert(parse_uri("content://com.android.contacts/raw_contacts"), {})
    c.insert(
        parse_uri("content://com.android.contacts/data"),
        {"raw_contact_id": 1, "mimetype": providers.MIME_PHONE, "data1": "+1 650 555 0000"},
    )
    sms().insert(parse_uri("content://sms/inbox"), {"address": "6505550000", "body": "x"})
    assert ro_connect(paths.MMSSMS_DB).execute("SELECT person FROM sms").fetchone() == (1,)


def test_read_only_reader_sees_committed_rows_immediately(root: Path) -> None:
    providers.init_databases()
    reader = ro_connect(paths.MMSSMS_DB)
    assert reader.execute("SELECT COUNT(*) FROM sms").fetchone() == (0,)
    sms().insert(parse_uri("content://sms/inbox"), {"address": "1", "body": "now"})
    assert reader.execute("SELECT body FROM sms").fetchall() == [("now",)]
    assert not Path(str(paths.under(paths.MMSSMS_DB)) + "-wal").exists()


# -- call log ------------------------------------------------------------------


def test_call_log_insert_and_computed_values(root: Path) -> None:
    p = calls()
    uri = parse_uri("content://call_log/calls")
    assert p.insert(uri, {"number": "6505551234", "type": 1, "duration": 7, "post_dial_digits": None}) == (
        "content://call_log/calls/1"
    )
    p.insert(uri, {"number": "-2", "type": 3})
    conn = ro_connect(paths.CALLLOG_DB)
    rows = conn.execute(
        "SELECT number, presentation, post_dial_digits, countryiso, normalized_number, last_modified > 0 "
        "FROM calls ORDER BY _id"
    ).fetchall()
    assert rows == [("6505551234", 1, "", "US", "+16505551234", 1), ("", 3, "", "US", None, 1)]


def test_call_log_rejects_unknown_columns(root: Path) -> None:
    p = calls()
    with pytest.raises(ProviderError) as err:
        p.insert(parse_uri("content://call_log/calls"), {"number": "1", "bogus": "x"})
    assert (err.value.java_class, err.value.message) == (providers.IAE, "Column 'bogus'. Is invalid.")
    with pytest.raises(ProviderError, match="^java.lang.IllegalArgumentException: Invalid column bogus$"):
        p.query(parse_uri("content://call_log/calls"), ["bogus"], None, None)
    with pytest.raises(ProviderError, match="Column 'bogus'"):
        p.update(parse_uri("content://call_log/calls"), {"bogus": 1}, None)


def test_call_log_uri_rules(root: Path) -> None:
    p = calls()
    p.insert(parse_uri("content://call_log/calls"), {"number": "1", "type": 2})
    p.insert(parse_uri("content://call_log/calls"), {"number": "2", "type": 1})
    assert p.query(parse_uri("content://call_log/calls/2"), ["number"], None, None).rows == [("2",)]
    assert p.query(parse_uri("content://call_log/calls?limit=1"), ["_id"], None, "_id DESC").rows == [(2,)]
    with pytest.raises(ProviderError, match="Unknown URL content://call_log/nope"):
        p.query(parse_uri("content://call_log/nope"), None, None, None)
    with pytest.raises(ProviderError, match="Cannot delete that URL"):
        p.delete(parse_uri("content://call_log/calls/1"), None)
    with pytest.raises(ProviderError, match="allow_voicemails=true"):
        p.insert(parse_uri("content://call_log/calls"), {"number": "1", "type": 4})
    assert p.update(parse_uri("content://call_log/calls/1"), {"is_read": 1}, None) == 1
    assert p.delete(parse_uri("content://call_log/calls"), "number='1'") == 1
    cur = p.query(parse_uri("content://call_log/calls"), None, None, None)
    assert cur.columns == [k for k, _ in providers._calls_projection_map().items()]
    assert len(cur.rows) == 1


# -- contacts ------------------------------------------------------------------

RAW = "content://com.android.contacts/raw_contacts"
DATA = "content://com.android.contacts/data"


def test_raw_contact_account_rules(root: Path) -> None:
    p = contacts()
    p.insert(parse_uri(RAW), {"account_name": "", "account_type": ""})
    p.insert(parse_uri(RAW), {})
    p.insert(parse_uri(RAW), {"account_name": "a@b.c", "account_type": "com.google"})
    conn = ro_connect(paths.CONTACTS_DB)
    assert conn.execute(
        "SELECT _id, account_name, account_type, ungrouped_visible, should_sync FROM accounts"
    ).fetchall() == [(1, None, None, 1, 0), (2, "a@b.c", "com.google", 0, 1)]
    assert conn.execute("SELECT account_id, contact_id FROM raw_contacts").fetchall() == [(1, 1), (1, 2), (2, 3)]
    for values in ({"account_name": "x"}, {"account_type": "t"}, {"account_name": "x", "account_type": ""}):
        with pytest.raises(ProviderError) as err:
            p.insert(parse_uri(RAW), values)
        assert err.value.java_class == providers.IAE
        assert err.value.message.startswith(
            "Must specify both or neither of ACCOUNT_NAME and ACCOUNT_TYPE; "
            "URI: content://com.android.contacts/raw_contacts, calling user: "
        )
    assert conn.execute("SELECT COUNT(*) FROM raw_contacts").fetchone() == (3,)


def test_data_insert_stores_mimetype_ids(root: Path) -> None:
    p = contacts()
    p.insert(parse_uri(RAW), {})
    p.insert(parse_uri(DATA), {"raw_contact_id": 1, "mimetype": providers.MIME_PHONE, "data1": "+1 650 555 1234"})
    p.insert(parse_uri(DATA), {"raw_contact_id": 1, "mimetype": "vnd.example.cursor.item/custom", "data1": "c"})
    p.insert(parse_uri(DATA), {"raw_contact_id": 1, "mimetype": "vnd.example.cursor.item/custom", "data1": "d"})
    conn = ro_connect(paths.CONTACTS_DB)
    assert conn.execute("SELECT mimetype_id, data1, data4 FROM data ORDER BY _id").fetchall() == [
        (5, "+1 650 555 1234", "+16505551234"), (17, "c", None), (17, "d", None)
    ]
    assert conn.execute("SELECT mimetype FROM mimetypes WHERE _id=17").fetchone() == ("vnd.example.cursor.item/custom",)
    assert conn.execute("SELECT normalized_number, min_match FROM phone_lookup").fetchall() == [
        ("+16505551234", "4321555")
    ]
    cur = p.query(parse_uri(DATA), ["_id", "mimetype", "data1"], None, "_id")
    assert cur.rows == [
        (1, providers.MIME_PHONE, "+1 650 555 1234"),
        (2, "vnd.example.cursor.item/custom", "c"),
        (3, "vnd.example.cursor.item/custom", "d"),
    ]
    assert p.query(parse_uri(DATA + "/phones"), ["_id", "data1"], None, None).rows == [(1, "+1 650 555 1234")]
    with pytest.raises(ProviderError, match="raw_contact_id is required"):
        p.insert(parse_uri(DATA), {"mimetype": providers.MIME_NAME})
    with pytest.raises(ProviderError, match="mimetype is required"):
        p.insert(parse_uri(DATA), {"raw_contact_id": 1})


def test_name_updates_raw_contact_and_aggregate(root: Path) -> None:
    p = contacts()
    p.insert(parse_uri(RAW), {})
    p.insert(parse_uri(DATA), {"raw_contact_id": 1, "mimetype": providers.MIME_EMAIL, "data1": "j@x.org"})
    conn = ro_connect(paths.CONTACTS_DB)
    assert conn.execute("SELECT display_name, display_name_source FROM raw_contacts").fetchone() == ("j@x.org", 10)
    p.insert(parse_uri(DATA), {"raw_contact_id": 1, "mimetype": providers.MIME_NAME, "data1": "John Smith"})
    assert conn.execute(
        "SELECT display_name, display_name_alt, display_name_source, sort_key, phonebook_label FROM raw_contacts"
    ).fetchone() == ("John Smith", "Smith, John", 40, "John Smith", "J")
    assert conn.execute("SELECT data2, data3 FROM data WHERE mimetype_id=7").fetchone() == ("John", "Smith")
    contact = p.query(parse_uri("content://com.android.contacts/contacts"),
                      ["_id", "display_name", "has_phone_number", "name_raw_contact_id"], None, None)
    assert contact.rows == [(1, "John Smith", 0, 1)]
    p.insert(parse_uri(DATA), {"raw_contact_id": 1, "mimetype": providers.MIME_PHONE, "data1": "555"})
    assert conn.execute("SELECT has_phone_number, lookup FROM contacts").fetchone()[0] == 1
    assert p.query(parse_uri(DATA), ["display_name"], "mimetype_id=5", None).rows == [("John Smith",)]


def test_contacts_delete(root: Path) -> None:
    p = contacts()
    p.insert(parse_uri(RAW), {})
    p.insert(parse_uri(RAW), {"account_name": "a", "account_type": "t"})
    for raw_id in (1, 2):
        p.insert(parse_uri(DATA), {"raw_contact_id": raw_id, "mimetype": providers.MIME_NAME, "data1": f"N{raw_id}"})
    assert p.delete(parse_uri(DATA), "data1='N1'") == 1
    conn = ro_connect(paths.CONTACTS_DB)
    assert conn.execute("SELECT display_name FROM raw_contacts WHERE _id=1").fetchone() == (None,)
    assert p.delete(parse_uri(RAW), None) == 2
    # The local raw contact is gone at once, the synced one is only marked deleted.
    assert conn.execute("SELECT _id, deleted, contact_id FROM raw_contacts").fetchall() == [(2, 1, None)]
    assert conn.execute("SELECT COUNT(*) FROM contacts").fetchone() == (0,)
    assert conn.execute("SELECT contact_id FROM deleted_contacts ORDER BY 1").fetchall() == [(1,), (2,)]


def test_contacts_errors(root: Path) -> None:
    p = contacts()
    with pytest.raises(ProviderError) as err:
        p.query(parse_uri("content://com.android.contacts/nope"), None, None, None)
    assert err.value.message.startswith("URI: content://com.android.contacts/nope, calling user: ")
    with pytest.raises(ProviderError, match="Invalid column nope"):
        p.query(parse_uri(RAW), ["nope"], None, None)
    with pytest.raises(ProviderError, match="Aggregate contacts are created automatically"):
        p.insert(parse_uri("content://com.android.contacts/contacts"), {"x": 1})
    with pytest.raises(ProviderError, match="no such column: nope"):
        p.query(parse_uri(RAW), ["_id"], "nope=1", None)


def test_contacts_default_projection_is_projection_map_order(root: Path) -> None:
    p = contacts()
    p.insert(parse_uri(RAW), {})
    cur = p.query(parse_uri(RAW), None, None, None)
    assert cur.columns == [k for k, _ in providers._contacts_projection_maps()["raw_contacts"].items()]
    assert len(cur.columns) == 35
    data_cols = providers._contacts_projection_maps()["data"]
    assert "mimetype" in data_cols and "times_used" in data_cols


def test_provider_for_authorities() -> None:
    assert isinstance(providers.provider_for("sms"), providers.SmsProvider)
    assert isinstance(providers.provider_for("call_log"), providers.CallLogProvider)
    assert isinstance(providers.provider_for("com.android.contacts"), providers.ContactsProvider)
    assert providers.provider_for("nope") is None and providers.provider_for(None) is None


@settings(max_examples=30, deadline=None)
@given(st.text())
def test_any_text_round_trips_through_sqlite(tmp_path_factory: pytest.TempPathFactory, body: str) -> None:
    os.environ["TWIN_ROOT"] = str(tmp_path_factory.mktemp("rt"))
    try:
        p = sms()
        p.insert(parse_uri("content://sms/inbox"), {"address": "1", "body": body})
        assert p.query(parse_uri("content://sms"), ["body"], None, None).rows == [(body,)]
        p.close()
    finally:
        del os.environ["TWIN_ROOT"]
