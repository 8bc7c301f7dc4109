"""JSON storage: canonical, versioned, exact round trips, strict loading."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.canary import SCHEMA, CanaryError, CanarySet, CanarySpec, build_forms, from_json, generate, to_json


@pytest.fixture(scope="module")
def canaries() -> CanarySet:
    return generate(CanarySpec(seed=77, analysis_id="json", contacts=10, sms=10, calls=10, locale="zh_CN"))


def test_round_trip_is_exact(canaries: CanarySet) -> None:
    text = to_json(canaries)
    loaded = from_json(text)
    assert loaded == canaries
    assert build_forms(loaded) == build_forms(canaries)
    assert to_json(loaded) == text
    assert from_json(text.encode()) == canaries


def test_output_is_canonical_and_versioned(canaries: CanarySet) -> None:
    text = to_json(canaries)
    data = json.loads(text)
    assert data["schema"] == SCHEMA == "honeyphone.canaries/1"
    assert text == json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert "\\u" not in text  # UTF-8 text, not escapes
    assert set(data) == {"schema", "spec", "region", "contacts", "sms", "calls"}
    assert data["spec"] == {
        "seed": 77,
        "analysis_id": "json",
        "contacts": 10,
        "sms": 10,
        "calls": 10,
        "locale": "zh_CN",
        "start_ms": canaries.spec.start_ms,
        "region": None,
    }


def test_same_set_same_bytes() -> None:
    spec = CanarySpec(seed=1, analysis_id="bytes", contacts=4, sms=4, calls=4)
    assert to_json(generate(spec)) == to_json(generate(spec))


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(min_value=-(2**80), max_value=2**80),
    analysis_id=st.text(min_size=1, max_size=30),
    locale=st.sampled_from(["en_US", "de_DE", "ja_JP", "ar_AA"]),
)
def test_round_trip_any_spec(seed: int, analysis_id: str, locale: str) -> None:
    region = "AE" if locale == "ar_AA" else None
    spec = CanarySpec(
        seed=seed, analysis_id=analysis_id, contacts=2, sms=2, calls=2, locale=locale, region=region
    )
    canaries = generate(spec)
    assert from_json(to_json(canaries)) == canaries


def corrupt(canaries: CanarySet, change: Callable[[dict[str, Any]], None]) -> str:
    data = json.loads(to_json(canaries))
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema="honeyphone.canaries/2"), "unsupported canary schema"),
        (lambda d: d.pop("region"), "missing keys"),
        (lambda d: d.update(extra=1), "unexpected keys"),
        (lambda d: d["spec"].update(seed=True), "integer"),
        (lambda d: d["spec"].update(contacts=-1), "outside"),
        (lambda d: d["contacts"][0].update(number=123), "string"),
        (lambda d: d["contacts"][0].pop("email"), "missing keys"),
        (lambda d: d["sms"][0].update(type=3), "sms type"),
        (lambda d: d["sms"][0].update(read=1), "true or false"),
        (lambda d: d["sms"][0].update(body="no token here"), "token"),
        (lambda d: d["calls"][0].update(type=4), "call type"),
        (lambda d: d["calls"][0].update(duration_s=1.5), "integer"),
        (lambda d: d["calls"][1].update(id=d["calls"][0]["id"]), "duplicate"),
        (lambda d: d.update(sms={}), "array"),
        (lambda d: d.update(spec=[]), "object"),
    ],
)
def test_loading_is_strict(
    canaries: CanarySet, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(CanaryError, match=message):
        from_json(corrupt(canaries, change))


@pytest.mark.parametrize("text", ["", "{", "[]", "null", b"\xff"])
def test_not_a_canary_document(text: str | bytes) -> None:
    with pytest.raises(CanaryError):
        from_json(text)
