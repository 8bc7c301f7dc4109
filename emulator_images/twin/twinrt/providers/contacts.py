"""ContactsProvider2 (authority ``com.android.contacts``) over contacts2.db.

Projection maps, raw contacts and data rows (``DataRowHandler*``), accounts
(``AccountResolver``), aggregation into contacts and display names, with the
error messages ``ContactsProvider2`` gives.  One concern, hence one module.
"""

from __future__ import annotations

import sqlite3

from .base import Provider
from .calllog import _strict_projection
from .db import db_delete, db_insert, db_update, run_query, write_txn
from .errors import Cursor, IAE, ProviderError, UOE, Values
from .java import (
    JavaHashMap,
    build_query,
    concatenate_where,
    get_as_long,
    get_as_string,
    java_string_hash,
    now_ms,
)
from .phone import _dialable_digits, current_country_iso, format_e164, min_match_key
from .request import Uri, _exception_message, _match
from .schemas import CONTACTS, MIME_EMAIL, MIME_NAME, MIME_NICKNAME, MIME_ORGANIZATION, MIME_PHONE

_CONTACTS_URIS = (
    ("contacts", "CONTACTS"),
    ("contacts/#", "CONTACTS_ID"),
    ("raw_contacts", "RAW_CONTACTS"),
    ("raw_contacts/#", "RAW_CONTACTS_ID"),
    ("raw_contacts/#/data", "RAW_CONTACTS_ID_DATA"),
    ("data", "DATA"),
    ("data/#", "DATA_ID"),
    ("data/phones", "PHONES"),
    ("data/phones/#", "PHONES_ID"),
    ("data/emails", "EMAILS"),
    ("data/emails/#", "EMAILS_ID"),
)

_PRESENCE_NULL = (
    # Presence/status columns come from LEFT JOINs to presence tables the twin
    # never fills, so they are always NULL: select NULL instead of joining.
    "contact_presence contact_chat_capability contact_status contact_status_ts "
    "contact_status_res_package contact_status_label contact_status_icon "
    "mode chat_capability status status_ts status_res_package status_label status_icon"
).split()


def _pm(*columns: str) -> JavaHashMap:
    pmap = JavaHashMap()
    for column in columns:
        pmap.add(column)
    return pmap


def _null_columns(*columns: str) -> JavaHashMap:
    pmap = JavaHashMap()
    for column in columns:
        pmap.add(column, "NULL")
    return pmap


