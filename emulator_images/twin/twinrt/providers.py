"""The twin's content providers: AOSP schemas in SQLite at AOSP paths.

Android apps and ``adb shell content`` reach contacts, SMS and the call log
through content providers that own SQLite files.  The twin has no provider
processes, so each ``content`` invocation opens the same files directly and
re-enacts what the provider would do (defaults, thread ids, mimetype ids,
aggregate contacts, error messages).  Behaviour follows these AOSP sources:

* ``packages/providers/TelephonyProvider``: ``MmsSmsDatabaseHelper`` (schema,
  triggers, ``updateThreads``), ``SmsProvider`` (URI table, insert defaults,
  query/update/delete), ``MmsSmsProvider.getThreadId`` (canonical addresses);
* ``packages/providers/ContactsProvider``: ``CallLogDatabaseHelper`` and
  ``CallLogProvider`` (strict column checks, ``DbModifierWithNotification``),
  ``ContactsDatabaseHelper`` (tables, ``view_data`` & co.) and
  ``ContactsProvider2``/``AccountResolver``/``DataRowHandler*``.

Why the storage is set up as it is:

* Firmware services running as another uid (``system``, 1000) open these
  files directly, read-only, and must see new rows at once.  So the
  databases use the rollback journal (``journal_mode=DELETE``, as Android's
  ``MmsSmsDatabaseHelper`` does) and every command commits before it
  returns.  WAL is avoided because a WAL reader needs write access to the
  ``-shm`` file (and the ``-wal`` file to exist); a rollback-journal reader
  needs only read access to the database file.
* Files are made mode 0644 and their directories 0771 (like
  ``/data/user/0/<pkg>``) so that any uid can traverse to them and read them.
  Writers are expected to run as root, as ``adb shell`` does on the twin.
* Many ``content`` processes may run at once: every write is one
  ``BEGIN IMMEDIATE`` transaction and connections wait on a busy timeout.

Nothing here runs at import time.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from . import paths, props

Value = None | bool | int | float | str | bytes
Values = dict[str, Value]

BUSY_TIMEOUT_MS = 30_000
DB_FILE_MODE = 0o644
DB_DIR_MODE = 0o771
# SmsManager.getDefaultSmsSubscriptionId() on an emulator with one SIM.
DEFAULT_SUB_ID = 1
INVALID_SUBSCRIPTION_ID = -1

IAE = "java.lang.IllegalArgumentException"
UOE = "java.lang.UnsupportedOperationException"
ISE = "java.lang.IllegalStateException"


# --------------------------------------------------------------------------
# Errors and results
# --------------------------------------------------------------------------


class ProviderError(Exception):
    """An exception the Android provider would throw, under its Java name.

    ``content`` prints it as ``e.printStackTrace()`` would, so the Java class
    name matters as much as the message.
    """

    def __init__(self, java_class: str, message: str, *, remote: bool = True) -> None:
        super().__init__(message)
        self.java_class = java_class
        self.message = message
        # Thrown inside the provider (crossed Binder) rather than in ``content``.
        self.remote = remote

    def __str__(self) -> str:
        return f"{self.java_class}: {self.message}"


@dataclass
class Cursor:
    """Column names and rows, with SQLite's own value types kept."""

    columns: list[str]
    rows: list[tuple[Value, ...]]


def _sqlite_error(exc: sqlite3.Error, sql: str) -> ProviderError:
    """Map a sqlite3 error to the exception Android's SQLite wrapper throws.

    Android formats ``<sqlite message> (code N NAME)`` and, for errors while
    preparing a statement, appends ``, while compiling: <sql>``; constraint
    failures become ``SQLiteConstraintException``.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", None)
    msg = str(exc)
    if code is None:
        code, name = 1, "SQLITE_ERROR"
    java = "android.database.sqlite.SQLiteException"
    primary = code & 0xFF
    if primary == 19:
        java = "android.database.sqlite.SQLiteConstraintException"
    elif primary == 13:
        java = "android.database.sqlite.SQLiteFullException"
    elif primary in (5, 6):
        java = "android.database.sqlite.SQLiteDatabaseLockedException"
    text = f"{msg} (code {code} {name})"
    if primary == 1:
        text += f": , while compiling: {sql}"
    return ProviderError(java, text)


# --------------------------------------------------------------------------
# Java semantics the output depends on
# --------------------------------------------------------------------------


def java_string_hash(s: str) -> int:
    """``String.hashCode()``: over UTF-16 code units, 32-bit signed."""
    h = 0
    data = s.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] | (data[i + 1] << 8))) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


class JavaHashMap:
    """A ``java.util.HashMap<String,String>`` built by puts, for its iteration order.

    ``SQLiteQueryBuilder`` lists ``SELECT`` columns in the projection map's
    iteration order when no projection is given, so ``content query`` prints
    ContactsProvider2's columns in HashMap order.  For a map that only grew,
    that order is: by bucket ``spread(hash) & (capacity-1)``, ties in
    insertion order (resizes keep relative order).
    """

    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    def put(self, key: str, value: str) -> "JavaHashMap":
        self._items[key] = value
        return self

    def add(self, column: str, expression: str | None = None) -> "JavaHashMap":
        """``ProjectionMap.Builder.add``: ``column`` or ``expression AS column``."""
        return self.put(column, column if expression is None else f"{expression} AS {column}")

    def add_all(self, other: "JavaHashMap") -> "JavaHashMap":
        for key, value in other.items():
            self.put(key, value)
        return self

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str) -> str | None:
        return self._items.get(key)

    def items(self) -> list[tuple[str, str]]:
        cap = 16
        while len(self._items) > cap * 0.75:
            cap *= 2

        def bucket(key: str) -> int:
            h = java_string_hash(key) & 0xFFFFFFFF
            return (h ^ (h >> 16)) & (cap - 1)

        return sorted(self._items.items(), key=lambda kv: bucket(kv[0]))


class JavaArrayMap(JavaHashMap):
    """An ``android.util.ArrayMap``: iterates by signed hash, ties in insertion order."""

    def items(self) -> list[tuple[str, str]]:
        return sorted(self._items.items(), key=lambda kv: java_string_hash(kv[0]))


def to_float32(x: float) -> float:
    """``(float) x`` in Java: round to single precision, overflow to infinity."""
    if math.isnan(x) or math.isinf(x):
        return x
    try:
        return float(struct.unpack("<f", struct.pack("<f", x))[0])
    except OverflowError:
        # Values just past FLT_MAX still round to it; the rest overflow.
        if abs(x) < 3.4028235677973366e38:
            return math.copysign(3.4028234663852886e38, x)
        return math.copysign(math.inf, x)


def _java_fp_format(digits: str, exp10: int, negative: bool) -> str:
    """Lay out shortest digits like ``Float/Double.toString`` does."""
    sign = "-" if negative else ""
    value_exp = exp10  # value = 0.d1d2... * 10**value_exp
    if -3 < value_exp <= 7:  # 1e-3 <= |x| < 1e7: plain notation
        if value_exp <= 0:
            return f"{sign}0.{'0' * -value_exp}{digits}"
        int_part = digits[:value_exp].ljust(value_exp, "0")
        frac = digits[value_exp:] or "0"
        return f"{sign}{int_part}.{frac}"
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return f"{sign}{mantissa}E{value_exp - 1}"


def _shortest_digits(x: float, max_digits: int, same: Callable[[float], bool]) -> tuple[str, int]:
    for ndig in range(1, max_digits + 1):
        text = f"{x:.{ndig - 1}e}"
        if same(float(text)):
            break
    mant, _, exp = text.partition("e")
    digits = mant.replace(".", "").replace("-", "").rstrip("0") or "0"
    return digits, int(exp) + 1


def java_float_str(x: float) -> str:
    """``String.valueOf(float)``: what ``content query`` prints for REAL columns.

    Content.java reads REAL columns with ``cursor.getFloat`` so a stored double
    is first narrowed to float, then printed with the shortest digits that
    identify the float (Java's "computerized scientific notation" outside
    [1e-3, 1e7)).
    """
    f = to_float32(x)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    if f == 0.0:
        return "-0.0" if math.copysign(1.0, f) < 0 else "0.0"
    digits, exp10 = _shortest_digits(abs(f), 9, lambda y: to_float32(y) == abs(f))
    return _java_fp_format(digits, exp10, f < 0)


def java_double_str(x: float) -> str:
    """``String.valueOf(double)``, for ContentValues.getAsString on a Double."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    digits, exp10 = _shortest_digits(abs(x), 17, lambda y: y == abs(x))
    return _java_fp_format(digits, exp10, x < 0)


