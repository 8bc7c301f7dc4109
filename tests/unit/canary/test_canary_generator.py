"""The generator: reproducible, unique per analysis, valid and realistic data."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.canary import (
    CanaryError,
    CanarySet,
    CanarySpec,
    build_forms,
    generate,
    number_space,
    region_for_locale,
)
from sandbox.canary.model import HISTORY_MS

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "ja_JP", "pt_BR", "zh_CN"]


def small(seed: int, analysis_id: str, locale: str = "en_US", region: str | None = None) -> CanarySpec:
    """3 contacts, 3 SMS, 3 calls: enough for every form, fast enough for thousands."""
    return CanarySpec(
        seed=seed, analysis_id=analysis_id, contacts=3, sms=3, calls=3, locale=locale, region=region
    )


seeds = st.integers(min_value=-(2**63), max_value=2**63)
analysis_ids = st.text(min_size=1, max_size=40)


def numbers_of(canaries: CanarySet) -> set[str]:
    return (
        {c.number for c in canaries.contacts}
        | {m.address for m in canaries.sms}
        | {c.number for c in canaries.calls}
    )


def form_values(canaries: CanarySet) -> set[str]:
    return {form.value for form in build_forms(canaries)}


def test_default_counts() -> None:
    canaries = generate(CanarySpec(seed=1, analysis_id="defaults"))
    assert (len(canaries.contacts), len(canaries.sms), len(canaries.calls)) == (25, 40, 30)
    assert canaries.region == "US"
    assert [c.id for c in canaries.contacts][:3] == ["c0000", "c0001", "c0002"]
    assert canaries.sms[7].id == "s0007" and canaries.calls[7].id == "l0007"


def test_same_spec_gives_identical_set() -> None:
    spec = CanarySpec(seed=42, analysis_id="an-1", locale="de_DE")
    first = generate(spec)
    generate(CanarySpec(seed=3, analysis_id="in-between", locale="de_DE"))  # cached Faker reseeded
    assert generate(spec) == first
    assert build_forms(generate(CanarySpec(seed=42, analysis_id="an-1", locale="de_DE"))) == build_forms(first)


@settings(max_examples=25, deadline=None)
@given(seed=seeds, analysis_id=analysis_ids)
def test_reproducible_for_any_seed_and_id(seed: int, analysis_id: str) -> None:
    spec = small(seed, analysis_id)
    assert generate(spec) == generate(spec)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(a=st.tuples(seeds, analysis_ids), b=st.tuples(seeds, analysis_ids))
def test_different_analyses_share_no_form(a: tuple[int, str], b: tuple[int, str]) -> None:
    if a == b:
        return
    first = generate(small(a[0], a[1]))
    second = generate(small(b[0], b[1]))
    assert form_values(first).isdisjoint(form_values(second))


def test_1000_analyses_have_pairwise_disjoint_forms() -> None:
    # Same id with different seeds, same seed with different ids, and both varied.
    pairs = [(s, "shared-id") for s in range(334)]
    pairs += [(7, f"analysis-{i}") for i in range(333)]
    pairs += [(1000 + i, f"run/{i}") for i in range(333)]
    assert len(set(pairs)) == 1000
    owner: dict[str, int] = {}
    for index, (seed, analysis_id) in enumerate(pairs):
        for value in form_values(generate(small(seed, analysis_id))):
            assert owner.setdefault(value, index) == index, (value, pairs[owner[value]], pairs[index])


@pytest.mark.parametrize("locale", LOCALES)
def test_numbers_are_valid_mobiles_of_the_locale(locale: str) -> None:
    canaries = generate(CanarySpec(seed=5, analysis_id=f"valid-{locale}", locale=locale))
    region = region_for_locale(locale)
    assert canaries.region == region
    for e164 in numbers_of(canaries):
        number = phonenumbers.parse(e164)
        assert phonenumbers.is_valid_number(number), e164
        assert phonenumbers.region_code_for_number(number) == region, e164
        assert phonenumbers.number_type(number) in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        ), e164
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == e164


def test_every_phonenumbers_region_can_be_drawn_from() -> None:
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        spec = CanarySpec(seed=1, analysis_id="regions", contacts=2, sms=0, calls=0, region=region)
        for contact in generate(spec).contacts:
            assert phonenumbers.is_valid_number_for_region(phonenumbers.parse(contact.number), region)


def test_number_space_is_large_enough_for_the_documented_estimates() -> None:
    assert number_space("US") > 2e9
    assert number_space("FR") > 1e8


def test_sms_bodies_carry_their_rare_token_once() -> None:
    canaries = generate(CanarySpec(seed=9, analysis_id="tokens", sms=200))
    tokens = [m.token for m in canaries.sms]
    assert len(set(t.lower() for t in tokens)) == len(tokens)
    for message in canaries.sms:
        assert message.body.count(message.token) == 1
        assert len(message.token) >= 12 and message.token.isascii()
        assert "\n" not in message.body
    assert len({m.body.replace(m.token, "") for m in canaries.sms}) > 50  # varied templates


def test_contact_names_and_emails_carry_a_unique_token() -> None:
    canaries = generate(CanarySpec(seed=11, analysis_id="names", contacts=300))
    names = [c.display_name for c in canaries.contacts]
    assert len(set(names)) == len(names)
    assert len({c.middle_name.lower() for c in canaries.contacts}) == len(names)
    emails = [c.email for c in canaries.contacts if c.email is not None]
    assert 0.4 * len(names) < len(emails) < 0.8 * len(names)
    assert len(set(emails)) == len(emails)
    for contact in canaries.contacts:
        assert contact.middle_name in contact.display_name
        assert contact.given_name in contact.display_name and contact.family_name in contact.display_name
        assert len(contact.display_name) >= 12
        if contact.email is not None:
            assert contact.middle_name.lower() in contact.email.split("@")[0]


@pytest.mark.parametrize("locale", ["ja_JP", "zh_CN"])
def test_family_first_locales(locale: str) -> None:
    for contact in generate(CanarySpec(seed=2, analysis_id="cjk", locale=locale)).contacts:
        assert contact.display_name == f"{contact.family_name}{contact.given_name} {contact.middle_name}"
        assert len(contact.display_name) >= 12


def test_numbers_mix_contacts_and_strangers_without_accidental_reuse() -> None:
    canaries = generate(CanarySpec(seed=3, analysis_id="mix", contacts=25, sms=400, calls=300))
    contact_numbers = [c.number for c in canaries.contacts]
    assert len(set(contact_numbers)) == len(contact_numbers)
    for numbers in ([m.address for m in canaries.sms], [c.number for c in canaries.calls]):
        known = sum(n in contact_numbers for n in numbers)
        assert 0.3 * len(numbers) < known < 0.8 * len(numbers)
    # Strangers of SMS and calls are drawn fresh: they never collide by accident.
    sms_strangers = {m.address for m in canaries.sms} - set(contact_numbers)
    call_strangers = {c.number for c in canaries.calls} - set(contact_numbers)
    assert not sms_strangers & call_strangers


def test_no_contacts_means_only_strangers() -> None:
    canaries = generate(CanarySpec(seed=3, analysis_id="lonely", contacts=0, sms=5, calls=5))
    assert canaries.contacts == () and len(numbers_of(canaries)) >= 2


def test_dates_types_and_durations_are_plausible() -> None:
    spec = CanarySpec(seed=4, analysis_id="shape", sms=500, calls=500, start_ms=1_800_000_000_000)
    canaries = generate(spec)
    for date_ms in [m.date_ms for m in canaries.sms] + [c.date_ms for c in canaries.calls]:
        assert spec.start_ms - HISTORY_MS <= date_ms < spec.start_ms
    assert Counter(m.type for m in canaries.sms).keys() == {1, 2}
    assert all(m.read for m in canaries.sms if m.type == 2)
    assert any(not m.read for m in canaries.sms)
    assert Counter(c.type for c in canaries.calls).keys() == {1, 2, 3, 5}
    for call in canaries.calls:
        if call.type in (3, 5):
            assert call.duration_s == 0
        else:
            assert 1 <= call.duration_s <= 7200


def test_ten_thousand_items_per_kind() -> None:
    started = time.perf_counter()
    spec = CanarySpec(seed=8, analysis_id="scale", contacts=10_000, sms=10_000, calls=10_000)
    canaries = generate(spec)
    forms = build_forms(canaries)
    assert time.perf_counter() - started < 30  # a few seconds normally; generous for shared CI
    assert (len(canaries.contacts), len(canaries.sms), len(canaries.calls)) == (10_000,) * 3
    assert len({c.number for c in canaries.contacts}) == 10_000
    assert len({c.display_name for c in canaries.contacts}) == 10_000
    assert len({m.token for m in canaries.sms}) == 10_000
    assert len(forms) > 100_000


def test_concurrent_generation_matches_sequential() -> None:
    specs = [small(i, "threads") for i in range(8)]
    expected = [generate(spec) for spec in specs]
    results: dict[int, CanarySet] = {}

    def work(index: int) -> None:
        for _ in range(5):
            results[index] = generate(specs[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(specs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(len(specs))] == expected


@pytest.mark.parametrize(
    ("locale", "region"),
    [
        ("en_US", "US"),
        ("en_GB", "GB"),
        ("de_DE", "DE"),
        ("fr_FR", "FR"),
        ("zh_CN", "CN"),
        ("fr_QC", "CA"),
        ("en", "US"),
    ],
)
def test_region_for_locale(locale: str, region: str) -> None:
    assert region_for_locale(locale) == region


def test_locale_without_region_needs_an_override() -> None:
    with pytest.raises(CanaryError, match="region"):
        generate(small(1, "x", "ar_AA"))
    canaries = generate(small(1, "x", "ar_AA", region="AE"))
    assert canaries.region == "AE"


def test_unknown_locale_is_rejected() -> None:
    with pytest.raises(CanaryError, match="Faker has no locale"):
        generate(small(1, "x", "xx_US"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": True},
        {"seed": 1.5},
        {"analysis_id": ""},
        {"analysis_id": "x" * 257},
        {"contacts": -1},
        {"sms": 100_001},
        {"calls": False},
        {"locale": ""},
        {"start_ms": 1000},
        {"region": "us"},
    ],
)
def test_spec_validation(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"seed": 1, "analysis_id": "a", **kwargs}
    with pytest.raises(CanaryError):
        CanarySpec(**args)  # type: ignore[arg-type]


def test_canary_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        CanarySpec(seed=1, analysis_id="")


def test_import_builds_no_faker() -> None:
    code = "import sys, sandbox.canary; assert 'faker' not in sys.modules, 'faker imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_items_lookup_and_by_kind() -> None:
    canaries = generate(small(1, "lookup"))
    grouped = canaries.by_kind()
    assert grouped["contact"] == canaries.contacts and grouped["call_log"] == canaries.calls
    assert canaries.item("s0001") == canaries.sms[1]
    with pytest.raises(KeyError):
        canaries.item("nope")
    assert [item.id for _, item in canaries.items()][::3] == ["c0000", "s0000", "l0000"]


def test_rare_tokens_are_pinned() -> None:
    # Tokens depend only on our code and Python's Mersenne Twister, not on Faker
    # or phonenumbers releases: a stored set's tokens can always be regenerated.
    canaries = generate(CanarySpec(seed=1, analysis_id="golden", contacts=4, sms=4, calls=0))
    assert [c.middle_name for c in canaries.contacts] == [
        "Faiskindnai",
        "Pirdraschain",
        "Shoumhobri",
        "Shaiprumpria",
    ]
    assert [m.token for m in canaries.sms] == [
        "Frendbandvar-EUBM",
        "Sliguga-XAW3",
        "Prikski-SADD",
        "Gumkrunmond-GYTH",
    ]


def test_reproducible_across_processes() -> None:
    code = (
        "from sandbox.canary import CanarySpec, generate, to_json;"
        "print(to_json(generate(CanarySpec(seed=5, analysis_id='proc', contacts=5, sms=5, calls=5))))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1
