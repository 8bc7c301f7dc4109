"""Which store ``honeyphone serve`` opens: HONEYPHONE_STORE, overridden by --store; the URL shown without its password."""

from __future__ import annotations

import argparse

import pytest

from sandbox.cli.fleet import fleet_settings, redact_store
from sandbox.settings import Settings


def test_the_store_is_chosen_by_env_or_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HONEYPHONE_STORE", raising=False)
    assert Settings.from_env().fleet.store == ""  # the embedded SQLite
    monkeypatch.setenv("HONEYPHONE_STORE", "postgresql://hp@db/hp")
    settings = Settings.from_env()
    assert settings.fleet.store == "postgresql://hp@db/hp"
    flag = argparse.Namespace(store="postgresql://other@db2/hp", lease_seconds=None, max_attempts=None, data=None)
    assert fleet_settings(flag, settings).fleet.store == "postgresql://other@db2/hp"  # the flag wins
    no_flag = argparse.Namespace(store=None, lease_seconds=None, max_attempts=None, data=None)
    assert fleet_settings(no_flag, settings).fleet.store == "postgresql://hp@db/hp"


def test_the_store_url_is_shown_without_its_password() -> None:
    assert redact_store("postgresql://hp:s3cret@db:5432/hp") == "postgresql://hp:***@db:5432/hp"
    assert redact_store("postgresql://hp@db/hp") == "postgresql://hp@db/hp"