_JAVA_LONG = re.compile(r"[+-]?[0-9]+")


def _wrap(value: int, bits: int) -> int:
    mask = (1 << bits) - 1
    value &= mask
    return value - (1 << bits) if value >> (bits - 1) else value


def get_as_string(v: Value) -> str | None:
    """``ContentValues.getAsString``: ``String.valueOf`` of the stored object."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return java_double_str(v)
    if isinstance(v, bytes):
        return "[B@" + format(id(v) & 0xFFFFFFF, "x")
    return str(v)


def get_as_long(v: Value) -> int | None:
    """``ContentValues.getAsLong``: numbers narrow, strings parse strictly, else null."""
    if v is None or isinstance(v, (bool, bytes)):
        return None
    if isinstance(v, int):
        return _wrap(v, 64)
    if isinstance(v, float):
        if math.isnan(v):
            return 0
        return int(max(min(v, 2**63 - 1), -(2**63)))
    if _JAVA_LONG.fullmatch(v) and -(2**63) <= int(v) < 2**63:
        return int(v)
    return None


def get_as_integer(v: Value) -> int | None:
    """``ContentValues.getAsInteger``: like getAsLong but an ``int``."""
    if isinstance(v, str):
        if _JAVA_LONG.fullmatch(v) and -(2**31) <= int(v) < 2**31:
            return int(v)
        return None
    n = get_as_long(v)
    return None if n is None else _wrap(n, 32)


def _sql_value(v: Value) -> Value:
    """How ``DatabaseUtils.bindObjectToProgram`` stores a Java object."""
    if isinstance(v, bool):
        return 1 if v else 0
    return v


def sql_escape_string(s: str) -> str:
    """``DatabaseUtils.sqlEscapeString``."""
    return "'" + s.replace("'", "''") + "'"


def concatenate_where(a: str | None, b: str | None) -> str | None:
    """``DatabaseUtils.concatenateWhere``."""
    if not a:
        return b
    if not b:
        return a
    return f"({a}) AND ({b})"


def concatenate_clauses(*clauses: str | None) -> str | None:
    """ContactsProvider's ``DbQueryUtils.concatenateClauses`` (SelectionBuilder.build)."""
    parts = [f"({c})" for c in clauses if c]
    return " AND ".join(parts) if parts else None


def build_query(
    columns: Sequence[str] | None,
    tables: str,
    internal_where: str | None,
    selection: str | None,
    order_by: str | None = None,
    limit: str | None = None,
    distinct: bool = False,
) -> str:
    """``SQLiteQueryBuilder.buildQuery`` with ``computeWhere``'s bracketing."""
    cols = ", ".join(c for c in columns if c) if columns else "*"
    where_parts = []
    if internal_where:
        where_parts.append(f"({internal_where})")
    if selection:
        where_parts.append(f"({selection})")
    sql = "SELECT " + ("DISTINCT " if distinct else "") + cols + " FROM " + tables
    if where_parts:
        sql += " WHERE " + " AND ".join(where_parts)
    if order_by:
        sql += " ORDER BY " + order_by
    if limit:
        sql += " LIMIT " + limit
    return sql


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------
# URIs
# --------------------------------------------------------------------------


@dataclass
class Uri:
    """The parts of ``android.net.Uri`` the providers look at."""

    text: str
    scheme: str
    authority: str | None
    segments: list[str]
    query: dict[str, list[str]] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def bool_param(self, name: str) -> bool:
        """``Uri.getBooleanQueryParameter``: false only for missing, "false" or "0"."""
        v = self.param(name)
        if v is None:
            return False
        return v.lower() not in ("false", "0")

    def __str__(self) -> str:
        return self.text


def parse_uri(text: str) -> Uri:
    parts = urlsplit(text)
    authority = parts.netloc if text.find("//") == len(parts.scheme) + 1 else None
    segments = [unquote(s) for s in parts.path.split("/") if s]
    query = parse_qs(parts.query, keep_blank_values=True)
    return Uri(text, parts.scheme, authority or None, segments, query)


def _match(uri: Uri, table: Sequence[tuple[str, str]]) -> str | None:
    """``UriMatcher.match``: ``#`` is a run of digits, ``*`` any one segment."""
    for pattern, code in table:
        pat = [p for p in pattern.split("/") if p]
        if len(pat) != len(uri.segments):
            continue
        for want, got in zip(pat, uri.segments):
            if want == "#":
                if not got.isascii() or not got.isdigit():
                    break
            elif want != "*" and want != got:
                break
        else:
            return code
    return None


# --------------------------------------------------------------------------
# Calling identity (what the provider learns from Binder)
# --------------------------------------------------------------------------


def calling_package() -> str | None:
    """``Content.resolveCallingPackage``: "root" for uid 0, the shell package for 2000."""
    uid = os.getuid()
    if uid == 0:
        return "root"
    if uid == 2000:
        return "com.android.shell"
    return None


def _exception_message(message: str | None, uri: Uri) -> str:
    """``ContactsDatabaseHelper.exceptionMessage``."""
    uid = os.getuid()
    names = {0: "root", 1000: "android.uid.system:1000", 2000: "shell"}
    text = (f"{message}; " if message is not None else "") + f"URI: {uri}"
    text += f", calling user: {names.get(uid, str(uid))}"
    if uid == 2000:
        text += ", calling package:com.android.shell"
    return text


# --------------------------------------------------------------------------
# Phone numbers and addresses (PhoneNumberUtils / Patterns, simplified)
# --------------------------------------------------------------------------

_PHONE = re.compile(r"(\+[0-9]+[\- .]*)?(\([0-9]+\)[\- .]*)?([0-9][0-9\- .]+[0-9])")
_EMAIL = re.compile(
    r"[a-zA-Z0-9+._%\-]{1,256}@[a-zA-Z0-9][a-zA-Z0-9\-]{0,64}(\.[a-zA-Z0-9][a-zA-Z0-9\-]{0,25})+"
)
_NAME_ADDR = re.compile(r"\s*(\"[^\"]*\"|[^<>\"]+)\s*<([^<>]+)>\s*")
_MIN_MATCH = 7  # config_phonenumber_compare_min_match


def extract_addr_spec(address: str) -> str:
    """``Telephony.Mms.extractAddrSpec``: ``Name <addr>`` to ``addr``."""
    m = _NAME_ADDR.fullmatch(address)
    return m.group(2) if m else address


def is_email_address(address: str | None) -> bool:
    """``Telephony.Mms.isEmailAddress``."""
    if not address:
        return False
    return _EMAIL.fullmatch(extract_addr_spec(address)) is not None


def is_phone_number(number: str | None) -> bool:
    """``Telephony.Mms.isPhoneNumber`` (``Patterns.PHONE`` must match it all)."""
    return bool(number) and _PHONE.fullmatch(number or "") is not None


def _dialable_digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit() or c == "+")


def phone_numbers_equal(a: str | None, b: str | None, strict: int = 0, min_match: int = _MIN_MATCH) -> int:
    """The ``PHONE_NUMBERS_EQUAL`` SQL function, loosely as Android's compareLoosely.

    Numbers are equal when their digits agree from the end for at least
    ``min_match`` digits, or entirely when either is shorter.
    """
    if a is None or b is None:
        return 0
    da = _dialable_digits(a).lstrip("+")
    db = _dialable_digits(b).lstrip("+")
    if not da or not db:
        return int(a == b)
    common = 0
    for x, y in zip(reversed(da), reversed(db)):
        if x != y:
            break
        common += 1
    if common >= min_match:
        return 1
    return int(common == len(da) == len(db))


def current_country_iso() -> str:
    """``CountryMonitor.getCountryIso``: the SIM's country, else US."""
    for name in ("gsm.sim.operator.iso-country", "gsm.operator.iso-country"):
        iso = props.get(name).split(",")[0].strip()
        if iso:
            return iso.upper()
    return "US"


_NANP = {"US", "CA", "PR", "VI", "GU", "AS", "MP", "BS", "BB", "JM", "TT", "DO"}


def format_e164(number: str | None, country_iso: str) -> str | None:
    """``PhoneNumberUtils.formatNumberToE164``, for plain and NANP numbers only."""
    if not number or re.search(r"[A-Za-z@]", number):
        return None
    digits = "".join(c for c in number if c.isdigit())
    if number.strip().startswith("+"):
        return "+" + digits if 7 <= len(digits) <= 15 else None
    if country_iso.upper() in _NANP:
        if len(digits) == 10 and digits[0] not in "01":
            return "+1" + digits
        if len(digits) == 11 and digits[0] == "1":
            return "+" + digits
    return None


