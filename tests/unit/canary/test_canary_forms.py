"""Leak forms: every listed string must be proof, never a coincidence."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import phonenumbers
import pytest
from faker.providers.lorem.en_US import Provider as LoremProvider
from faker.providers.person.en_US import Provider as PersonProvider
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.canary import MIN_NUMBER_DIGITS, MIN_TEXT_CHARS, CanarySet, CanarySpec, build_forms, forms_by_kind, generate
from sandbox.canary.forms import MAX_BODY_WINDOWS, NUMBER_FIELDS, body_forms, number_forms

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "ja_JP", "pt_BR", "zh_CN"]
# Words that prove nothing on their own: a small stoplist plus Faker's vocabulary.
COMMON = {
    *"a an and the to of in on at for is are was be by it you your me my we our i "
    "hey hi ok lol btw see yes no not this that with from".split(),
    *(w.lower() for w in LoremProvider.word_list),
    *(n.lower() for n in PersonProvider.first_names),
}


@pytest.fixture(scope="module")
def canaries() -> CanarySet:
    return generate(CanarySpec(seed=21, analysis_id="forms", contacts=60, sms=120, calls=80))


def check_proof_rules(canaries: CanarySet) -> None:
    """Thresholds, fields and uniqueness rules every set must obey."""
    forms = build_forms(canaries)
    parts = set()
    for contact in canaries.contacts:
        parts |= {contact.given_name, contact.middle_name, contact.family_name}
    for form in forms:
        assert form.value not in parts, form  # no first, middle or family name alone
        if form.field in NUMBER_FIELDS:
            assert sum(c.isdigit() for c in form.value) >= MIN_NUMBER_DIGITS, form
        else:
            assert form.field in {"name", "email", "body"}, form
            assert len(form.value) >= MIN_TEXT_CHARS, form
            words = re.findall(r"\w+", form.value.lower())
            assert not set(words) <= COMMON, form
        if form.form == "body_substring":
            assert canaries.item(form.item_id).token in form.value  # type: ignore[union-attr]
    assert {f.field for f in forms if f.kind == "call_log"} == ({"number"} if canaries.calls else set())
    keys = [(f.value, f.item_id, f.field) for f in forms]
    assert len(keys) == len(set(keys))


def test_us_number_forms() -> None:
    assert number_forms("+15405550123") == [
        ("e164", "+15405550123"),
        ("international", "+1 540-555-0123"),
        ("national", "(540) 555-0123"),
        ("digits", "5405550123"),  # == no_country_code for the US: kept once
        ("cc_digits", "15405550123"),
    ]


def test_gb_number_forms_keep_trunk_prefix_and_nsn_apart() -> None:
    assert number_forms("+447400123456") == [
        ("e164", "+447400123456"),
        ("international", "+44 7400 123456"),
        ("national", "07400 123456"),
        ("digits", "07400123456"),
        ("cc_digits", "447400123456"),
        ("no_country_code", "7400123456"),
    ]


def test_short_renderings_are_dropped() -> None:
    # Niue mobiles have 7 national digits: only forms with the country code stay.
    assert number_forms("+6838884012") == [
        ("e164", "+6838884012"),
        ("international", "+683 888 4012"),
        ("cc_digits", "6838884012"),
    ]


def test_body_forms_are_word_aligned_windows_around_the_token() -> None:
    body = "Meeting moved to 9:30, room Zorvikan-4KQ7. Bring the quarterly numbers please."
    forms = body_forms(body, "Zorvikan-4KQ7")
    assert forms[:2] == [("body_full", body), ("body_token", "Zorvikan-4KQ7")]
    windows = [v for f, v in forms if f == "body_substring"]
    assert windows == [
        "room Zorvikan-4KQ7.",
        "Zorvikan-4KQ7. Bring",
        "room Zorvikan-4KQ7. Bring",
        "9:30, room Zorvikan-4KQ7. Bring the",
    ]
    for window in windows:
        start = body.index(window)
        assert start == 0 or body[start - 1] == " "
        end = start + len(window)
        assert end == len(body) or body[end] == " "


def test_body_forms_of_a_short_body() -> None:
    assert body_forms("Zorvikan-4KQ7", "Zorvikan-4KQ7") == [("body_full", "Zorvikan-4KQ7")]
    assert body_forms("code Zorvikan-4KQ7", "Zorvikan-4KQ7") == [
        ("body_full", "code Zorvikan-4KQ7"),
        ("body_token", "Zorvikan-4KQ7"),
    ]


def test_body_without_its_token_is_an_error() -> None:
    with pytest.raises(ValueError, match="token"):
        body_forms("nothing rare here at all", "Zorvikan-4KQ7")


def test_forms_follow_the_proof_rules(canaries: CanarySet) -> None:
    check_proof_rules(canaries)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(), locale=st.sampled_from(LOCALES))
def test_forms_follow_the_proof_rules_in_every_locale(seed: int, locale: str) -> None:
    spec = CanarySpec(seed=seed, analysis_id="rules", locale=locale, contacts=8, sms=8, calls=8)
    check_proof_rules(generate(spec))


def test_every_item_has_its_forms(canaries: CanarySet) -> None:
    by_item: dict[str, Counter[str]] = defaultdict(Counter)
    for form in build_forms(canaries):
        by_item[form.item_id][form.form] += 1
    for contact in canaries.contacts:
        forms = by_item[contact.id]
        assert forms["name_full"] == 1 and forms["e164"] == 1 and forms["cc_digits"] == 1
        assert forms["email"] == (contact.email is not None)
    for sms in canaries.sms:
        forms = by_item[sms.id]
        assert forms["body_full"] == forms["body_token"] == forms["e164"] == 1
        assert 1 <= forms["body_substring"] <= MAX_BODY_WINDOWS
    for call in canaries.calls:
        assert set(by_item[call.id]) <= {
            "e164", "international", "national", "digits", "cc_digits", "no_country_code"
        }


def test_number_forms_all_parse_back_to_the_number(canaries: CanarySet) -> None:
    for form in build_forms(canaries):
        if form.field in NUMBER_FIELDS:
            e164 = getattr(canaries.item(form.item_id), form.field)
            if form.form in ("e164", "international"):
                assert phonenumbers.parse(form.value) == phonenumbers.parse(e164)
            elif form.form in ("national", "digits", "no_country_code"):
                assert phonenumbers.parse(form.value, canaries.region) == phonenumbers.parse(e164)


def test_shared_values_keep_every_item(canaries: CanarySet) -> None:
    items_of: dict[str, set[str]] = defaultdict(set)
    for form in build_forms(canaries):
        items_of[form.value].add(form.item_id)
    contact = next(c for c in canaries.contacts if any(m.address == c.number for m in canaries.sms))
    expected = {contact.id} | {m.id for m in canaries.sms if m.address == contact.number}
    expected |= {c.id for c in canaries.calls if c.number == contact.number}
    assert items_of[contact.number] == expected and len(expected) > 1


def test_no_date_duration_or_otp_is_a_form(canaries: CanarySet) -> None:
    values = {f.value for f in build_forms(canaries)}
    for call in canaries.calls:
        assert str(call.duration_s) not in values and str(call.date_ms) not in values
    for sms in canaries.sms:
        assert str(sms.date_ms) not in values
        for digits in re.findall(r"\b\d{4,6}\b", sms.body):
            assert digits not in values


def test_forms_by_kind_and_fresh_lists(canaries: CanarySet) -> None:
    forms = build_forms(canaries)
    grouped = forms_by_kind(canaries)
    assert sum(len(v) for v in grouped.values()) == len(forms)
    assert all(f.kind == kind for kind, group in grouped.items() for f in group)
    forms.clear()
    assert build_forms(canaries)  # every call builds a new list