def _contacts_projection_maps() -> dict[str, JavaHashMap]:
    """ContactsProvider2's projection maps, built in the same order as in Java."""
    contacts_columns = (
        _pm("custom_ringtone", "display_name", "display_name_alt", "display_name_source",
            "in_default_directory", "in_visible_group")
        .add("last_time_contacted", "0")
        .add_all(_pm("lookup", "phonetic_name", "phonetic_name_style", "photo_id", "photo_file_id",
                     "photo_uri", "photo_thumb_uri", "send_to_voicemail", "sort_key_alt", "sort_key",
                     "phonebook_label", "phonebook_bucket", "phonebook_label_alt",
                     "phonebook_bucket_alt", "starred", "pinned"))
        .add("times_contacted", "0")
        .add_all(_pm("has_phone_number", "contact_last_updated_timestamp"))
    )
    contact_presence = _null_columns(
        "contact_presence", "contact_chat_capability", "contact_status", "contact_status_ts",
        "contact_status_res_package", "contact_status_label", "contact_status_icon",
    )
    raw_contact_columns = _pm("account_name", "account_type", "data_set", "account_type_and_data_set",
                              "dirty", "sourceid", "backup_id", "version")
    raw_contact_sync = _pm("sync1", "sync2", "sync3", "sync4")
    data_columns = _pm(
        "data1", "data2", "data3", "data4", "data5", "data6", "data7", "data8", "data9", "data10",
        "data11", "data12", "data13", "data14", "data15", "carrier_presence",
        "preferred_phone_account_component_name", "preferred_phone_account_id", "data_version",
        "is_primary", "is_super_primary", "mimetype", "res_package", "data_sync1", "data_sync2",
        "data_sync3", "data_sync4", "group_sourceid",
    )
    data_presence = _null_columns("mode", "chat_capability", "status", "status_ts", "status_res_package",
                                  "status_label", "status_icon")
    data_usage = JavaHashMap().add("times_used", "0").add("last_time_used", "0")
    contacts_map = (
        _pm("_id", "has_phone_number", "name_raw_contact_id", "is_user_profile")
        .add_all(contacts_columns)
        .add_all(contact_presence)
    )
    raw_contacts_map = (
        _pm("_id", "contact_id", "deleted", "display_name", "display_name_alt", "display_name_source",
            "phonetic_name", "phonetic_name_style", "sort_key", "sort_key_alt", "phonebook_label",
            "phonebook_bucket", "phonebook_label_alt", "phonebook_bucket_alt", "times_contacted",
            "last_time_contacted", "custom_ringtone", "send_to_voicemail", "starred", "pinned",
            "aggregation_mode", "raw_contact_is_user_profile", "metadata_dirty")
        .add_all(raw_contact_columns)
        .add_all(raw_contact_sync)
    )
    data_map = (
        _pm("_id", "raw_contact_id", "hash_id", "contact_id", "name_raw_contact_id",
            "raw_contact_is_user_profile")
        .add_all(data_columns)
        .add_all(data_presence)
        .add_all(raw_contact_columns)
        .add_all(contacts_columns)
        .add_all(contact_presence)
        .add_all(data_usage)
    )
    distinct_data_map = (
        JavaHashMap()
        .add("_id", "MIN(_id)")
        .add_all(_pm("contact_id", "raw_contact_is_user_profile", "hash_id"))
        .add_all(data_columns)
        .add_all(data_presence)
        .add_all(contacts_columns)
        .add_all(contact_presence)
        .add_all(data_usage)
    )
    return {
        "contacts": contacts_map,
        "raw_contacts": raw_contacts_map,
        "data": data_map,
        "distinct_data": distinct_data_map,
    }


_DISTINCT_DATA_PROHIBITING_COLUMNS = (
    "_id", "raw_contact_id", "name_raw_contact_id", "account_name", "account_type", "data_set",
    "account_type_and_data_set", "dirty", "sourceid", "version",
)

# ContactsContract.DisplayNameSources
DNS_UNDEFINED, DNS_EMAIL, DNS_PHONE, DNS_ORGANIZATION, DNS_NICKNAME, DNS_STRUCTURED_NAME = 0, 10, 20, 30, 35, 40


