"""CallLogProvider (authority ``call_log``): calls and voicemails in calllog.db.

Strict column checks, the voicemail/hidden-account filters and the computed
values ``DbModifierWithNotification`` adds, as in ContactsProvider's
``CallLogProvider``.
"""

from __future__ import annotations

import sqlite3

from .base import Provider
from .db import db_delete, db_update, run_query, write_txn
from .errors import Cursor, IAE, ProviderError, UOE, Value, Values
from .java import (
    JavaArrayMap,
    JavaHashMap,
    _sql_value,
    build_query,
    concatenate_clauses,
    get_as_integer,
    get_as_string,
    now_ms,
    sql_escape_string,
)
from .phone import _MIN_MATCH, current_country_iso, format_e164
from .request import Uri, _match
from .schemas import CALLLOG

_CALLS_COLUMNS = (
    "_id number post_dial_digits via_number presentation date duration data_usage type features "
    "subscription_component_name subscription_id phone_account_hidden phone_account_address new "
    "voicemail_uri transcription transcription_state is_read name numbertype numberlabel countryiso "
    "geocoded_location lookup_uri matched_number normalized_number photo_id photo_uri formatted_number "
    "add_for_all_users last_modified call_screening_component_name call_screening_app_name block_reason "
    "missed_reason priority composer_photo_uri subject location "
    "is_call_log_phone_account_migration_pending is_business_call asserted_display_name"
).split()


def _calls_projection_map() -> JavaArrayMap:
    """``CallLogProvider.sCallsProjectionMap`` (an ArrayMap)."""
    pmap = JavaArrayMap()
    for column in _CALLS_COLUMNS:
        pmap.add(column)
    return pmap


_CALL_LOG_URIS = (
    ("calls", "CALLS"),
    ("calls/#", "CALLS_ID"),
    ("calls/filter/*", "CALLS_FILTER"),
    ("call_composer", "CALL_COMPOSER_NEW_PICTURE"),
    ("call_composer/*", "CALL_COMPOSER_PICTURE"),
)
_EXCLUDE_VOICEMAIL = "(type != 4)"
_EXCLUDE_HIDDEN = "(phone_account_hidden = 0)"
_LEGACY_UNKNOWN_NUMBERS = {"-1", "-2", "-3"}


def _strict_projection(pmap: JavaHashMap, projection: list[str] | None) -> list[str]:
    """``SQLiteQueryBuilder.computeProjection`` with a strict projection map."""
    if not projection:
        return [v for _, v in pmap.items()]
    out = []
    for column in projection:
        mapped = pmap.get(column)
        if mapped is None:
            raise ProviderError(IAE, f"Invalid column {column}")
        out.append(mapped)
    return out


