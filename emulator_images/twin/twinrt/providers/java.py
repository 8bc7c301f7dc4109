"""Java semantics the output depends on.

``HashMap`` iteration order (projection maps decide column order),
``Float``/``Double.toString``, ``ContentValues.getAs*`` conversions and the
``DatabaseUtils``/``SQLiteQueryBuilder`` string building the providers use:
``content`` prints what a Java provider would, so these are re-enacted exactly.
"""

from __future__ import annotations

import math
import re
import struct
import time
from typing import Callable, Sequence

from .errors import Value


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