class ContactsProvider(Provider):
    """``content://com.android.contacts`` raw_contacts, data, contacts (ContactsProvider2).

    Aggregation is one contact per raw contact (the aggregator never merges
    here).  Display names follow the DisplayNameSources priority; name
    splitting, sort keys, phonebook labels and lookup keys are simplified
    (Android uses ICU collation for those).
    """

    spec = CONTACTS

    # -- queries -------------------------------------------------------------

    def query(
        self, uri: Uri, projection: list[str] | None, selection: str | None, sort: str | None
    ) -> Cursor | None:
        match = _match(uri, _CONTACTS_URIS)
        maps = _contacts_projection_maps()
        distinct = False
        if match in ("DATA", "DATA_ID", "PHONES", "PHONES_ID", "EMAILS", "EMAILS_ID",
                     "RAW_CONTACTS_ID_DATA"):
            tables = "view_data data"
            in_projection = projection is None or any(c in projection for c in _DISTINCT_DATA_PROHIBITING_COLUMNS)
            distinct = not in_projection
            pmap = maps["distinct_data"] if distinct else maps["data"]
            where = self._account_id_where(uri)
            if match in ("PHONES", "PHONES_ID"):
                where += f" AND mimetype_id = {self._mimetype_id_or_none(MIME_PHONE)}"
            if match in ("EMAILS", "EMAILS_ID"):
                where += f" AND mimetype_id = {self._mimetype_id_or_none(MIME_EMAIL)}"
            if match in ("DATA_ID", "PHONES_ID", "EMAILS_ID"):
                where += f" AND _id={int(uri.segments[-1])}"
            if match == "RAW_CONTACTS_ID_DATA":
                where += f" AND raw_contact_id={int(uri.segments[1])}"
        elif match in ("RAW_CONTACTS", "RAW_CONTACTS_ID"):
            tables, pmap = "view_raw_contacts", maps["raw_contacts"]
            where = self._account_id_where(uri)
            if match == "RAW_CONTACTS_ID":
                where += f" AND _id={int(uri.segments[1])}"
        elif match in ("CONTACTS", "CONTACTS_ID"):
            tables, pmap = "view_contacts", maps["contacts"]
            if match == "CONTACTS_ID":
                where = f"_id={int(uri.segments[1])}"
            else:
                where = self._directory_where(uri)
        else:
            raise ProviderError(IAE, _exception_message(None, uri))
        columns = _strict_projection(pmap, projection)
        sql = build_query(columns, tables, where, selection, _localized_sort_order(sort), distinct=distinct)
        return run_query(self.conn, sql)

    def _mimetype_id_or_none(self, mimetype: str) -> str:
        row = self.conn.execute("SELECT _id FROM mimetypes WHERE mimetype=?", (mimetype,)).fetchone()
        return "NULL" if row is None else str(row[0])

    def _account_from_uri(self, uri: Uri) -> tuple[str | None, str | None, str | None]:
        name, acct_type = uri.param("account_name"), uri.param("account_type")
        if bool(name) != bool(acct_type):
            raise ProviderError(
                IAE, _exception_message("Must specify both or neither of ACCOUNT_NAME and ACCOUNT_TYPE", uri)
            )
        return name, acct_type, uri.param("data_set")

    def _account_id_where(self, uri: Uri) -> str:
        """``appendAccountIdFromParameter``."""
        name, acct_type, data_set = self._account_from_uri(uri)
        if not name:
            return "1"
        account_id = self._account_id_or_none(name, acct_type, data_set)
        return "(1=2)" if account_id is None else f"(account_id={account_id})"

    def _directory_where(self, uri: Uri) -> str:
        """``appendLocalDirectoryAndAccountSelectionIfNeeded`` for the default directory."""
        where = "(_id IN default_directory)"
        name, acct_type, data_set = self._account_from_uri(uri)
        if name:
            account_id = self._account_id_or_none(name, acct_type, data_set)
            if account_id is None:
                return "(1=2)"
            where += f" AND (_id IN (SELECT contact_id FROM raw_contacts WHERE account_id={account_id}))"
        return where

    def _account_id_or_none(self, name: str | None, acct_type: str | None, data_set: str | None) -> int | None:
        row = self.conn.execute(
            "SELECT _id FROM accounts WHERE account_name IS ? AND account_type IS ? AND data_set IS ?",
            (name, acct_type, data_set),
        ).fetchone()
        return None if row is None else int(row[0])

    # -- inserts -------------------------------------------------------------

    def insert(self, uri: Uri, values: Values) -> str | None:
        match = _match(uri, _CONTACTS_URIS)
        values = dict(values)
        if match == "CONTACTS":
            raise ProviderError(UOE, "Aggregate contacts are created automatically")
        if match not in ("RAW_CONTACTS", "RAW_CONTACTS_ID_DATA", "DATA"):
            raise ProviderError(UOE, _exception_message(None, uri))
        with write_txn(self.conn) as conn:
            if match == "RAW_CONTACTS":
                row_id = self._insert_raw_contact(conn, uri, values)
            else:
                if match == "RAW_CONTACTS_ID_DATA":
                    values["raw_contact_id"] = uri.segments[1]
                row_id = self._insert_data(conn, values)
        return None if row_id < 0 else f"{uri}/{row_id}"

    def _resolve_account(self, uri: Uri, values: Values) -> tuple[str | None, str | None, str | None]:
        """``AccountResolver.resolveAccount``: both or neither of name and type."""
        uri_name, uri_type = uri.param("account_name"), uri.param("account_type")
        partial_uri = bool(uri_name) != bool(uri_type)
        if uri_name is None and uri_type is None and "account_name" not in values and "account_type" not in values:
            return None, None, None
        v_name = get_as_string(values.get("account_name"))
        v_type = get_as_string(values.get("account_type"))
        if partial_uri or bool(v_name) != bool(v_type):
            raise ProviderError(
                IAE, _exception_message("Must specify both or neither of ACCOUNT_NAME and ACCOUNT_TYPE", uri)
            )
        if v_name and uri_name:
            if (uri_name, uri_type) != (v_name, v_type):
                raise ProviderError(
                    IAE, _exception_message("When both specified, ACCOUNT_NAME and ACCOUNT_TYPE must match", uri)
                )
            name, acct_type = v_name, v_type
        elif uri_name:
            name, acct_type = uri_name, uri_type
        elif v_name:
            name, acct_type = v_name, v_type
        else:
            return None, None, None
        data_set = uri.param("data_set")
        if data_set is None:
            data_set = get_as_string(values.get("data_set"))
        return name, acct_type, data_set

    def _get_or_create_account_id(self, conn: sqlite3.Connection, account: tuple[str | None, str | None, str | None]) -> int:
        account_id = self._account_id_or_none(*account)
        if account_id is not None:
            return account_id
        cur = conn.execute(
            "INSERT INTO accounts (account_name, account_type, data_set) VALUES (?, ?, ?)", account
        )
        return int(cur.lastrowid or -1)

    def _insert_raw_contact(self, conn: sqlite3.Connection, uri: Uri, values: Values) -> int:
        """``ContactsProvider2.insertRawContact`` plus the end-of-transaction aggregation."""
        account = self._resolve_account(uri, values)
        account_id = self._get_or_create_account_id(conn, account)
        for key in ("account_name", "account_type", "data_set"):
            values.pop(key, None)
        values["account_id"] = account_id
        values["contact_id"] = None
        if get_as_long(values.get("deleted")) not in (None, 0):
            values["aggregation_mode"] = 3  # AGGREGATION_MODE_DISABLED
        values.setdefault("pinned", 0)
        raw_id = db_insert(conn, "raw_contacts", values, "contact_id")
        if raw_id > 0:
            self._aggregate(conn, raw_id)
        return raw_id

    def _mimetype_id(self, conn: sqlite3.Connection, mimetype: str) -> int:
        """``ContactsDatabaseHelper.getMimeTypeId``: look up, else insert."""
        row = conn.execute("SELECT _id FROM mimetypes WHERE mimetype=?", (mimetype,)).fetchone()
        if row is not None:
            return int(row[0])
        return int(conn.execute("INSERT INTO mimetypes(mimetype) VALUES (?)", (mimetype,)).lastrowid or -1)

    def _insert_data(self, conn: sqlite3.Connection, values: Values) -> int:
        """``ContactsProvider2.insertData`` and the mimetype's DataRowHandler."""
        raw_id = get_as_long(values.get("raw_contact_id"))
        if raw_id is None:
            raise ProviderError(IAE, "raw_contact_id is required")
        mimetype = get_as_string(values.get("mimetype"))
        if not mimetype:
            raise ProviderError(IAE, "mimetype is required")
        package = get_as_string(values.pop("res_package", None))
        if package is not None:
            row = conn.execute("SELECT _id FROM packages WHERE package=?", (package,)).fetchone()
            values["package_id"] = row[0] if row else conn.execute(
                "INSERT INTO packages(package) VALUES (?)", (package,)
            ).lastrowid
        values["mimetype_id"] = self._mimetype_id(conn, mimetype)
        del values["mimetype"]
        if mimetype == MIME_NAME:
            _fix_structured_name(values)
        elif mimetype == MIME_PHONE:
            number = get_as_string(values.get("data1"))
            if number is not None and "data4" not in values:
                e164 = format_e164(number, current_country_iso())
                if e164:
                    values["data4"] = e164
        data_id = db_insert(conn, "data", values)
        if data_id > 0 and mimetype == MIME_PHONE:
            number = get_as_string(values.get("data1"))
            if number:
                normalized = get_as_string(values.get("data4")) or _dialable_digits(number)
                conn.execute(
                    "INSERT INTO phone_lookup (data_id, raw_contact_id, normalized_number, min_match) "
                    "VALUES (?, ?, ?, ?)",
                    (data_id, raw_id, normalized, min_match_key(normalized)),
                )
        if data_id > 0:
            conn.execute("UPDATE raw_contacts SET dirty=1 WHERE _id=?", (raw_id,))
            self._update_display_name(conn, raw_id)
        return data_id

    # -- aggregation & display names ---------------------------------------

    def _aggregate(self, conn: sqlite3.Connection, raw_id: int) -> None:
        """Give a new raw contact its own aggregate contact, as the aggregator would."""
        row = conn.execute(
            "SELECT raw_contacts.deleted, accounts.account_name, accounts.account_type "
            "FROM raw_contacts JOIN accounts ON (raw_contacts.account_id=accounts._id) "
            "WHERE raw_contacts._id=?",
            (raw_id,),
        ).fetchone()
        if row is None or row[0]:
            return
        contact_id = conn.execute(
            "INSERT INTO contacts (name_raw_contact_id, contact_last_updated_timestamp) VALUES (?, ?)",
            (raw_id, now_ms()),
        ).lastrowid
        conn.execute("UPDATE raw_contacts SET contact_id=?, aggregation_needed=0 WHERE _id=?", (contact_id, raw_id))
        conn.execute("INSERT OR IGNORE INTO default_directory (_id) VALUES (?)", (contact_id,))
        if row[1] is None and row[2] is None:
            conn.execute("INSERT OR IGNORE INTO visible_contacts (_id) VALUES (?)", (contact_id,))
        self._update_display_name(conn, raw_id)

    def _update_display_name(self, conn: sqlite3.Connection, raw_id: int) -> None:
        """``ContactsProvider2.updateRawContactDisplayName`` and the aggregate's name data."""
        best: tuple[int, str | None, str | None] = (DNS_UNDEFINED, None, None)
        rows = conn.execute(
            "SELECT mimetype, data1, data2, data3, data4, data5, data7, data8, data9 FROM data "
            "JOIN mimetypes ON (data.mimetype_id=mimetypes._id) WHERE raw_contact_id=? ORDER BY data._id",
            (raw_id,),
        ).fetchall()
        has_phone = 0
        for mimetype, d1, d2, d3, d4, d5, *_ in rows:
            source, name, alt = DNS_UNDEFINED, None, None
            if mimetype == MIME_NAME and d1:
                source, name, alt = DNS_STRUCTURED_NAME, d1, _alternative_name(d1, d2, d3, d5)
            elif mimetype == MIME_NICKNAME and d1:
                source, name = DNS_NICKNAME, d1
            elif mimetype == MIME_ORGANIZATION and (d1 or d4):
                source, name = DNS_ORGANIZATION, d1 or d4
            elif mimetype == MIME_PHONE and d1:
                source, name = DNS_PHONE, d1
            elif mimetype == MIME_EMAIL and d1:
                source, name = DNS_EMAIL, d1
            if mimetype == MIME_PHONE and d1:
                has_phone = 1
            if source > best[0]:
                best = (source, name, alt or name)
        source, name, alt = best
        label, bucket = _phonebook_label(name)
        alt_label, alt_bucket = _phonebook_label(alt)
        conn.execute(
            "UPDATE raw_contacts SET display_name_source=?, display_name=?, display_name_alt=?, "
            "sort_key=?, sort_key_alt=?, phonebook_label=?, phonebook_bucket=?, phonebook_label_alt=?, "
            "phonebook_bucket_alt=? WHERE _id=?",
            (source, name, alt, name, alt, label, bucket, alt_label, alt_bucket, raw_id),
        )
        row = conn.execute(
            "SELECT raw_contacts.contact_id, accounts.account_type, accounts.data_set, accounts.account_name, "
            "raw_contacts.sourceid FROM raw_contacts JOIN accounts ON (raw_contacts.account_id=accounts._id) "
            "WHERE raw_contacts._id=?",
            (raw_id,),
        ).fetchone()
        if row is None or row[0] is None:
            return
        contact_id, acct_type, data_set, acct_name, source_id = row
        type_with_set = acct_type if data_set is None or acct_type is None else f"{acct_type}/{data_set}"
        lookup = _lookup_key(type_with_set, acct_name, raw_id, source_id, name)
        conn.execute(
            "UPDATE contacts SET has_phone_number=?, lookup=?, contact_last_updated_timestamp=? WHERE _id=?",
            (has_phone, lookup, now_ms(), contact_id),
        )

    # -- update / delete -----------------------------------------------------

    def update(self, uri: Uri, values: Values, selection: str | None) -> int:
        match = _match(uri, _CONTACTS_URIS)
        values = dict(values)
        with write_txn(self.conn) as conn:
            if match in ("RAW_CONTACTS", "RAW_CONTACTS_ID"):
                if match == "RAW_CONTACTS_ID":
                    selection = concatenate_where(f"_id={int(uri.segments[1])}", selection)
                ids = [r[0] for r in _int_rows(run_query(conn, build_query(
                    ["_id"], "view_raw_contacts", self._account_id_where(uri), selection)))]
                for key in ("account_name", "account_type", "data_set", "contact_id"):
                    values.pop(key, None)
                count = 0
                for raw_id in ids:
                    if values:
                        count += db_update(conn, "raw_contacts", values, f"_id={raw_id}")
                    if "starred" in values:
                        conn.execute(
                            "UPDATE contacts SET starred=(SELECT starred FROM raw_contacts WHERE _id=?) "
                            "WHERE _id=(SELECT contact_id FROM raw_contacts WHERE _id=?)",
                            (raw_id, raw_id),
                        )
                return count
            if match in ("DATA", "DATA_ID", "PHONES", "PHONES_ID", "EMAILS", "EMAILS_ID"):
                if match.endswith("_ID"):
                    selection = concatenate_where(f"_id={int(uri.segments[-1])}", selection)
                rows = _int_rows(run_query(conn, build_query(
                    ["_id", "raw_contact_id"], "view_data", self._account_id_where(uri), selection)))
                values.pop("mimetype", None)
                values.pop("raw_contact_id", None)
                count = 0
                for data_id, raw_id in rows:
                    if values:
                        count += db_update(conn, "data", values, f"_id={data_id}")
                    self._update_display_name(conn, raw_id)
                return count
            raise ProviderError(UOE, _exception_message(None, uri))

    def delete(self, uri: Uri, selection: str | None) -> int:
        match = _match(uri, _CONTACTS_URIS)
        with write_txn(self.conn) as conn:
            if match in ("RAW_CONTACTS", "RAW_CONTACTS_ID"):
                if match == "RAW_CONTACTS_ID":
                    selection = concatenate_where(f"_id={int(uri.segments[1])}", selection)
                rows = _int_rows(run_query(conn, build_query(
                    ["_id", "contact_id"], "view_raw_contacts", self._account_id_where(uri), selection)))
                return sum(self._delete_raw_contact(conn, raw_id, uri.bool_param("caller_is_syncadapter"))
                           for raw_id, _ in rows)
            if match in ("DATA", "DATA_ID", "PHONES", "PHONES_ID", "EMAILS", "EMAILS_ID"):
                if match.endswith("_ID"):
                    selection = concatenate_where(f"_id={int(uri.segments[-1])}", selection)
                rows = _int_rows(run_query(conn, build_query(
                    ["_id", "raw_contact_id"], "view_data", self._account_id_where(uri), selection)))
                count = 0
                for data_id, raw_id in rows:
                    count += db_delete(conn, "data", f"_id={data_id}")
                    conn.execute("UPDATE raw_contacts SET dirty=1 WHERE _id=?", (raw_id,))
                    self._update_display_name(conn, raw_id)
                return count
            if match == "CONTACTS":
                return 0  # "TODO" in ContactsProvider2 too
            if match == "CONTACTS_ID":
                contact_id = int(uri.segments[1])
                raw_ids = [r[0] for r in conn.execute("SELECT _id FROM raw_contacts WHERE contact_id=?", (contact_id,))]
                for raw_id in raw_ids:
                    self._delete_raw_contact(conn, raw_id, uri.bool_param("caller_is_syncadapter"))
                return 1 if raw_ids else 0
            raise ProviderError(UOE, _exception_message(None, uri))

    def _delete_raw_contact(self, conn: sqlite3.Connection, raw_id: int, sync_adapter: bool) -> int:
        """``ContactsProvider2.deleteRawContact``: local ones go at once, synced ones are marked."""
        row = conn.execute(
            "SELECT raw_contacts.contact_id, accounts.account_name, accounts.account_type "
            "FROM raw_contacts JOIN accounts ON (raw_contacts.account_id=accounts._id) WHERE raw_contacts._id=?",
            (raw_id,),
        ).fetchone()
        if row is None:
            return 0
        contact_id, name, acct_type = row
        if contact_id is not None:
            siblings = conn.execute("SELECT COUNT(1) FROM raw_contacts WHERE contact_id=?", (contact_id,)).fetchone()[0]
            if siblings == 1:
                conn.execute(
                    "INSERT OR REPLACE INTO deleted_contacts (contact_id, contact_deleted_timestamp) VALUES (?, ?)",
                    (contact_id, now_ms()),
                )
                conn.execute("DELETE FROM contacts WHERE _id = ?", (contact_id,))
        if sync_adapter or (name is None and acct_type is None):
            return conn.execute("DELETE FROM raw_contacts WHERE _id=?", (raw_id,)).rowcount
        conn.execute(
            "UPDATE raw_contacts SET deleted=1, aggregation_mode=3, contact_id=NULL, dirty=1 WHERE _id=?",
            (raw_id,),
        )
        conn.execute("DELETE FROM default_directory WHERE _id=?", (contact_id,))
        conn.execute("DELETE FROM visible_contacts WHERE _id=?", (contact_id,))
        return 1

    def get_type(self, uri: Uri) -> str | None:
        match = _match(uri, _CONTACTS_URIS)
        types = {
            "CONTACTS": "vnd.android.cursor.dir/contact",
            "CONTACTS_ID": "vnd.android.cursor.item/contact",
            "RAW_CONTACTS": "vnd.android.cursor.dir/raw_contact",
            "RAW_CONTACTS_ID": "vnd.android.cursor.item/raw_contact",
            "DATA": "vnd.android.cursor.dir/data",
            "PHONES": "vnd.android.cursor.dir/phone_v2",
            "PHONES_ID": "vnd.android.cursor.item/phone_v2",
            "EMAILS": "vnd.android.cursor.dir/email_v2",
            "EMAILS_ID": "vnd.android.cursor.item/email_v2",
        }
        if match == "DATA_ID":
            row = self.conn.execute(
                "SELECT mimetype FROM data JOIN mimetypes ON (data.mimetype_id=mimetypes._id) WHERE data._id=?",
                (int(uri.segments[1]),),
            ).fetchone()
            return None if row is None else row[0]
        return types.get(match or "")


