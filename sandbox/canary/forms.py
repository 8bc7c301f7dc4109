"""Leak forms: the renderings of planted values that prove a leak when seen.

A form is only listed if finding it in captured traffic is *proof*, not a
coincidence.  That rules out anything short or common, and anything that is
not unique to the analysis:

* Phone numbers (fields ``number`` / ``address``): ``e164`` (+15405550123),
  ``international`` (+1 540-555-0123), ``national`` as phonenumbers formats it
  ((540) 555-0123), ``digits`` (national format, digits only: 5405550123),
  ``cc_digits`` (15405550123) and ``no_country_code`` (the national
  significant number).  A rendering is kept only if it has at least
  ``MIN_NUMBER_DIGITS`` (8) digits: shorter digit runs occur by chance in any
  capture.  Matchers should still require non-digit boundaries around the
  digits-only forms.
* Names (field ``name``): the full display name only.  It carries the rare
  middle token; a first or family name alone is never a form.
* E-mail (field ``email``): the full address (its local part carries the token).
* SMS bodies (field ``body``): ``body_full``; ``body_token`` (the rare token
  alone, always >= 12 characters by construction); and up to
  ``MAX_BODY_WINDOWS`` ``body_substring`` word-aligned windows of two or more
  words around the token (one or two words of context on either side).  Any
  of them matches wherever the token does; they let a report say how much of
  a body left.
  Every text form is at least ``MIN_TEXT_CHARS`` (12) characters, and *every*
  body substring contains the token.  That is stricter than rejecting windows
  made only of common words: template text and Faker sentences repeat across
  analyses, so a window without the token would not be proof of *this*
  analysis' data.
* Never forms: dates, durations, call/SMS types, read flags, OTPs and PINs
  inside bodies, given or family names alone.

Deduplication: one form per (value, item, field); when one item renders the
same string several ways (US ``digits`` == ``no_country_code``) the first form
name in the order above is kept.  A value shared by several items (an SMS
address that is also a contact's number) keeps one form per item: the value is
still proof, and the detector reports every item it may have come from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers
from phonenumbers import PhoneNumberFormat

from sandbox.canary.model import KINDS, CanaryForm, CanaryKind, CanarySet

MIN_NUMBER_DIGITS = 8
MIN_TEXT_CHARS = 12
MAX_BODY_WINDOWS = 4
NUMBER_FIELDS = frozenset({"number", "address"})
# (words before the token, words after it), in order of preference.
_WINDOWS = ((1, 0), (0, 1), (1, 1), (2, 2), (2, 1), (1, 2))
_WORD = re.compile(r"\S+")


def number_forms(e164: str) -> list[tuple[str, str]]:
    """``(form, value)`` renderings of one E.164 number that are long enough."""
    number = phonenumbers.parse(e164)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    candidates = (
        ("e164", e164),
        ("international", phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)),
        ("national", national),
        ("digits", re.sub(r"\D", "", national)),
        ("cc_digits", e164.lstrip("+")),
        ("no_country_code", phonenumbers.national_significant_number(number)),
    )
    return _dedupe(
        (form, value)
        for form, value in candidates
        if sum(c.isdigit() for c in value) >= MIN_NUMBER_DIGITS
    )


def body_forms(body: str, token: str) -> list[tuple[str, str]]:
    """``(form, value)`` for an SMS body: full, token alone, windows around the token."""
    if token not in body:
        raise ValueError(f"body does not contain its token {token!r}")
    candidates = [("body_full", body), ("body_token", token)]
    spans = [m.span() for m in _WORD.finditer(body)]
    at = body.index(token)
    center = next(i for i, (start, end) in enumerate(spans) if start <= at < end)
    windows: list[tuple[str, str]] = []
    for before, after in _WINDOWS:
        first, last = max(0, center - before), min(len(spans) - 1, center + after)
        if first < last:  # the token's own word adds nothing to body_token
            windows.append(("body_substring", body[spans[first][0] : spans[last][1]]))
    seen = {body, token}
    kept = 0
    for form, value in windows:
        if kept < MAX_BODY_WINDOWS and value not in seen:
            seen.add(value)
            candidates.append((form, value))
            kept += 1
    return _dedupe((f, v) for f, v in candidates if token in v and len(v) >= MIN_TEXT_CHARS)


def build_forms(canaries: CanarySet) -> list[CanaryForm]:
    """All forms of a set, in item order; see the module docstring for the rules.

    A new list on every call: a detector builds it once and keeps it, so the
    set itself caches nothing (it stays a plain value of the model).
    """
    cache: dict[str, list[tuple[str, str]]] = {}

    def numbers(e164: str) -> list[tuple[str, str]]:
        if e164 not in cache:
            cache[e164] = number_forms(e164)
        return cache[e164]

    out: list[CanaryForm] = []

    def add(kind: CanaryKind, item_id: str, field: str, pairs: Iterable[tuple[str, str]]) -> None:
        for form, value in _dedupe(pairs):
            out.append(CanaryForm(value=value, kind=kind, item_id=item_id, field=field, form=form))

    for contact in canaries.contacts:
        if len(contact.display_name) >= MIN_TEXT_CHARS:
            add("contact", contact.id, "name", [("name_full", contact.display_name)])
        add("contact", contact.id, "number", numbers(contact.number))
        if contact.email is not None and len(contact.email) >= MIN_TEXT_CHARS:
            add("contact", contact.id, "email", [("email", contact.email)])
    for sms in canaries.sms:
        add("sms", sms.id, "address", numbers(sms.address))
        add("sms", sms.id, "body", body_forms(sms.body, sms.token))
    for call in canaries.calls:
        add("call_log", call.id, "number", numbers(call.number))
    return out


def forms_by_kind(canaries: CanarySet) -> dict[CanaryKind, list[CanaryForm]]:
    """``build_forms`` grouped by item kind (every kind present, maybe empty)."""
    grouped: dict[CanaryKind, list[CanaryForm]] = {kind: [] for kind in KINDS}
    for form in build_forms(canaries):
        grouped[form.kind].append(form)
    return grouped


def _dedupe(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    kept = []
    for form, value in pairs:
        if value not in seen:
            seen.add(value)
            kept.append((form, value))
    return kept