def min_match_key(number: str) -> str:
    """``PhoneNumberUtils.toCallerIDMinMatch``: last 7 dialable digits, reversed."""
    digits = _dialable_digits(number)
    return digits[::-1][:_MIN_MATCH]


# --------------------------------------------------------------------------
# Database files
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DbSpec:
    device_path: str
    version: int  # SQLiteOpenHelper stores DATABASE_VERSION in PRAGMA user_version
    schema: tuple[str, ...]
    seed: Callable[[sqlite3.Connection], None] | None = None


def _collate(a: str, b: str) -> int:
    ka, kb = a.casefold(), b.casefold()
    return (ka > kb) - (ka < kb) or (a > b) - (a < b)


def _register_functions(conn: sqlite3.Connection) -> None:
    """Android registers these on its connections; the schema and queries use them."""
    conn.create_function("PHONE_NUMBERS_EQUAL", -1, phone_numbers_equal, deterministic=True)
    conn.create_function(
        "_PHONE_NUMBER_STRIPPED_REVERSED",
        1,
        lambda n: None if n is None else _dialable_digits(str(n))[::-1],
        deterministic=True,
    )
    for name in ("PHONEBOOK", "LOCALIZED", "UNICODE"):
        conn.create_collation(name, _collate)


def _ensure_dir(path: Path) -> None:
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing[:2]:  # databases/ and the package directory, as on Android
        try:
            os.chmod(created, DB_DIR_MODE)
        except OSError:
            pass


def open_db(spec: DbSpec) -> sqlite3.Connection:
    """Open (creating on first use) one provider database.

    Creation happens inside ``BEGIN IMMEDIATE`` and re-checks the version so
    that concurrent first uses create the schema once.
    """
    path = paths.under(spec.device_path)
    _ensure_dir(path.parent)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _register_functions(conn)
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "delete":
            conn.execute("PRAGMA journal_mode=DELETE")
        if conn.execute("PRAGMA user_version").fetchone()[0] != spec.version:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for stmt in spec.schema:
                        conn.execute(stmt)
                    if spec.seed is not None:
                        spec.seed(conn)
                    conn.execute(f"PRAGMA user_version={spec.version}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        try:
            if path.stat().st_mode & 0o777 != DB_FILE_MODE:
                os.chmod(path, DB_FILE_MODE)
        except OSError:
            pass
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def write_txn(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One committed write transaction: readers see all of it or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def run_query(conn: sqlite3.Connection, sql: str) -> Cursor:
    try:
        cur = conn.execute(sql)
        rows = cur.fetchall()
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, sql) from None
    return Cursor([d[0] for d in cur.description or ()], rows)


def run_exec(conn: sqlite3.Connection, sql: str, args: Sequence[Value] = ()) -> int:
    try:
        return conn.execute(sql, [_sql_value(a) for a in args]).rowcount
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, sql) from None


def db_insert(conn: sqlite3.Connection, table: str, values: Values, null_column_hack: str | None = None) -> int:
    """``SQLiteDatabase.insert``: errors are logged and swallowed, returning -1.

    Column names go into the SQL unquoted, as Android does.
    """
    if values:
        cols = list(values)
        sql = f"INSERT INTO {table}({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
        args = [_sql_value(values[c]) for c in cols]
    else:
        sql = f"INSERT INTO {table}({null_column_hack}) VALUES (NULL)"
        args = []
    try:
        conn.execute("SAVEPOINT ins")
        cur = conn.execute(sql, args)
        conn.execute("RELEASE ins")
        return int(cur.lastrowid or -1)
    except sqlite3.Error:
        conn.execute("ROLLBACK TO ins")
        conn.execute("RELEASE ins")
        return -1


def db_update(conn: sqlite3.Connection, table: str, values: Values, where: str | None) -> int:
    """``SQLiteDatabase.update`` (errors propagate, unlike insert)."""
    if not values:
        raise ProviderError(IAE, "Empty values")
    cols = list(values)
    sql = f"UPDATE {table} SET " + ",".join(f"{c}=?" for c in cols)
    if where:
        sql += f" WHERE {where}"
    return run_exec(conn, sql, [values[c] for c in cols])


def db_delete(conn: sqlite3.Connection, table: str, where: str | None) -> int:
    sql = f"DELETE FROM {table}" + (f" WHERE {where}" if where else "")
    return run_exec(conn, sql)


ANDROID_METADATA = (
    "CREATE TABLE android_metadata (locale TEXT)",
    "INSERT INTO android_metadata VALUES ('en_US')",
)


# --------------------------------------------------------------------------
# mmssms.db (MmsSmsDatabaseHelper.onCreate, DATABASE_VERSION 69)
# --------------------------------------------------------------------------

_UPDATE_THREAD_COUNT_ON_NEW = (
    "  UPDATE threads SET message_count = "
    "     (SELECT COUNT(sms._id) FROM sms LEFT JOIN threads "
    "      ON threads._id = thread_id"
    "      WHERE thread_id = new.thread_id"
    "        AND sms.type != 3) + "
    "     (SELECT COUNT(pdu._id) FROM pdu LEFT JOIN threads "
    "      ON threads._id = thread_id"
    "      WHERE thread_id = new.thread_id"
    "        AND (m_type=132 OR m_type=130 OR m_type=128)"
    "        AND msg_box != 3) "
    "  WHERE threads._id = new.thread_id; "
)
_UPDATE_THREAD_COUNT_ON_OLD = _UPDATE_THREAD_COUNT_ON_NEW.replace("new.thread_id", "old.thread_id")
_SMS_UPDATE_THREAD_READ_BODY = (
    "  UPDATE threads SET read = "
    "    CASE (SELECT COUNT(*)"
    "          FROM sms"
    "          WHERE read = 0"
    "            AND thread_id = threads._id)"
    "      WHEN 0 THEN 1"
    "      ELSE 0"
    "    END"
    "  WHERE threads._id = new.thread_id; "
)
_SMS_UPDATE_THREAD_DATE_SNIPPET_COUNT_ON_UPDATE = (
    "BEGIN"
    "  UPDATE threads SET"
    "    date = (strftime('%s','now') * 1000), "
    "    snippet = new.body, "
    "    snippet_cs = 0"
    "  WHERE threads._id = new.thread_id; "
    + _UPDATE_THREAD_COUNT_ON_NEW
    + _SMS_UPDATE_THREAD_READ_BODY
    + "END;"
)
_PDU_UPDATE_THREAD_CONSTRAINTS = (
    "  WHEN new.m_type=132    OR new.m_type=130    OR new.m_type=128 "
)
_PDU_UPDATE_THREAD_READ_BODY = (
    "  UPDATE threads SET read = "
    "    CASE (SELECT COUNT(*)"
    "          FROM pdu"
    "          WHERE read = 0"
    "            AND thread_id = threads._id "
    "            AND (m_type=132 OR m_type=130 OR m_type=128)) "
    "      WHEN 0 THEN 1"
    "      ELSE 0"
    "    END"
    "  WHERE threads._id = new.thread_id; "
)
_PDU_UPDATE_THREAD_DATE_SNIPPET_COUNT_ON_UPDATE = (
    "BEGIN"
    "  UPDATE threads SET"
    "    date = (strftime('%s','now') * 1000), "
    "    snippet = new.sub, "
    "    snippet_cs = new.sub_cs"
    "  WHERE threads._id = new.thread_id; "
    + _UPDATE_THREAD_COUNT_ON_NEW
    + _PDU_UPDATE_THREAD_READ_BODY
    + "END;"
)
_UPDATE_THREAD_SNIPPET_SNIPPET_CS_ON_DELETE = (
    "  UPDATE threads SET snippet = "
    "   (SELECT snippet FROM"
    "     (SELECT date * 1000 AS date, sub AS snippet, thread_id FROM pdu"
    "      UNION SELECT date, body AS snippet, thread_id FROM sms)"
    "    WHERE thread_id = OLD.thread_id ORDER BY date DESC LIMIT 1) "
    "  WHERE threads._id = OLD.thread_id; "
    "  UPDATE threads SET snippet_cs = "
    "   (SELECT snippet_cs FROM"
    "     (SELECT date * 1000 AS date, sub_cs AS snippet_cs, thread_id FROM pdu"
    "      UNION SELECT date, 0 AS snippet_cs, thread_id FROM sms)"
    "    WHERE thread_id = OLD.thread_id ORDER BY date DESC LIMIT 1) "
    "  WHERE threads._id = OLD.thread_id; "
)
_PENDING_INSERT = (
    "  INSERT INTO pending_msgs"
    "    (proto_type,     msg_id,     msg_type,     err_type,     err_code,     retry_index,"
    "     due_time)   VALUES     (1,      new._id,      new.m_type,0,0,0,0);"
)

