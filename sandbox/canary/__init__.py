"""Canary generation: synthetic personal data unique to one analysis.

Honeyphone plants these contacts, SMS and call logs on a device; any copy of
one of their leak forms seen on the network proves the firmware leaked it.
Pure logic: no device I/O, nothing built at import time (Faker is imported and
instantiated on the first ``generate`` call).
"""

from sandbox.canary.forms import MIN_NUMBER_DIGITS, MIN_TEXT_CHARS, build_forms, forms_by_kind
from sandbox.canary.generator import generate, number_space, region_for_locale
from sandbox.canary.model import (
    SCHEMA,
    CallLog,
    CanaryError,
    CanaryForm,
    CanaryKind,
    CanarySet,
    CanarySpec,
    Contact,
    Sms,
)
from sandbox.canary.serialize import from_json, to_json

__all__ = [
    "MIN_NUMBER_DIGITS",
    "MIN_TEXT_CHARS",
    "SCHEMA",
    "CallLog",
    "CanaryError",
    "CanaryForm",
    "CanaryKind",
    "CanarySet",
    "CanarySpec",
    "Contact",
    "Sms",
    "build_forms",
    "forms_by_kind",
    "from_json",
    "generate",
    "number_space",
    "region_for_locale",
    "to_json",
]