def _int_rows(cursor: Cursor) -> list[tuple[int, ...]]:
    """Rows of id columns as ints (NULL ids become 0)."""
    return [tuple(int(v) if isinstance(v, (int, float, str)) else 0 for v in row) for row in cursor.rows]


def _localized_sort_order(sort: str | None) -> str | None:
    """``ContactsProvider2.getLocalizedSortOrder``: sort keys sort by bucket first."""
    if not sort:
        return sort
    key, space, suffix = sort.partition(" ")
    suffix = space + suffix
    if key == "sort_key":
        return f"phonebook_bucket{suffix}, {sort}"
    if key == "sort_key_alt":
        return f"phonebook_bucket_alt{suffix}, {sort}"
    return sort


def _cjk_style(text: str) -> int | None:
    """FullNameStyle of a CJK name (CHINESE 3, JAPANESE 4, KOREAN 5), else None."""
    if any("\u3040" <= c <= "\u30ff" for c in text):
        return 4
    if any("\uac00" <= c <= "\ud7a3" or "\u1100" <= c <= "\u11ff" for c in text):
        return 5
    if any("\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf" for c in text):
        return 3
    return None


def _fix_structured_name(values: Values) -> None:
    """``DataRowHandlerForStructuredName.fixStructuredNameComponents``, simplified.

    A display name alone is split into given (data2), middle (data5) and
    family (data3) names -- family first for CJK names, last otherwise; parts
    alone are joined into the display name (data1).
    """
    display = get_as_string(values.get("data1"))
    order = ("data4", "data2", "data5", "data3", "data6")
    parts = {k: get_as_string(values.get(k)) for k in order}
    if display and not any(parts.values()):
        style = _cjk_style(display)
        tokens = display.split()
        if style is not None:
            if len(tokens) == 1 and style == 3 and len(display) > 1:
                tokens = [display[0], display[1:]]
            if tokens:
                values["data3"] = tokens[0]
            if len(tokens) > 1:
                values["data2"] = " ".join(tokens[1:])
        elif len(tokens) == 1:
            values["data2"] = tokens[0]
        elif len(tokens) > 1:
            values["data2"] = tokens[0]
            if len(tokens) > 2:
                values["data5"] = " ".join(tokens[1:-1])
            values["data3"] = tokens[-1]
        values.setdefault("data10", style if style is not None else 1)  # FullNameStyle
    elif not display and any(parts.values()):
        names = [p for p in parts.values() if p]
        if _cjk_style("".join(names)) is not None:
            names = [p for p in (parts["data3"], parts["data5"], parts["data2"]) if p]
        values["data1"] = " ".join(names)