MMSSMS_SCHEMA: tuple[str, ...] = ANDROID_METADATA + (
    # createMmsTables
    "CREATE TABLE pdu (_id INTEGER PRIMARY KEY AUTOINCREMENT,thread_id INTEGER,date INTEGER,"
    "date_sent INTEGER DEFAULT 0,msg_box INTEGER,read INTEGER DEFAULT 0,m_id TEXT,sub TEXT,"
    "sub_cs INTEGER,ct_t TEXT,ct_l TEXT,exp INTEGER,m_cls TEXT,m_type INTEGER,v INTEGER,"
    "m_size INTEGER,pri INTEGER,rr INTEGER,rpt_a INTEGER,resp_st INTEGER,st INTEGER,tr_id TEXT,"
    "retr_st INTEGER,retr_txt TEXT,retr_txt_cs INTEGER,read_status INTEGER,ct_cls INTEGER,"
    "resp_txt TEXT,d_tm INTEGER,d_rpt INTEGER,locked INTEGER DEFAULT 0,sub_id INTEGER DEFAULT -1, "
    "seen INTEGER DEFAULT 0,creator TEXT,text_only INTEGER DEFAULT 0);",
    "CREATE TABLE addr (_id INTEGER PRIMARY KEY,msg_id INTEGER,contact_id INTEGER,address TEXT,"
    "type INTEGER,charset INTEGER,sub_id INTEGER DEFAULT -1);",
    "CREATE TABLE part (_id INTEGER PRIMARY KEY AUTOINCREMENT,mid INTEGER,seq INTEGER DEFAULT 0,"
    "ct TEXT,name TEXT,chset INTEGER,cd TEXT,fn TEXT,cid TEXT,cl TEXT,ctt_s INTEGER,ctt_t TEXT,"
    "_data TEXT,text TEXT,sub_id INTEGER DEFAULT -1);",
    "CREATE TABLE rate (sent_time INTEGER,sub_id INTEGER DEFAULT -1);",
    "CREATE TABLE drm (_id INTEGER PRIMARY KEY,_data TEXT,sub_id INTEGER DEFAULT -1);",
    "CREATE VIEW pdu_restricted AS SELECT * FROM pdu WHERE (msg_box=1 OR msg_box=2) AND (m_type!=130);",
    # createSmsTables
    "CREATE TABLE sms (_id INTEGER PRIMARY KEY,thread_id INTEGER,address TEXT,person INTEGER,"
    "date INTEGER,date_sent INTEGER DEFAULT 0,protocol INTEGER,read INTEGER DEFAULT 0,"
    "status INTEGER DEFAULT -1,type INTEGER,reply_path_present INTEGER,subject TEXT,body TEXT,"
    "service_center TEXT,locked INTEGER DEFAULT 0,sub_id INTEGER DEFAULT -1, "
    "error_code INTEGER DEFAULT -1, creator TEXT,seen INTEGER DEFAULT 0);",
    "CREATE TABLE raw (_id INTEGER PRIMARY KEY,date INTEGER,reference_number INTEGER,count INTEGER,"
    "sequence INTEGER,destination_port INTEGER,address TEXT,sub_id INTEGER DEFAULT -1, pdu TEXT,"
    "deleted INTEGER DEFAULT 0,message_body TEXT,display_originating_addr TEXT);",
    "CREATE TABLE attachments (sms_id INTEGER,content_url TEXT,offset INTEGER,sub_id INTEGER DEFAULT -1);",
    "CREATE TABLE sr_pending (reference_number INTEGER,action TEXT,data TEXT,sub_id INTEGER DEFAULT -1);",
    "CREATE VIEW sms_restricted AS SELECT * FROM sms WHERE type=1 OR type=2;",
    # createCommonTables
    "CREATE TABLE canonical_addresses (_id INTEGER PRIMARY KEY AUTOINCREMENT,address TEXT,"
    "sub_id INTEGER DEFAULT -1);",
    "CREATE TABLE threads (_id INTEGER PRIMARY KEY AUTOINCREMENT,date INTEGER DEFAULT 0,"
    "message_count INTEGER DEFAULT 0,recipient_ids TEXT,snippet TEXT,snippet_cs INTEGER DEFAULT 0,"
    "read INTEGER DEFAULT 1,archived INTEGER DEFAULT 0,type INTEGER DEFAULT 0,error INTEGER DEFAULT 0,"
    "has_attachment INTEGER DEFAULT 0,sub_id INTEGER DEFAULT -1);",
    "CREATE TABLE pending_msgs (_id INTEGER PRIMARY KEY,proto_type INTEGER,msg_id INTEGER,"
    "msg_type INTEGER,err_type INTEGER,err_code INTEGER,retry_index INTEGER NOT NULL DEFAULT 0,"
    "due_time INTEGER,pending_sub_id INTEGER DEFAULT -1, last_try INTEGER);",
    # createCommonTriggers
    "CREATE TRIGGER sms_update_thread_on_insert AFTER INSERT ON sms "
    + _SMS_UPDATE_THREAD_DATE_SNIPPET_COUNT_ON_UPDATE,
    "CREATE TRIGGER sms_update_thread_date_subject_on_update AFTER  UPDATE OF date, body, type  ON sms "
    + _SMS_UPDATE_THREAD_DATE_SNIPPET_COUNT_ON_UPDATE,
    "CREATE TRIGGER sms_update_thread_read_on_update AFTER  UPDATE OF read  ON sms BEGIN "
    + _SMS_UPDATE_THREAD_READ_BODY
    + "END;",
    "CREATE TRIGGER update_threads_error_on_update_mms   AFTER UPDATE OF err_type ON pending_msgs "
    "  WHEN (OLD.err_type < 10 AND NEW.err_type >= 10)    OR (OLD.err_type >= 10 AND NEW.err_type < 10) "
    "BEGIN  UPDATE threads SET error =     CASE      WHEN NEW.err_type >= 10 THEN error + 1"
    "      ELSE error - 1    END   WHERE _id =   (SELECT DISTINCT thread_id    FROM pdu"
    "    WHERE _id = NEW.msg_id); END;",
    "CREATE TRIGGER update_threads_error_on_update_sms   AFTER UPDATE OF type ON sms"
    "  WHEN (OLD.type != 5 AND NEW.type = 5)    OR (OLD.type = 5 AND NEW.type != 5) "
    "BEGIN   UPDATE threads SET error =     CASE      WHEN NEW.type = 5 THEN error + 1"
    "      ELSE error - 1    END   WHERE _id = NEW.thread_id; END;",
    # createMmsTriggers
    "CREATE TRIGGER part_cleanup DELETE ON pdu BEGIN   DELETE FROM part  WHERE mid=old._id;END;",
    "CREATE TRIGGER addr_cleanup DELETE ON pdu BEGIN   DELETE FROM addr  WHERE msg_id=old._id;END;",
    "CREATE TRIGGER cleanup_delivery_and_read_report AFTER DELETE ON pdu WHEN old.m_type=128 "
    "BEGIN   DELETE FROM pdu  WHERE (m_type=134    OR m_type=136)    AND m_id=old.m_id; END;",
    "CREATE TRIGGER update_threads_on_insert_part  AFTER INSERT ON part "
    " WHEN new.ct != 'text/plain' AND new.ct != 'application/smil'  BEGIN "
    "  UPDATE threads SET has_attachment=1 WHERE _id IN "
    "   (SELECT pdu.thread_id FROM part JOIN pdu ON pdu._id=part.mid "
    "     WHERE part._id=new._id LIMIT 1);  END",
    "CREATE TRIGGER update_threads_on_update_part  AFTER UPDATE of mid ON part "
    " WHEN new.ct != 'text/plain' AND new.ct != 'application/smil'  BEGIN "
    "  UPDATE threads SET has_attachment=1 WHERE _id IN "
    "   (SELECT pdu.thread_id FROM part JOIN pdu ON pdu._id=part.mid "
    "     WHERE part._id=new._id LIMIT 1);  END",
    "CREATE TRIGGER update_threads_on_delete_part  AFTER DELETE ON part "
    " WHEN old.ct != 'text/plain' AND old.ct != 'application/smil'  BEGIN "
    "  UPDATE threads SET has_attachment =    CASE     (SELECT COUNT(*) FROM part JOIN pdu "
    "     WHERE pdu.thread_id = threads._id "
    "     AND part.ct != 'text/plain' AND part.ct != 'application/smil' "
    "     AND part.mid = pdu._id)   WHEN 0 THEN 0    ELSE 1    END;  END",
    "CREATE TRIGGER update_threads_on_update_pdu  AFTER UPDATE of thread_id ON pdu  BEGIN "
    "  UPDATE threads SET has_attachment=1 WHERE _id IN "
    "   (SELECT pdu.thread_id FROM part JOIN pdu "
    "     WHERE part.ct != 'text/plain' AND part.ct != 'application/smil' "
    "     AND part.mid = pdu._id); END",
    "CREATE TRIGGER delete_mms_pending_on_delete AFTER DELETE ON pdu "
    "BEGIN   DELETE FROM pending_msgs  WHERE msg_id=old._id; END;",
    "CREATE TRIGGER delete_mms_pending_on_update AFTER UPDATE ON pdu "
    "WHEN old.msg_box=4  AND new.msg_box!=4 BEGIN   DELETE FROM pending_msgs  WHERE msg_id=new._id; END;",
    "CREATE TRIGGER insert_mms_pending_on_insert AFTER INSERT ON pdu "
    "WHEN new.m_type=130  OR new.m_type=135 BEGIN " + _PENDING_INSERT + "END;",
    "CREATE TRIGGER insert_mms_pending_on_update AFTER UPDATE ON pdu "
    "WHEN new.m_type=128  AND new.msg_box=4  AND old.msg_box!=4 BEGIN " + _PENDING_INSERT + "END;",
    "CREATE TRIGGER mms_words_update AFTER UPDATE ON part BEGIN UPDATE words "
    " SET index_text = NEW.text WHERE (source_id=NEW._id AND table_to_use=2);  END;",
    "CREATE TRIGGER mms_words_delete AFTER DELETE ON part BEGIN DELETE FROM "
    " words WHERE source_id = OLD._id AND table_to_use = 2; END;",
    "CREATE TRIGGER pdu_update_thread_date_subject_on_update AFTER  UPDATE OF date, sub, msg_box  ON pdu "
    + _PDU_UPDATE_THREAD_CONSTRAINTS
    + _PDU_UPDATE_THREAD_DATE_SNIPPET_COUNT_ON_UPDATE,
    "CREATE TRIGGER pdu_update_thread_on_delete AFTER DELETE ON pdu BEGIN   UPDATE threads SET "
    "     date = (strftime('%s','now') * 1000)  WHERE threads._id = old.thread_id; "
    + _UPDATE_THREAD_COUNT_ON_OLD
    + _UPDATE_THREAD_SNIPPET_SNIPPET_CS_ON_DELETE
    + "END;",
    "CREATE TRIGGER pdu_update_thread_on_insert AFTER INSERT ON pdu "
    + _PDU_UPDATE_THREAD_CONSTRAINTS
    + _PDU_UPDATE_THREAD_DATE_SNIPPET_COUNT_ON_UPDATE,
    "CREATE TRIGGER pdu_update_thread_read_on_update AFTER  UPDATE OF read  ON pdu "
    + _PDU_UPDATE_THREAD_CONSTRAINTS
    + "BEGIN "
    + _PDU_UPDATE_THREAD_READ_BODY
    + "END;",
    "CREATE TRIGGER update_threads_error_on_delete_mms   BEFORE DELETE ON pdu"
    "  WHEN OLD._id IN (SELECT DISTINCT msg_id                   FROM pending_msgs"
    "                   WHERE err_type >= 10) BEGIN   UPDATE threads SET error = error - 1"
    "  WHERE _id = OLD.thread_id; END;",
    "CREATE TRIGGER update_threads_error_on_move_mms   BEFORE UPDATE OF msg_box ON pdu "
    "  WHEN (OLD.msg_box = 4 AND NEW.msg_box != 4)   AND (OLD._id IN (SELECT DISTINCT msg_id"
    "                   FROM pending_msgs                   WHERE err_type >= 10)) "
    "BEGIN   UPDATE threads SET error = error - 1  WHERE _id = OLD.thread_id; END;",
    # createWordsTables
    "CREATE VIRTUAL TABLE words USING FTS3 (_id INTEGER PRIMARY KEY, index_text TEXT, "
    "source_id INTEGER, table_to_use INTEGER, sub_id INTEGER);",
    "CREATE TRIGGER IF NOT EXISTS sms_words_update AFTER UPDATE ON sms BEGIN UPDATE words "
    "SET index_text = NEW.body WHERE (source_id=NEW._id AND table_to_use=1); END;",
    "CREATE TRIGGER IF NOT EXISTS sms_words_delete AFTER DELETE ON sms BEGIN DELETE FROM words "
    "WHERE source_id = OLD._id AND table_to_use = 1; END;",
    # createIndices
    "CREATE INDEX IF NOT EXISTS typeThreadIdIndex ON sms (type, thread_id);",
    "CREATE INDEX IF NOT EXISTS threadIdDateIndex ON sms (thread_id, date);",
    "CREATE INDEX IF NOT EXISTS partMidIndex ON part (mid)",
    "CREATE INDEX IF NOT EXISTS addrMsgIdIndex ON addr (msg_id)",
)
MMSSMS = DbSpec(paths.MMSSMS_DB, 69, MMSSMS_SCHEMA)


