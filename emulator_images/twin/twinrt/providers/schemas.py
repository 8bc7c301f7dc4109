"""The provider databases' AOSP schemas and the rows a fresh provider writes.

The CREATE statements are in ``mmssms.sql``, ``calllog.sql`` and
``contacts2.sql`` next to this module, one statement per line, exactly as
Android executes them (SQLite keeps that text in ``sqlite_master``, where a
reader of the file sees it).  ``init_databases`` creates all three at boot.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .. import paths
from .db import DbSpec, open_db
from .java import now_ms

SCHEMA_DIR = Path(__file__).resolve().parent


def load_schema(name: str) -> tuple[str, ...]:
    """The statements of one ``.sql`` file here: one per line, ``--`` lines are comments."""
    text = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line.strip() and not line.startswith("--"))


MMSSMS_SCHEMA: tuple[str, ...] = load_schema("mmssms.sql")
MMSSMS = DbSpec(paths.MMSSMS_DB, 69, MMSSMS_SCHEMA)

CALLLOG_SCHEMA: tuple[str, ...] = load_schema("calllog.sql")
CALLLOG = DbSpec(paths.CALLLOG_DB, 12, CALLLOG_SCHEMA)

CONTACTS_SCHEMA: tuple[str, ...] = load_schema("contacts2.sql")

MIME_EMAIL = "vnd.android.cursor.item/email_v2"
MIME_PHONE = "vnd.android.cursor.item/phone_v2"
MIME_NAME = "vnd.android.cursor.item/name"
MIME_ORGANIZATION = "vnd.android.cursor.item/organization"
MIME_NICKNAME = "vnd.android.cursor.item/nickname"
MIME_GROUP_MEMBERSHIP = "vnd.android.cursor.item/group_membership"

# ContactsDatabaseHelper.COMMON_MIME_TYPES, inserted in this order on open.
COMMON_MIME_TYPES = (
    MIME_EMAIL,
    "vnd.android.cursor.item/im",
    MIME_NICKNAME,
    MIME_ORGANIZATION,
    MIME_PHONE,
    "vnd.android.cursor.item/sip_address",
    MIME_NAME,
    "vnd.android.cursor.item/postal-address_v2",
    "vnd.android.cursor.item/identity",
    "vnd.android.cursor.item/photo",
    MIME_GROUP_MEMBERSHIP,
    "vnd.android.cursor.item/note",
    "vnd.android.cursor.item/contact_event",
    "vnd.android.cursor.item/website",
    "vnd.android.cursor.item/relation",
    "vnd.com.google.cursor.item/contact_misc",
)


def _seed_contacts(conn: sqlite3.Connection) -> None:
    """Rows a fresh ContactsProvider writes at first open."""
    conn.execute("INSERT INTO _sync_state_metadata VALUES(1)")
    conn.execute(
        "INSERT INTO properties VALUES('database_time_created', ?)", (str(now_ms()),)
    )
    for mimetype in COMMON_MIME_TYPES:
        conn.execute("INSERT INTO mimetypes(mimetype) VALUES (?)", (mimetype,))
    conn.execute(
        "INSERT INTO directories VALUES(0,'com.android.providers.contacts','com.android.contacts',"
        "2130968582,'com.android.providers.contacts:string/default_directory',NULL,NULL,NULL,0,2,3)"
    )
    conn.execute(
        "INSERT INTO directories VALUES(1,'com.android.providers.contacts','com.android.contacts',"
        "2130968583,'com.android.providers.contacts:string/local_invisible_directory',NULL,NULL,NULL,0,2,3)"
    )


CONTACTS = DbSpec(paths.CONTACTS_DB, 1701, CONTACTS_SCHEMA, _seed_contacts)


def init_databases() -> None:
    """Create every provider database that does not exist yet (called by init at boot)."""
    for spec in (CONTACTS, CALLLOG, MMSSMS):
        open_db(spec).close()