def _alternative_name(display: str, given: str | None, family: str | None, middle: str | None) -> str:
    """Family-name-first form used for ``display_name_alt`` (CJK names are already so)."""
    if family and given and _cjk_style(display) is None:
        first = f"{given} {middle}" if middle else given
        return f"{family}, {first}"
    return display


def _phonebook_label(name: str | None) -> tuple[str | None, int | None]:
    """Address-book index label/bucket: A-Z, or '#' for the rest (ICU's English buckets)."""
    if name is None:
        return None, None
    first = name.strip()[:1].upper()
    if "A" <= first <= "Z":
        return first, ord(first) - ord("A") + 1
    return "#", 27


def _lookup_key(account_type: str | None, account_name: str | None, raw_id: int, source_id: str | None,
                display_name: str | None) -> str:
    """``ContactLookupKey.appendToLookupKey`` (the name part is not ICU's collation key)."""
    account_hash = 0
    if account_type is not None and account_name is not None:
        account_hash = (java_string_hash(account_type) ^ java_string_hash(account_name)) & 0xFFF
    if source_id is None:
        normalized = "".join(c for c in (display_name or "").upper() if c.isalnum())
        return f"{account_hash}r{raw_id}-{normalized.encode('utf-8').hex().upper()}"
    return f"{account_hash}i{source_id}"