# --------------------------------------------------------------------------
# calllog.db (CallLogDatabaseHelper.OpenHelper.onCreate, DATABASE_VERSION 12)
# --------------------------------------------------------------------------

CALLLOG_SCHEMA: tuple[str, ...] = ANDROID_METADATA + (
    "CREATE TABLE properties (property_key TEXT PRIMARY KEY, property_value TEXT );",
    "CREATE TABLE calls (_id INTEGER PRIMARY KEY AUTOINCREMENT,number TEXT,"
    "presentation INTEGER NOT NULL DEFAULT 1,post_dial_digits TEXT NOT NULL DEFAULT '',"
    "via_number TEXT NOT NULL DEFAULT '',date INTEGER,duration INTEGER,data_usage INTEGER,"
    "type INTEGER,features INTEGER NOT NULL DEFAULT 0,subscription_component_name TEXT,"
    "subscription_id TEXT,phone_account_address TEXT,phone_account_hidden INTEGER NOT NULL DEFAULT 0,"
    "sub_id INTEGER DEFAULT -1,new INTEGER,name TEXT,numbertype INTEGER,numberlabel TEXT,"
    "countryiso TEXT,voicemail_uri TEXT,is_read INTEGER,geocoded_location TEXT,lookup_uri TEXT,"
    "matched_number TEXT,normalized_number TEXT,photo_id INTEGER NOT NULL DEFAULT 0,photo_uri TEXT,"
    "formatted_number TEXT,add_for_all_users INTEGER NOT NULL DEFAULT 1,"
    "last_modified INTEGER DEFAULT 0,call_screening_component_name TEXT,"
    "call_screening_app_name TEXT,block_reason INTEGER NOT NULL DEFAULT 0,"
    "missed_reason INTEGER NOT NULL DEFAULT 0,priority INTEGER NOT NULL DEFAULT 0,subject TEXT,"
    "location TEXT,composer_photo_uri TEXT,"
    "is_call_log_phone_account_migration_pending INTEGER NOT NULL DEFAULT 0,"
    "is_business_call INTEGER NOT NULL DEFAULT 0,asserted_display_name TEXT,"
    "_data TEXT,has_content INTEGER,mime_type TEXT,source_data TEXT,source_package TEXT,"
    "transcription TEXT,transcription_state INTEGER NOT NULL DEFAULT 0,state INTEGER,"
    "dirty INTEGER NOT NULL DEFAULT 0,deleted INTEGER NOT NULL DEFAULT 0,"
    "backed_up INTEGER NOT NULL DEFAULT 0,restored INTEGER NOT NULL DEFAULT 0,"
    "archived INTEGER NOT NULL DEFAULT 0,is_omtp_voicemail INTEGER NOT NULL DEFAULT 0);",
    "CREATE TABLE voicemail_status (_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "source_package TEXT NOT NULL,phone_account_component_name TEXT,phone_account_id TEXT,"
    "settings_uri TEXT,voicemail_access_uri TEXT,configuration_state INTEGER,"
    "data_channel_state INTEGER,notification_channel_state INTEGER,quota_occupied INTEGER DEFAULT -1,"
    "quota_total INTEGER DEFAULT -1,source_type TEXT);",
)
CALLLOG = DbSpec(paths.CALLLOG_DB, 12, CALLLOG_SCHEMA)