class CallLogProvider(Provider):
    """``content://call_log/calls`` as ContactsProvider's CallLogProvider serves it."""

    spec = CALLLOG

    def _check_columns(self, values: Values) -> None:
        allowed = set(_CALLS_COLUMNS)
        for column in values:
            if column not in allowed:
                raise ProviderError(IAE, f"Column '{column}'. Is invalid.")

    def _voicemail_clause(self, uri: Uri) -> str | None:
        return None if uri.bool_param("allow_voicemails") else _EXCLUDE_VOICEMAIL

    def _check_voicemail_values(self, uri: Uri, values: Values) -> None:
        if get_as_integer(values.get("type")) == 4 and not uri.bool_param("allow_voicemails"):
            raise ProviderError(
                IAE,
                f"Uri {uri} cannot be used for voicemail record. Please set 'allow_voicemails=true' in the uri.",
            )

    def _call_id(self, uri: Uri) -> int:
        try:
            return int(uri.segments[1])
        except (ValueError, IndexError):
            raise ProviderError(IAE, f"Invalid call id in uri: {uri}") from None

    def query(
        self, uri: Uri, projection: list[str] | None, selection: str | None, sort: str | None
    ) -> Cursor | None:
        match = _match(uri, _CALL_LOG_URIS)
        clauses = [selection, self._voicemail_clause(uri), _EXCLUDE_HIDDEN]
        internal = None
        if match == "CALLS":
            pass
        elif match == "CALLS_ID":
            clauses.append(f"(_id = {self._call_id(uri)})")
        elif match == "CALLS_FILTER":
            number = uri.segments[2]
            internal = (
                f"PHONE_NUMBERS_EQUAL(number, {sql_escape_string(number)}, 0, {_MIN_MATCH})"
                if number
                else "presentation!=1"
            )
        else:
            raise ProviderError(IAE, f"Unknown URL {uri}")
        columns = _strict_projection(_calls_projection_map(), projection)
        limit = self._int_param(uri, "limit")
        offset = self._int_param(uri, "offset")
        limit_clause = f"{offset},{limit}" if limit > 0 else None
        sql = build_query(columns, "calls", internal, concatenate_clauses(*clauses), sort, limit_clause)
        return run_query(self.conn, sql)

    @staticmethod
    def _int_param(uri: Uri, key: str) -> int:
        value = uri.param(key)
        if value is None:
            return 0
        try:
            return int(value)
        except ValueError:
            raise ProviderError(
                IAE, f"Integer required for {key} parameter but value '{value}' was found instead."
            ) from None

    def insert(self, uri: Uri, values: Values) -> str | None:
        match = _match(uri, _CALL_LOG_URIS)
        if match in ("CALL_COMPOSER_NEW_PICTURE", "CALL_COMPOSER_PICTURE"):
            return None
        # Any other URI, even an unknown one, inserts into calls, as on Android.
        self._check_columns(values)
        self._check_voicemail_values(uri, values)
        values = dict(values)
        add_computed_call_values(values)
        values["last_modified"] = now_ms()
        with write_txn(self.conn) as conn:
            row_id = _insert_helper(conn, "calls", values)
        return f"{uri}/{row_id}" if row_id > 0 else None

    def update(self, uri: Uri, values: Values, selection: str | None) -> int:
        self._check_columns(values)
        self._check_voicemail_values(uri, values)
        match = _match(uri, _CALL_LOG_URIS)
        clauses = [selection, self._voicemail_clause(uri)]
        if match == "CALLS":
            pass
        elif match == "CALLS_ID":
            clauses.append(f"(_id = {self._call_id(uri)})")
        else:
            raise ProviderError(UOE, f"Cannot update URL: {uri}")
        values = dict(values)
        values["last_modified"] = now_ms()
        with write_txn(self.conn) as conn:
            return db_update(conn, "calls", values, concatenate_clauses(*clauses))

    def delete(self, uri: Uri, selection: str | None) -> int:
        match = _match(uri, _CALL_LOG_URIS)
        if match != "CALLS":
            raise ProviderError(UOE, f"Cannot delete that URL: {uri}")
        where = concatenate_clauses(selection, self._voicemail_clause(uri))
        with write_txn(self.conn) as conn:
            return db_delete(conn, "calls", where)

    def get_type(self, uri: Uri) -> str | None:
        match = _match(uri, _CALL_LOG_URIS)
        if match in ("CALLS", "CALLS_FILTER"):
            return "vnd.android.cursor.dir/calls"
        if match == "CALLS_ID":
            return "vnd.android.cursor.item/calls"
        if match == "CALL_COMPOSER_NEW_PICTURE":
            return None
        if match == "CALL_COMPOSER_PICTURE":
            return "application/octet-stream"
        raise ProviderError(IAE, f"Unknown URI: {uri}")


def add_computed_call_values(values: Values) -> None:
    """``DefaultCallLogInsertionHelper.addComputedValues``.

    The offline geocoder's text is not reproduced: parsable numbers get an
    empty location, as the geocoder gives for numbers it has no data for.
    """
    country = current_country_iso()
    values["countryiso"] = country
    number = get_as_string(values.get("number"))
    e164 = format_e164(number, country)
    values["geocoded_location"] = "" if e164 else None
    if number in _LEGACY_UNKNOWN_NUMBERS:
        values["presentation"] = 3
        values["number"] = ""
    if "normalized_number" not in values and number and e164:
        values["normalized_number"] = e164


def _insert_helper(conn: sqlite3.Connection, table: str, values: Values) -> int:
    """``DatabaseUtils.InsertHelper.insert``: every column bound, defaults via COALESCE.

    Failures are logged and return -1 there; likewise here.
    """
    info = conn.execute(f"PRAGMA table_info({table})").fetchall()
    names = [row[1] for row in info]
    lowered = {name.lower(): i for i, name in enumerate(names)}
    args: list[Value] = [None] * len(names)
    for key, value in values.items():
        index = lowered.get(key.lower())
        if index is None:
            return -1
        args[index] = _sql_value(value)
    placeholders = ",".join("?" if row[4] is None else f"COALESCE(?, {row[4]})" for row in info)
    sql = f"INSERT INTO {table} ({','.join(repr(n) for n in names)}) VALUES ({placeholders})"
    try:
        conn.execute("SAVEPOINT ins")
        cur = conn.execute(sql, args)
        conn.execute("RELEASE ins")
        return int(cur.lastrowid or -1)
    except sqlite3.Error:
        conn.execute("ROLLBACK TO ins")
        conn.execute("RELEASE ins")
        return -1
