"""Authority routing: which provider a ``content://`` URI's authority reaches.

``provider_for`` is what ``getContentProviderExternal`` does for ``content``.
"""

from __future__ import annotations

from .base import Provider
from .calllog import CallLogProvider
from .contacts import ContactsProvider
from .sms import SmsProvider

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