# --------------------------------------------------------------------------
# contacts2.db (ContactsDatabaseHelper.onCreate, DATABASE_VERSION 1701)
# --------------------------------------------------------------------------

_SYNC_COLUMNS = (
    "raw_contacts.account_id,accounts.account_name AS account_name,"
    "accounts.account_type AS account_type,accounts.data_set AS data_set,"
    "(CASE WHEN accounts.data_set IS NULL THEN accounts.account_type "
    "ELSE accounts.account_type||'/'||accounts.data_set END) AS account_type_and_data_set,"
    "raw_contacts.sourceid AS sourceid,raw_contacts.backup_id AS backup_id,"
    "raw_contacts.version AS version,raw_contacts.dirty AS dirty,raw_contacts.sync1 AS sync1,"
    "raw_contacts.sync2 AS sync2,raw_contacts.sync3 AS sync3,raw_contacts.sync4 AS sync4"
)
_CONTACT_NAME_COLUMNS = (
    "name_raw_contact.display_name_source AS display_name_source, "
    "name_raw_contact.display_name AS display_name, "
    "name_raw_contact.display_name_alt AS display_name_alt, "
    "name_raw_contact.phonetic_name AS phonetic_name, "
    "name_raw_contact.phonetic_name_style AS phonetic_name_style, "
    "name_raw_contact.sort_key AS sort_key, name_raw_contact.phonebook_label AS phonebook_label, "
    "name_raw_contact.phonebook_bucket AS phonebook_bucket, "
    "name_raw_contact.sort_key_alt AS sort_key_alt, "
    "name_raw_contact.phonebook_label_alt AS phonebook_label_alt, "
    "name_raw_contact.phonebook_bucket_alt AS phonebook_bucket_alt"
)
_BASE_CONTACT_COLUMNS = (
    "has_phone_number, name_raw_contact_id, lookup, photo_id, photo_file_id, "
    "CAST(EXISTS (SELECT _id FROM visible_contacts WHERE contacts._id=visible_contacts._id) "
    "AS INTEGER) AS in_visible_group, "
    "CAST(EXISTS (SELECT _id FROM default_directory WHERE contacts._id=default_directory._id) "
    "AS INTEGER) AS in_default_directory, status_update_id, contacts.contact_last_updated_timestamp"
)


def _photo_uris(id_expr: str) -> str:
    thumb = (
        "(CASE WHEN photo_id IS NULL OR photo_id=0 THEN NULL ELSE "
        f"'content://com.android.contacts/contacts/'||{id_expr}|| '/photo' END)"
    )
    return (
        f"(CASE WHEN photo_file_id IS NULL THEN {thumb} ELSE "
        "'content://com.android.contacts/display_photo/'||photo_file_id END) AS photo_uri, "
        f"{thumb} AS photo_thumb_uri"
    )


