"""Canary data: what gets planted on a device, and the strings that prove a leak.

Every type here is a frozen dataclass so a generated set can be stored with an
analysis, compared and hashed, and never drift after it was planted: the
evidence "this exact string left the device" is only worth something if the
string we compare against is the one we planted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, TypeAlias

from sandbox.errors import HoneyphoneError

SCHEMA = "honeyphone.canaries/1"

# 2025-01-01T00:00:00Z.  A fixed default keeps a spec reproducible on its own;
# callers pass the device clock's epoch ms when they have it.
DEFAULT_START_MS = 1_735_689_600_000
# Items are dated within this window before ``start_ms``.
HISTORY_MS = 60 * 24 * 3600 * 1000
MAX_ITEMS_PER_KIND = 100_000
MAX_ANALYSIS_ID_CHARS = 256

CanaryKind: TypeAlias = Literal["contact", "sms", "call_log"]
KINDS: tuple[CanaryKind, ...] = ("contact", "sms", "call_log")

# Android Telephony.Sms.TYPE values.
SmsType: TypeAlias = Literal[1, 2]
SMS_INBOX: SmsType = 1
SMS_SENT: SmsType = 2

# Android CallLog.Calls.TYPE values.
CallType: TypeAlias = Literal[1, 2, 3, 5]
CALL_INCOMING: CallType = 1
CALL_OUTGOING: CallType = 2
CALL_MISSED: CallType = 3
CALL_REJECTED: CallType = 5


class CanaryError(HoneyphoneError, ValueError):
    """A canary spec or a stored canary set is invalid."""


@dataclass(frozen=True, slots=True)
class CanarySpec:
    """What to generate.  ``(seed, analysis_id)`` alone decides every value.

    ``region`` overrides the phone-number region derived from ``locale``
    (needed only for locales without a country, such as ``ar_AA``).
    """

    seed: int
    analysis_id: str
    contacts: int = 25
    sms: int = 40
    calls: int = 30
    locale: str = "en_US"
    start_ms: int = DEFAULT_START_MS
    region: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise CanaryError(f"seed must be an int, not {type(self.seed).__name__}")
        if not isinstance(self.analysis_id, str) or not self.analysis_id:
            raise CanaryError("analysis_id must be a non-empty string")
        if len(self.analysis_id) > MAX_ANALYSIS_ID_CHARS:
            raise CanaryError(f"analysis_id is longer than {MAX_ANALYSIS_ID_CHARS} characters")
        for name in ("contacts", "sms", "calls"):
            count = getattr(self, name)
            if not isinstance(count, int) or isinstance(count, bool):
                raise CanaryError(f"{name} must be an int")
            if not 0 <= count <= MAX_ITEMS_PER_KIND:
                raise CanaryError(f"{name}={count} is outside 0..{MAX_ITEMS_PER_KIND}")
        if not isinstance(self.locale, str) or not self.locale:
            raise CanaryError("locale must be a non-empty string such as 'en_US'")
        if not isinstance(self.start_ms, int) or isinstance(self.start_ms, bool):
            raise CanaryError("start_ms must be an int (epoch milliseconds)")
        if self.start_ms <= HISTORY_MS:
            raise CanaryError(
                f"start_ms={self.start_ms} leaves no room for history",
                fix="pass the device clock in epoch milliseconds",
            )
        if self.region is not None and not (
            isinstance(self.region, str) and len(self.region) == 2 and self.region.isupper()
        ):
            raise CanaryError(f"region must be a two-letter code such as 'US', not {self.region!r}")


@dataclass(frozen=True, slots=True)
class Contact:
    """A planted contact.  ``display_name`` is unique because ``middle_name`` is
    a rare token derived from the analysis; ``email`` (when present) carries the
    same token in its local part.  ``number`` is E.164."""

    id: str
    given_name: str
    middle_name: str
    family_name: str
    display_name: str
    number: str
    email: str | None


@dataclass(frozen=True, slots=True)
class Sms:
    """A planted SMS.  ``body`` contains ``token`` verbatim exactly once; the
    token is what makes a copy of the body (or of a piece of it) proof."""

    id: str
    address: str
    body: str
    token: str
    date_ms: int
    type: SmsType
    read: bool


@dataclass(frozen=True, slots=True)
class CallLog:
    """A planted call-log entry.  Only ``number`` is ever evidence: dates,
    durations and types are far too common to prove anything."""

    id: str
    number: str
    date_ms: int
    duration_s: int
    type: CallType


CanaryItem: TypeAlias = Contact | Sms | CallLog


@dataclass(frozen=True, slots=True)
class CanaryForm:
    """One string whose presence in captured traffic proves a leak of ``item_id``.

    ``form`` names the rendering (``e164``, ``national``, ``body_full`` ...);
    the same ``value`` may appear in several forms, one per item it belongs to.
    """

    value: str
    kind: CanaryKind
    item_id: str
    field: str
    form: str


@dataclass(frozen=True)
class CanarySet:
    """Everything generated for one analysis.

    Its leak forms are derived, not stored: ``sandbox.canary.forms.build_forms``
    (forms depend on the model, never the other way round).
    """

    spec: CanarySpec
    region: str
    contacts: tuple[Contact, ...]
    sms: tuple[Sms, ...]
    calls: tuple[CallLog, ...]

    def by_kind(self) -> Mapping[CanaryKind, tuple[CanaryItem, ...]]:
        """Items grouped by kind, in generation order."""
        return {"contact": self.contacts, "sms": self.sms, "call_log": self.calls}

    def items(self) -> Iterator[tuple[CanaryKind, CanaryItem]]:
        for kind, items in self.by_kind().items():
            for item in items:
                yield kind, item

    def item(self, item_id: str) -> CanaryItem:
        """The item with this id; ``KeyError`` if there is none."""
        return self._index[item_id]

    @cached_property
    def _index(self) -> dict[str, CanaryItem]:
        return {item.id: item for _, item in self.items()}
