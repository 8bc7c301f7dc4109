"""SmsProvider (authority ``sms``): TelephonyProvider's SMS half.

URI table, insert defaults, query/update/delete as ``SmsProvider`` does them,
and the thread bookkeeping of ``MmsSmsProvider``/``MmsSmsDatabaseHelper``
(canonical addresses, ``getThreadId``, ``updateThreads``).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Sequence

from .base import Provider
from .db import db_delete, db_insert, db_update, open_db, run_query, write_txn
from .errors import Cursor, IAE, ProviderError, UOE, Values
from .java import (
    JavaHashMap,
    build_query,
    concatenate_where,
    get_as_integer,
    get_as_long,
    get_as_string,
    now_ms,
    sql_escape_string,
)
from .phone import _MIN_MATCH, extract_addr_spec, is_email_address, is_phone_number
from .request import Uri, _match, calling_package
from .schemas import CONTACTS, MIME_PHONE, MMSSMS

# SmsManager.getDefaultSmsSubscriptionId() on an emulator with one SIM.
DEFAULT_SUB_ID = 1
INVALID_SUBSCRIPTION_ID = -1

SMS_TYPE_ALL, SMS_INBOX, SMS_SENT, SMS_DRAFT, SMS_OUTBOX, SMS_FAILED, SMS_QUEUED = range(7)

_SMS_URIS = (
    ("", "ALL"),
    ("#", "ALL_ID"),
    ("inbox", "INBOX"),
    ("inbox/#", "INBOX_ID"),
    ("sent", "SENT"),
    ("sent/#", "SENT_ID"),
    ("draft", "DRAFT"),
    ("draft/#", "DRAFT_ID"),
    ("outbox", "OUTBOX"),
    ("outbox/#", "OUTBOX_ID"),
    ("undelivered", "UNDELIVERED"),
    ("failed", "FAILED"),
    ("failed/#", "FAILED_ID"),
    ("queued", "QUEUED"),
    ("conversations", "CONVERSATIONS"),
    ("conversations/#", "CONVERSATIONS_ID"),
    ("raw", "RAW_MESSAGE"),
    ("raw/permanentDelete", "RAW_MESSAGE_PERMANENT_DELETE"),
    ("attachments", "ATTACHMENT"),
    ("attachments/#", "ATTACHMENT_ID"),
    ("threadID", "NEW_THREAD_ID"),
    ("threadID/#", "QUERY_THREAD_ID"),
    ("status/#", "STATUS_ID"),
    ("sr_pending", "STATUS_PENDING"),
    ("icc", "ALL_ICC"),
    ("icc/#", "ICC"),
    ("icc_subId/#", "ALL_ICC_SUBID"),
    ("icc_subId/#/#", "ICC_SUBID"),
    ("sim", "ALL_ICC"),
    ("sim/#", "ICC"),
)
_SMS_BOX = {
    "ALL": SMS_TYPE_ALL,
    "INBOX": SMS_INBOX,
    "SENT": SMS_SENT,
    "DRAFT": SMS_DRAFT,
    "OUTBOX": SMS_OUTBOX,
    "FAILED": SMS_FAILED,
    "QUEUED": SMS_QUEUED,
}


class SmsProvider(Provider):
    """``content://sms`` as TelephonyProvider's SmsProvider serves it.

    The sub-id/emergency-number selection filters of recent Android are not
    applied: the twin has one subscription and every row is visible.
    """

    spec = MMSSMS

    def query(
        self, uri: Uri, projection: list[str] | None, selection: str | None, sort: str | None
    ) -> Cursor | None:
        match = _match(uri, _SMS_URIS)
        table = "sms"
        where: str | None = None
        columns: list[str] | None = projection
        if match in _SMS_BOX:
            if _SMS_BOX[match] != SMS_TYPE_ALL:
                where = f"type={_SMS_BOX[match]}"
        elif match == "UNDELIVERED":
            where = "(type=4 OR type=5 OR type=6)"
        elif match == "ALL_ID":
            where = f"(_id = {uri.segments[0]})"
        elif match in ("INBOX_ID", "FAILED_ID", "SENT_ID", "DRAFT_ID", "OUTBOX_ID"):
            where = f"(_id = {uri.segments[1]})"
        elif match == "CONVERSATIONS_ID":
            try:
                thread_id = int(uri.segments[1])
            except ValueError:
                return None
            if not -(2**31) <= thread_id < 2**31:
                return None
            where = f"thread_id = {thread_id}"
        elif match == "CONVERSATIONS":
            table = (
                "sms, (SELECT thread_id AS group_thread_id, MAX(date) AS group_date, "
                "COUNT(*) AS msg_count FROM sms GROUP BY thread_id) AS groups"
            )
            where = "sms.thread_id=groups.group_thread_id AND sms.date=groups.group_date"
            pmap = (
                JavaHashMap()
                .put("snippet", "sms.body AS snippet")
                .put("thread_id", "sms.thread_id AS thread_id")
                .put("msg_count", "groups.msg_count AS msg_count")
            )
            if projection:
                columns = [pmap.get(c) or c for c in projection]
            else:
                columns = [v for _, v in pmap.items()]
        elif match in ("RAW_MESSAGE", "STATUS_PENDING", "ATTACHMENT"):
            table = {"RAW_MESSAGE": "raw", "STATUS_PENDING": "sr_pending", "ATTACHMENT": "attachments"}[match]
        elif match == "ATTACHMENT_ID":
            table, where = "attachments", f"(sms_id = {uri.segments[1]})"
        elif match == "STATUS_ID":
            columns, where = ["status"], f"(_id = {uri.segments[1]})"
        elif match == "QUERY_THREAD_ID":
            table, where = "canonical_addresses", f"(_id = {uri.segments[1]})"
        else:
            # SmsProvider logs "Invalid request" and returns a null cursor.
            return None
        order = sort or ("date DESC" if table == "sms" else None)
        return run_query(self.conn, build_query(columns, table, where, selection, order))

    # -- insert ------------------------------------------------------------

    def insert(self, uri: Uri, values: Values) -> str | None:
        match = _match(uri, _SMS_URIS)
        table = "sms"
        if match == "ALL":
            msg_type = get_as_integer(values.get("type"))
            msg_type = SMS_INBOX if msg_type is None else msg_type
        elif match in _SMS_BOX:
            msg_type = _SMS_BOX[match]
        elif match in ("RAW_MESSAGE", "STATUS_PENDING", "ATTACHMENT", "NEW_THREAD_ID"):
            msg_type = SMS_TYPE_ALL
            table = {
                "RAW_MESSAGE": "raw",
                "STATUS_PENDING": "sr_pending",
                "ATTACHMENT": "attachments",
                "NEW_THREAD_ID": "canonical_addresses",
            }[match]
        else:
            return None  # "Invalid request" (ICC storage is not emulated either)
        with write_txn(self.conn) as conn:
            return self._insert(conn, uri, dict(values), table, msg_type)

    def _insert(self, conn: sqlite3.Connection, uri: Uri, values: Values, table: str, msg_type: int) -> str | None:
        if table == "sms":
            if "date" not in values:
                values["date"] = now_ms()
            if "type" not in values and msg_type != SMS_TYPE_ALL:
                values["type"] = msg_type
            thread_id = get_as_long(values.get("thread_id"))
            address = get_as_string(values.get("address"))
            if (thread_id is None or thread_id == 0) and address:
                values["thread_id"] = get_or_create_thread_id(conn, [address])
            if get_as_integer(values.get("type")) == SMS_DRAFT:
                db_delete(
                    conn,
                    "sms",
                    f"thread_id={sql_escape_string(get_as_string(values.get('thread_id')) or '')} AND type=3",
                )
            if msg_type == SMS_INBOX:
                if get_as_long(values.get("person")) is None and address:
                    person = _lookup_person(address)
                    if person is not None:
                        values["person"] = person
            else:
                values["read"] = 1
            values["creator"] = calling_package()
        if "sub_id" in values:
            sub_id = get_as_integer(values["sub_id"])
        else:
            sub_id = DEFAULT_SUB_ID
            values["sub_id"] = sub_id
        row_id = db_insert(conn, table, values, "body")
        if row_id <= 0:
            return None
        if table == "sms":
            db_insert(
                conn,
                "words",
                {
                    "_id": row_id,
                    "index_text": get_as_string(values.get("body")),
                    "source_id": row_id,
                    "table_to_use": 1,
                    "sub_id": sub_id,
                },
                "index_text",
            )
            return f"content://sms/{row_id}"
        return f"{uri}/{row_id}"

    # -- update / delete -----------------------------------------------------

    def update(self, uri: Uri, values: Values, selection: str | None) -> int:
        match = _match(uri, _SMS_URIS)
        table, extra = "sms", None
        if match == "RAW_MESSAGE":
            table = "raw"
        elif match == "STATUS_PENDING":
            table = "sr_pending"
        elif match in ("ALL", "FAILED", "QUEUED", "INBOX", "SENT", "DRAFT", "OUTBOX", "CONVERSATIONS"):
            pass
        elif match == "ALL_ID":
            extra = f"_id={uri.segments[0]}"
        elif match in ("INBOX_ID", "FAILED_ID", "SENT_ID", "DRAFT_ID", "OUTBOX_ID", "STATUS_ID"):
            extra = f"_id={uri.segments[1]}"
        elif match == "CONVERSATIONS_ID":
            if re.fullmatch(r"[+-]?\d+", uri.segments[1]):
                extra = f"thread_id={uri.segments[1]}"
        else:
            raise ProviderError(UOE, f"URI {uri} not supported")
        values = dict(values)
        if table == "sms":
            values.pop("creator", None)  # only SYSTEM/PHONE may change CREATOR
        with write_txn(self.conn) as conn:
            return db_update(conn, table, values, concatenate_where(selection, extra))

    def delete(self, uri: Uri, selection: str | None) -> int:
        match = _match(uri, _SMS_URIS)
        with write_txn(self.conn) as conn:
            if match == "ALL":
                count = db_delete(conn, "sms", selection)
                if count:
                    update_threads(conn, selection)
                return count
            if match == "ALL_ID":
                try:
                    message_id = int(uri.segments[0])
                    if not -(2**31) <= message_id < 2**31:
                        raise ValueError
                except ValueError:
                    raise ProviderError(IAE, f"Bad message id: {uri.segments[0]}") from None
                return delete_one_sms(conn, message_id)
            if match == "CONVERSATIONS_ID":
                try:
                    thread_id = int(uri.segments[1])
                except ValueError:
                    raise ProviderError(IAE, f"Bad conversation thread id: {uri.segments[1]}") from None
                count = db_delete(conn, "sms", concatenate_where(f"thread_id={thread_id}", selection))
                update_threads(conn, f"(thread_id = {thread_id})")
                return count
            if match == "RAW_MESSAGE":
                return db_update(conn, "raw", {"deleted": 1}, selection)
            if match == "RAW_MESSAGE_PERMANENT_DELETE":
                return db_delete(conn, "raw", selection)
            if match == "STATUS_PENDING":
                return db_delete(conn, "sr_pending", selection)
            if match in ("ALL_ICC", "ALL_ICC_SUBID", "ICC", "ICC_SUBID"):
                return 0
            raise ProviderError(IAE, "Unknown URL")

    def get_type(self, uri: Uri) -> str | None:
        n = len(uri.segments)
        if n == 0:
            return "vnd.android.cursor.dir/sms"
        if n == 1:
            return "vnd.android.cursor.item/sms" if uri.segments[0].isdigit() else "vnd.android.cursor.dir/sms"
        if n == 2:
            return "vnd.android.cursor.item/sms" if uri.segments[1].isdigit() else "vnd.android.cursor.dir/sms"
        return None


def _get_single_address_id(conn: sqlite3.Connection, address: str) -> int:
    """``MmsSmsProvider.getSingleAddressId``: find or add a canonical address."""
    refined = address.lower() if is_email_address(address) else address
    if is_phone_number(address):
        row = conn.execute(
            "SELECT _id FROM canonical_addresses WHERE address=? OR PHONE_NUMBERS_EQUAL(address, ?, 0, ?)",
            (refined, refined, _MIN_MATCH),
        ).fetchone()
    else:
        row = conn.execute("SELECT _id FROM canonical_addresses WHERE address=?", (refined,)).fetchone()
    if row is not None:
        return int(row[0])
    cur = conn.execute(
        "INSERT INTO canonical_addresses(address, sub_id) VALUES (?, ?)", (refined, DEFAULT_SUB_ID)
    )
    return int(cur.lastrowid or -1)


def get_or_create_thread_id(conn: sqlite3.Connection, recipients: Sequence[str]) -> int:
    """``Threads.getOrCreateThreadId`` + ``MmsSmsProvider.getThreadId``.

    A thread is keyed by the space-separated, sorted canonical address ids of
    its recipients; an unseen set of recipients gets a new thread row.
    """
    ids: set[int] = set()
    for recipient in recipients:
        if is_email_address(recipient):
            recipient = extract_addr_spec(recipient)
        if recipient != "insert-address-token":
            address_id = _get_single_address_id(conn, recipient)
            if address_id != -1:
                ids.add(address_id)
    if not ids:
        raise ProviderError(IAE, "Unable to find or allocate a thread ID.")
    recipient_ids = " ".join(str(i) for i in sorted(ids))
    row = conn.execute("SELECT _id FROM threads WHERE recipient_ids=?", (recipient_ids,)).fetchone()
    if row is not None:
        return int(row[0])
    now = now_ms()
    values: Values = {
        "date": now - now % 1000,
        "recipient_ids": recipient_ids,
        "sub_id": DEFAULT_SUB_ID,
        "message_count": 0,
    }
    if len(recipients) > 1:
        values["type"] = 1  # Threads.BROADCAST_THREAD
    return db_insert(conn, "threads", values)


def _remove_unreferenced_canonical_addresses(conn: sqlite3.Connection) -> None:
    ids: set[int] = set()
    for (recipients,) in conn.execute("SELECT recipient_ids FROM threads"):
        for part in (recipients or "").split(" "):
            if part.lstrip("-").isdigit():
                ids.add(int(part))
    if ids:
        conn.execute(f"DELETE FROM canonical_addresses WHERE _id NOT IN ({','.join(map(str, sorted(ids)))})")
    else:
        conn.execute("DELETE FROM canonical_addresses")


def update_threads(conn: sqlite3.Connection, where: str | None) -> None:
    """``MmsSmsDatabaseHelper.updateThreads`` after messages were deleted."""
    where = where or "1"
    exists = f" WHERE EXISTS ( SELECT _id FROM sms WHERE thread_id = threads._id AND ({where}) LIMIT 1 );"
    try:
        conn.execute("SAVEPOINT threads")
        rows = conn.execute(
            "DELETE FROM threads WHERE _id NOT IN ( SELECT DISTINCT thread_id FROM sms WHERE thread_id "
            "IS NOT NULL UNION SELECT DISTINCT thread_id FROM pdu WHERE thread_id IS NOT NULL)"
        ).rowcount
        if rows > 0:
            _remove_unreferenced_canonical_addresses(conn)
        conn.execute(
            " UPDATE threads SET message_count = ( SELECT COUNT(sms._id) FROM sms"
            " WHERE thread_id = threads._id AND sms.type != 3 ) + ( SELECT COUNT(pdu._id) FROM pdu"
            " WHERE thread_id = threads._id AND (m_type=132 OR m_type=130 OR m_type=128)"
            " AND msg_box != 3 )" + exists
        )
        conn.execute(
            " WITH matches AS ( SELECT date * 1000 AS date, sub AS snippet, sub_cs AS snippet_cs, thread_id"
            " FROM pdu WHERE thread_id = threads._id UNION SELECT date, body AS snippet, 0 AS snippet_cs,"
            " thread_id FROM sms WHERE thread_id = threads._id ORDER BY date DESC LIMIT 1 )"
            " UPDATE threads SET date = (SELECT date FROM matches), snippet = (SELECT snippet FROM matches),"
            " snippet_cs = (SELECT snippet_cs FROM matches)" + exists
        )
        conn.execute(
            " UPDATE threads SET error = EXISTS ( SELECT type FROM sms WHERE type=5"
            " AND thread_id = threads._id )" + exists
        )
        conn.execute("RELEASE threads")
    except sqlite3.Error:
        # MmsSmsDatabaseHelper logs and carries on.
        conn.execute("ROLLBACK TO threads")
        conn.execute("RELEASE threads")


def delete_one_sms(conn: sqlite3.Connection, message_id: int) -> int:
    """``MmsSmsDatabaseHelper.deleteOneSms``."""
    row = conn.execute(f"SELECT thread_id FROM sms WHERE _id={message_id}").fetchone()
    thread_id = int(row[0]) if row is not None and row[0] is not None else -1
    count = db_delete(conn, "sms", f"_id={message_id}")
    if thread_id > 0:
        update_threads(conn, f"(thread_id = {thread_id})")
    return count


def _lookup_person(address: str) -> int | None:
    """SmsProvider fills ``person`` for inbox messages from the contacts provider.

    Legacy ``Contacts.Phones.PERSON_ID`` is the raw contact id.  Failures are
    logged and ignored there, and here.
    """
    try:
        conn = open_db(CONTACTS)
        try:
            row = conn.execute(
                "SELECT data.raw_contact_id FROM data JOIN mimetypes ON (data.mimetype_id=mimetypes._id) "
                "JOIN raw_contacts ON (raw_contacts._id=data.raw_contact_id) "
                "WHERE mimetypes.mimetype=? AND raw_contacts.deleted=0 "
                "AND PHONE_NUMBERS_EQUAL(data.data1, ?, 0, ?) ORDER BY data._id LIMIT 1",
                (MIME_PHONE, address, _MIN_MATCH),
            ).fetchone()
        finally:
            conn.close()
    except (sqlite3.Error, OSError):
        return None
    return None if row is None else int(row[0])