CONTACTS_SCHEMA: tuple[str, ...] = ANDROID_METADATA + (
    "CREATE TABLE _sync_state (_id INTEGER PRIMARY KEY,account_name TEXT NOT NULL,"
    "account_type TEXT NOT NULL,data TEXT,UNIQUE(account_name, account_type));",
    "CREATE TABLE _sync_state_metadata (version INTEGER);",
    "CREATE TABLE properties (property_key TEXT PRIMARY KEY, property_value TEXT );",
    "CREATE TABLE accounts (_id INTEGER PRIMARY KEY AUTOINCREMENT,account_name TEXT, "
    "account_type TEXT, data_set TEXT, sim_slot_index INTEGER, sim_ef_type INTEGER, "
    "ungrouped_visible INTEGER NOT NULL DEFAULT 0,should_sync INTEGER NOT NULL DEFAULT 1,"
    "x_is_default INTEGER NOT NULL DEFAULT 0);",
    "CREATE TABLE contacts (_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "name_raw_contact_id INTEGER REFERENCES raw_contacts(_id),"
    "photo_id INTEGER REFERENCES data(_id),photo_file_id INTEGER REFERENCES photo_files(_id),"
    "custom_ringtone TEXT,send_to_voicemail INTEGER NOT NULL DEFAULT 0,"
    "x_times_contacted INTEGER NOT NULL DEFAULT 0,x_last_time_contacted INTEGER,"
    "times_contacted INTEGER NOT NULL DEFAULT 0,last_time_contacted INTEGER,"
    "starred INTEGER NOT NULL DEFAULT 0,pinned INTEGER NOT NULL DEFAULT 0,"
    "has_phone_number INTEGER NOT NULL DEFAULT 0,lookup TEXT,"
    "status_update_id INTEGER REFERENCES data(_id),contact_last_updated_timestamp INTEGER);",
    "CREATE INDEX contacts_has_phone_index ON contacts (has_phone_number);",
    "CREATE INDEX contacts_name_raw_contact_id_index ON contacts (name_raw_contact_id);",
    "CREATE INDEX contacts_contact_last_updated_timestamp_index ON contacts(contact_last_updated_timestamp);",
    "CREATE TABLE deleted_contacts (contact_id INTEGER PRIMARY KEY,"
    "contact_deleted_timestamp INTEGER NOT NULL default 0);",
    "CREATE INDEX deleted_contacts_contact_deleted_timestamp_index ON deleted_contacts(contact_deleted_timestamp);",
    "CREATE TABLE raw_contacts (_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "account_id INTEGER REFERENCES accounts(_id),sourceid TEXT,backup_id TEXT,"
    "raw_contact_is_read_only INTEGER NOT NULL DEFAULT 0,version INTEGER NOT NULL DEFAULT 1,"
    "dirty INTEGER NOT NULL DEFAULT 0,deleted INTEGER NOT NULL DEFAULT 0,"
    "metadata_dirty INTEGER NOT NULL DEFAULT 0,contact_id INTEGER REFERENCES contacts(_id),"
    "aggregation_mode INTEGER NOT NULL DEFAULT 0,aggregation_needed INTEGER NOT NULL DEFAULT 1,"
    "custom_ringtone TEXT,send_to_voicemail INTEGER NOT NULL DEFAULT 0,"
    "x_times_contacted INTEGER NOT NULL DEFAULT 0,x_last_time_contacted INTEGER,"
    "times_contacted INTEGER NOT NULL DEFAULT 0,last_time_contacted INTEGER,"
    "starred INTEGER NOT NULL DEFAULT 0,pinned INTEGER NOT NULL DEFAULT 0,display_name TEXT,"
    "display_name_alt TEXT,display_name_source INTEGER NOT NULL DEFAULT 0,phonetic_name TEXT,"
    "phonetic_name_style TEXT,sort_key TEXT COLLATE PHONEBOOK,phonebook_label TEXT,"
    "phonebook_bucket INTEGER,sort_key_alt TEXT COLLATE PHONEBOOK,phonebook_label_alt TEXT,"
    "phonebook_bucket_alt INTEGER,name_verified INTEGER NOT NULL DEFAULT 0,sync1 TEXT, sync2 TEXT, "
    "sync3 TEXT, sync4 TEXT );",
    "CREATE INDEX raw_contacts_contact_id_index ON raw_contacts (contact_id);",
    "CREATE INDEX raw_contacts_source_id_account_id_index ON raw_contacts (sourceid, account_id);",
    "CREATE UNIQUE INDEX IF NOT EXISTS raw_contacts_backup_id_account_id_index ON raw_contacts "
    "(backup_id, account_id);",
    "CREATE TABLE stream_items (_id INTEGER PRIMARY KEY AUTOINCREMENT, raw_contact_id INTEGER NOT NULL, "
    "res_package TEXT, icon TEXT, label TEXT, text TEXT, timestamp INTEGER NOT NULL, comments TEXT, "
    "stream_item_sync1 TEXT, stream_item_sync2 TEXT, stream_item_sync3 TEXT, stream_item_sync4 TEXT, "
    "FOREIGN KEY(raw_contact_id) REFERENCES raw_contacts(_id));",
    "CREATE TABLE stream_item_photos (_id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "stream_item_id INTEGER NOT NULL, sort_index INTEGER, photo_file_id INTEGER NOT NULL, "
    "stream_item_photo_sync1 TEXT, stream_item_photo_sync2 TEXT, stream_item_photo_sync3 TEXT, "
    "stream_item_photo_sync4 TEXT, FOREIGN KEY(stream_item_id) REFERENCES stream_items(_id));",
    "CREATE TABLE photo_files (_id INTEGER PRIMARY KEY AUTOINCREMENT, height INTEGER NOT NULL, "
    "width INTEGER NOT NULL, filesize INTEGER NOT NULL);",
    "CREATE TABLE packages (_id INTEGER PRIMARY KEY AUTOINCREMENT,package TEXT NOT NULL);",
    "CREATE TABLE mimetypes (_id INTEGER PRIMARY KEY AUTOINCREMENT,mimetype TEXT NOT NULL);",
    "CREATE UNIQUE INDEX mime_type ON mimetypes (mimetype);",
    "CREATE TABLE data (_id INTEGER PRIMARY KEY AUTOINCREMENT,package_id INTEGER REFERENCES package(_id),"
    "mimetype_id INTEGER REFERENCES mimetype(_id) NOT NULL,"
    "raw_contact_id INTEGER REFERENCES raw_contacts(_id) NOT NULL,hash_id TEXT,"
    "is_read_only INTEGER NOT NULL DEFAULT 0,is_primary INTEGER NOT NULL DEFAULT 0,"
    "is_super_primary INTEGER NOT NULL DEFAULT 0,data_version INTEGER NOT NULL DEFAULT 0,"
    "data1 TEXT,data2 TEXT,data3 TEXT,data4 TEXT,data5 TEXT,data6 TEXT,data7 TEXT,data8 TEXT,"
    "data9 TEXT,data10 TEXT,data11 TEXT,data12 TEXT,data13 TEXT,data14 TEXT,data15 TEXT,"
    "data_sync1 TEXT, data_sync2 TEXT, data_sync3 TEXT, data_sync4 TEXT, "
    "carrier_presence INTEGER NOT NULL DEFAULT 0, "
    "is_preferred_phone_account_migration_pending INTEGER NOT NULL DEFAULT 0, "
    "preferred_phone_account_component_name TEXT, preferred_phone_account_id TEXT );",
    "CREATE INDEX data_raw_contact_id ON data (raw_contact_id);",
    "CREATE INDEX data_mimetype_data1_index ON data (mimetype_id,data1);",
    "CREATE INDEX IF NOT EXISTS data_hash_id_index ON data (hash_id);",
    "CREATE TABLE phone_lookup (data_id INTEGER REFERENCES data(_id) NOT NULL,"
    "raw_contact_id INTEGER REFERENCES raw_contacts(_id) NOT NULL,normalized_number TEXT NOT NULL,"
    "min_match TEXT NOT NULL);",
    "CREATE INDEX phone_lookup_index ON phone_lookup (normalized_number,raw_contact_id,data_id);",
    "CREATE INDEX phone_lookup_min_match_index ON phone_lookup (min_match,raw_contact_id,data_id);",
    "CREATE INDEX phone_lookup_data_id_min_match_index ON phone_lookup (data_id, min_match);",
    "CREATE TABLE name_lookup (data_id INTEGER REFERENCES data(_id) NOT NULL,"
    "raw_contact_id INTEGER REFERENCES raw_contacts(_id) NOT NULL,normalized_name TEXT NOT NULL,"
    "name_type INTEGER NOT NULL,PRIMARY KEY (data_id, normalized_name, name_type));",
    "CREATE INDEX name_lookup_raw_contact_id_index ON name_lookup (raw_contact_id);",
    "CREATE TABLE groups (_id INTEGER PRIMARY KEY AUTOINCREMENT,package_id INTEGER REFERENCES package(_id),"
    "account_id INTEGER REFERENCES accounts(_id),sourceid TEXT,version INTEGER NOT NULL DEFAULT 1,"
    "dirty INTEGER NOT NULL DEFAULT 0,title TEXT,title_res INTEGER,notes TEXT,system_id TEXT,"
    "deleted INTEGER NOT NULL DEFAULT 0,group_visible INTEGER NOT NULL DEFAULT 0,"
    "should_sync INTEGER NOT NULL DEFAULT 1,auto_add INTEGER NOT NULL DEFAULT 0,"
    "favorites INTEGER NOT NULL DEFAULT 0,group_is_read_only INTEGER NOT NULL DEFAULT 0,"
    "sync1 TEXT, sync2 TEXT, sync3 TEXT, sync4 TEXT );",
    "CREATE INDEX groups_source_id_account_id_index ON groups (sourceid, account_id);",
    "CREATE TABLE IF NOT EXISTS agg_exceptions (_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "type INTEGER NOT NULL, raw_contact_id1 INTEGER REFERENCES raw_contacts(_id), "
    "raw_contact_id2 INTEGER REFERENCES raw_contacts(_id));",
    "CREATE UNIQUE INDEX IF NOT EXISTS aggregation_exception_index1 ON agg_exceptions "
    "(raw_contact_id1, raw_contact_id2);",
    "CREATE UNIQUE INDEX IF NOT EXISTS aggregation_exception_index2 ON agg_exceptions "
    "(raw_contact_id2, raw_contact_id1);",
    "CREATE TABLE visible_contacts (_id INTEGER PRIMARY KEY);",
    "CREATE TABLE default_directory (_id INTEGER PRIMARY KEY);",
    "CREATE TABLE status_updates (status_update_data_id INTEGER PRIMARY KEY REFERENCES data(_id),"
    "status TEXT,status_ts INTEGER,status_res_package TEXT, status_label INTEGER, status_icon INTEGER);",
    "CREATE TABLE directories(_id INTEGER PRIMARY KEY AUTOINCREMENT,packageName TEXT NOT NULL,"
    "authority TEXT NOT NULL,typeResourceId INTEGER,typeResourceName TEXT,accountType TEXT,"
    "accountName TEXT,displayName TEXT, exportSupport INTEGER NOT NULL DEFAULT 0,"
    "shortcutSupport INTEGER NOT NULL DEFAULT 0,photoSupport INTEGER NOT NULL DEFAULT 0);",
    "CREATE VIRTUAL TABLE search_index USING FTS4 (contact_id INTEGER REFERENCES contacts(_id) NOT NULL,"
    "content TEXT, name TEXT, tokens TEXT)",
    "CREATE TABLE data_usage_stat(stat_id INTEGER PRIMARY KEY AUTOINCREMENT, data_id INTEGER NOT NULL, "
    "usage_type INTEGER NOT NULL DEFAULT 0, x_times_used INTEGER NOT NULL DEFAULT 0, "
    "x_last_time_used INTEGER NOT NULL DEFAULT 0, times_used INTEGER NOT NULL DEFAULT 0, "
    "last_time_used INTEGER NOT NULL DEFAULT 0, FOREIGN KEY(data_id) REFERENCES data(_id));",
    "CREATE UNIQUE INDEX data_usage_stat_index ON data_usage_stat (data_id, usage_type);",
    "CREATE TABLE pre_authorized_uris (_id INTEGER PRIMARY KEY AUTOINCREMENT, uri STRING NOT NULL, "
    "expiration INTEGER NOT NULL DEFAULT 0);",
    # createContactsViews
    "CREATE VIEW view_data AS SELECT data._id AS _id,hash_id, raw_contact_id, "
    "raw_contacts.contact_id AS contact_id, " + _SYNC_COLUMNS + ", is_primary, is_super_primary, "
    "data_version, data.package_id,package AS res_package,data.mimetype_id,mimetype AS mimetype, "
    "is_read_only, data1, data2, data3, data4, data5, data6, data7, data8, data9, data10, data11, "
    "data12, data13, data14, data15, carrier_presence, preferred_phone_account_component_name, "
    "preferred_phone_account_id, data_sync1, data_sync2, data_sync3, data_sync4, "
    "contacts.custom_ringtone AS custom_ringtone,contacts.send_to_voicemail AS send_to_voicemail,"
    "0 AS x_last_time_contacted,0 AS x_times_contacted,0 AS last_time_contacted,"
    "0 AS times_contacted,contacts.starred AS starred,contacts.pinned AS pinned, "
    + _CONTACT_NAME_COLUMNS
    + ", "
    + _BASE_CONTACT_COLUMNS
    + ", "
    + _photo_uris("raw_contacts.contact_id")
    + ", 0 AS raw_contact_is_user_profile, groups.sourceid AS group_sourceid FROM data "
    "JOIN mimetypes ON (data.mimetype_id=mimetypes._id) "
    "JOIN raw_contacts ON (data.raw_contact_id=raw_contacts._id) "
    "JOIN accounts ON (raw_contacts.account_id=accounts._id) "
    "JOIN contacts ON (raw_contacts.contact_id=contacts._id) "
    "JOIN raw_contacts AS name_raw_contact ON(name_raw_contact_id=name_raw_contact._id) "
    "LEFT OUTER JOIN packages ON (data.package_id=packages._id) "
    "LEFT OUTER JOIN groups ON (mimetypes.mimetype='vnd.android.cursor.item/group_membership' "
    "AND groups._id=data.data1)",
    "CREATE VIEW view_raw_contacts AS SELECT raw_contacts._id AS _id,contact_id, aggregation_mode, "
    "raw_contact_is_read_only, deleted, raw_contacts.metadata_dirty, display_name_source, "
    "display_name, display_name_alt, phonetic_name, phonetic_name_style, sort_key, phonebook_label, "
    "phonebook_bucket, sort_key_alt, phonebook_label_alt, phonebook_bucket_alt, "
    "0 AS raw_contact_is_user_profile, custom_ringtone,send_to_voicemail,0 AS x_last_time_contacted,"
    "0 AS last_time_contacted,0 AS x_times_contacted,0 AS times_contacted,starred,pinned, "
    + _SYNC_COLUMNS
    + " FROM raw_contacts JOIN accounts ON (raw_contacts.account_id=accounts._id)",
    "CREATE VIEW view_contacts AS SELECT contacts._id AS _id,contacts.custom_ringtone AS custom_ringtone, "
    + _CONTACT_NAME_COLUMNS
    + ", "
    + _BASE_CONTACT_COLUMNS
    + ", 0 AS x_last_time_contacted, 0 AS last_time_contacted, "
    "contacts.send_to_voicemail AS send_to_voicemail, contacts.starred AS starred, "
    "contacts.pinned AS pinned, 0 AS x_times_contacted, 0 AS times_contacted, "
    + _photo_uris("contacts._id")
    + ", 0 AS is_user_profile FROM contacts "
    "JOIN raw_contacts AS name_raw_contact ON(name_raw_contact_id=name_raw_contact._id)",
    # createSettingsView
    "CREATE VIEW view_settings AS SELECT accounts._id AS account_id,accounts.account_name AS account_name,"
    "accounts.account_type AS account_type,accounts.data_set AS data_set,ungrouped_visible,should_sync "
    "FROM accounts",
    "CREATE TRIGGER view_settings_update INSTEAD OF UPDATE ON view_settings BEGIN UPDATE accounts SET "
    "ungrouped_visible = NEW.ungrouped_visible, should_sync = NEW.should_sync "
    "WHERE _id = OLD.account_id; END;",
    "CREATE TRIGGER accounts_insert_local_account AFTER INSERT ON accounts "
    "WHEN NEW.account_name IS NULL AND NEW.account_type IS NULL AND NEW.data_set IS NULL "
    "BEGIN UPDATE accounts SET ungrouped_visible = 1, should_sync = 0 WHERE _id = NEW._id; END;",
    # createContactsTriggers
    "CREATE TRIGGER raw_contacts_deleted    BEFORE DELETE ON raw_contacts BEGIN    DELETE FROM data "
    "    WHERE raw_contact_id=OLD._id;   DELETE FROM agg_exceptions     WHERE raw_contact_id1=OLD._id "
    "       OR raw_contact_id2=OLD._id;   DELETE FROM visible_contacts     WHERE _id=OLD.contact_id "
    "      AND (SELECT COUNT(*) FROM raw_contacts            WHERE contact_id=OLD.contact_id "
    "          )=1;   DELETE FROM default_directory     WHERE _id=OLD.contact_id "
    "      AND (SELECT COUNT(*) FROM raw_contacts            WHERE contact_id=OLD.contact_id "
    "          )=1;   DELETE FROM contacts     WHERE _id=OLD.contact_id "
    "      AND (SELECT COUNT(*) FROM raw_contacts            WHERE contact_id=OLD.contact_id "
    "          )=1; END;",
    "CREATE TRIGGER raw_contacts_marked_deleted    AFTER UPDATE ON raw_contacts BEGIN "
    "   UPDATE raw_contacts     SET version=OLD.version+1      WHERE _id=OLD._id "
    "      AND NEW.deleted!= OLD.deleted; END;",
    "CREATE TRIGGER data_updated AFTER UPDATE ON data BEGIN    UPDATE data "
    "    SET data_version=OLD.data_version+1      WHERE _id=OLD._id;   UPDATE raw_contacts "
    "    SET version=version+1      WHERE _id=OLD.raw_contact_id; END;",
    "CREATE TRIGGER data_deleted BEFORE DELETE ON data BEGIN    UPDATE raw_contacts "
    "    SET version=version+1      WHERE _id=OLD.raw_contact_id;   DELETE FROM phone_lookup "
    "    WHERE data_id=OLD._id;   DELETE FROM status_updates     WHERE status_update_data_id=OLD._id;"
    "   DELETE FROM name_lookup     WHERE data_id=OLD._id; END;",
    "CREATE TRIGGER groups_updated1    AFTER UPDATE ON groups BEGIN    UPDATE groups "
    "    SET version=OLD.version+1     WHERE _id=OLD._id; END;",
    # createContactsIndexes
    "CREATE INDEX name_lookup_index ON name_lookup (normalized_name,name_type, raw_contact_id, data_id);",
    "CREATE INDEX raw_contact_sort_key1_index ON raw_contacts (sort_key);",
    "CREATE INDEX raw_contact_sort_key2_index ON raw_contacts (sort_key_alt);",
    # createPresenceTables
    "CREATE TABLE IF NOT EXISTS presence (presence_data_id INTEGER PRIMARY KEY REFERENCES data(_id),"
    "protocol INTEGER NOT NULL,custom_protocol TEXT,im_handle TEXT,im_account TEXT,"
    "presence_contact_id INTEGER REFERENCES contacts(_id),"
    "presence_raw_contact_id INTEGER REFERENCES raw_contacts(_id),mode INTEGER,"
    "chat_capability INTEGER NOT NULL DEFAULT 0,"
    "UNIQUE(protocol, custom_protocol, im_handle, im_account));",
    "CREATE INDEX IF NOT EXISTS presenceIndex ON presence (presence_raw_contact_id);",
    "CREATE INDEX IF NOT EXISTS presenceIndex2 ON presence (presence_contact_id);",
    "CREATE TABLE IF NOT EXISTS agg_presence (presence_contact_id INTEGER PRIMARY KEY "
    "REFERENCES contacts(_id),mode INTEGER,chat_capability INTEGER NOT NULL DEFAULT 0);",
)

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


