"""Canary sets to and from JSON, for storing with the analysis.

The stored set is the record of what was planted: regenerating from the spec
needs the same Faker and phonenumbers versions, the JSON does not.  Output is
canonical (sorted keys, no whitespace, UTF-8 text) so the same set always gives
the same bytes, and ``schema`` is versioned (``honeyphone.canaries/1``).
Loading is strict: unknown schema, missing or extra keys and wrong types are
``CanaryError``; it never guesses.  Forms are not stored: they are derived by
``forms.py`` and a change to them bumps the schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from sandbox.canary.model import (
    SCHEMA,
    CallLog,
    CallType,
    CanaryError,
    CanarySet,
    CanarySpec,
    Contact,
    Sms,
    SmsType,
)

__all__ = ["from_dict", "from_json", "to_dict", "to_json"]

_SPEC_KEYS = ("seed", "analysis_id", "contacts", "sms", "calls", "locale", "start_ms", "region")
_CONTACT_KEYS = ("id", "given_name", "middle_name", "family_name", "display_name", "number", "email")
_SMS_KEYS = ("id", "address", "body", "token", "date_ms", "type", "read")
_CALL_KEYS = ("id", "number", "date_ms", "duration_s", "type")
_TOP_KEYS = ("schema", "spec", "region", "contacts", "sms", "calls")


def to_dict(canaries: CanarySet) -> dict[str, Any]:
    def fields(obj: object, keys: tuple[str, ...]) -> dict[str, Any]:
        return {key: getattr(obj, key) for key in keys}

    return {
        "schema": SCHEMA,
        "spec": fields(canaries.spec, _SPEC_KEYS),
        "region": canaries.region,
        "contacts": [fields(c, _CONTACT_KEYS) for c in canaries.contacts],
        "sms": [fields(s, _SMS_KEYS) for s in canaries.sms],
        "calls": [fields(c, _CALL_KEYS) for c in canaries.calls],
    }


def to_json(canaries: CanarySet) -> str:
    """Canonical JSON text of ``canaries``."""
    return json.dumps(to_dict(canaries), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def from_json(text: str | bytes) -> CanarySet:
    """The set ``to_json`` wrote; ``CanaryError`` if ``text`` is not exactly that."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CanaryError(f"canary set is not valid JSON: {exc}") from exc
    return from_dict(data)


def from_dict(data: object) -> CanarySet:
    top = _record(data, _TOP_KEYS, "canary set")
    if top["schema"] != SCHEMA:
        raise CanaryError(
            f"unsupported canary schema {top['schema']!r}; this version reads {SCHEMA!r}",
            fix="load it with the Honeyphone version that wrote it",
        )
    spec_data = _record(top["spec"], _SPEC_KEYS, "spec")
    region = spec_data["region"]
    spec = CanarySpec(
        seed=_int(spec_data, "seed"),
        analysis_id=_str(spec_data, "analysis_id"),
        contacts=_int(spec_data, "contacts"),
        sms=_int(spec_data, "sms"),
        calls=_int(spec_data, "calls"),
        locale=_str(spec_data, "locale"),
        start_ms=_int(spec_data, "start_ms"),
        region=None if region is None else _str(spec_data, "region"),
    )
    contacts = tuple(_contact(_record(r, _CONTACT_KEYS, "contact")) for r in _list(top, "contacts"))
    sms = tuple(_sms(_record(r, _SMS_KEYS, "sms")) for r in _list(top, "sms"))
    calls = tuple(_call(_record(r, _CALL_KEYS, "call")) for r in _list(top, "calls"))
    ids = [item.id for group in (contacts, sms, calls) for item in group]
    if len(set(ids)) != len(ids):
        raise CanaryError("canary set has duplicate item ids")
    return CanarySet(spec=spec, region=_str(top, "region"), contacts=contacts, sms=sms, calls=calls)


def _contact(r: Mapping[str, object]) -> Contact:
    email = r["email"]
    return Contact(
        id=_str(r, "id"),
        given_name=_str(r, "given_name"),
        middle_name=_str(r, "middle_name"),
        family_name=_str(r, "family_name"),
        display_name=_str(r, "display_name"),
        number=_str(r, "number"),
        email=None if email is None else _str(r, "email"),
    )


def _sms(r: Mapping[str, object]) -> Sms:
    kind = _int(r, "type")
    if kind not in (1, 2):
        raise CanaryError(f"sms type {kind} is not 1 (inbox) or 2 (sent)")
    body, token = _str(r, "body"), _str(r, "token")
    if token not in body:
        raise CanaryError(f"sms {r['id']!r}: body does not contain its token")
    return Sms(
        id=_str(r, "id"),
        address=_str(r, "address"),
        body=body,
        token=token,
        date_ms=_int(r, "date_ms"),
        type=cast(SmsType, kind),
        read=_bool(r, "read"),
    )


def _call(r: Mapping[str, object]) -> CallLog:
    kind = _int(r, "type")
    if kind not in (1, 2, 3, 5):
        raise CanaryError(f"call type {kind} is not 1, 2, 3 or 5")
    return CallLog(
        id=_str(r, "id"),
        number=_str(r, "number"),
        date_ms=_int(r, "date_ms"),
        duration_s=_int(r, "duration_s"),
        type=cast(CallType, kind),
    )


def _record(value: object, keys: tuple[str, ...], what: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise CanaryError(f"{what} must be a JSON object")
    if set(value) != set(keys):
        missing, extra = sorted(set(keys) - set(value)), sorted(set(value) - set(keys))
        raise CanaryError(f"{what} has missing keys {missing} / unexpected keys {extra}")
    return cast(Mapping[str, object], value)


def _list(r: Mapping[str, object], key: str) -> list[object]:
    value = r[key]
    if not isinstance(value, list):
        raise CanaryError(f"{key!r} must be a JSON array")
    return value


def _str(r: Mapping[str, object], key: str) -> str:
    value = r[key]
    if not isinstance(value, str):
        raise CanaryError(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _int(r: Mapping[str, object], key: str) -> int:
    value = r[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise CanaryError(f"{key!r} must be an integer, not {type(value).__name__}")
    return value


def _bool(r: Mapping[str, object], key: str) -> bool:
    value = r[key]
    if not isinstance(value, bool):
        raise CanaryError(f"{key!r} must be true or false, not {type(value).__name__}")
    return value