# --------------------------------------------------------------------------
# Provider base
# --------------------------------------------------------------------------


class Provider:
    """One authority's ContentProvider, re-enacted over its SQLite file."""

    spec: DbSpec

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_db(self.spec)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def query(
        self, uri: Uri, projection: list[str] | None, selection: str | None, sort: str | None
    ) -> Cursor | None:
        raise NotImplementedError

    def insert(self, uri: Uri, values: Values) -> str | None:
        raise NotImplementedError

    def update(self, uri: Uri, values: Values, selection: str | None) -> int:
        raise NotImplementedError

    def delete(self, uri: Uri, selection: str | None) -> int:
        raise NotImplementedError

    def get_type(self, uri: Uri) -> str | None:
        return None


# --------------------------------------------------------------------------
# SmsProvider (authority "sms")
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# CallLogProvider (authority "call_log")
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# ContactsProvider2 (authority "com.android.contacts")
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Authorities
# --------------------------------------------------------------------------

_PROVIDERS: dict[str, type[Provider]] = {
    "sms": SmsProvider,
    "call_log": CallLogProvider,
    "com.android.contacts": ContactsProvider,
}


def provider_for(authority: str | None) -> Provider | None:
    """The provider that owns ``authority``, as ``getContentProviderExternal`` finds it."""
    cls = _PROVIDERS.get(authority or "")
    return cls() if cls is not None else None


def authorities() -> list[str]:
    return sorted(_PROVIDERS)
