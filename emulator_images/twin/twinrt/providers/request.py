"""What a provider call carries: its URI and who is calling.

``Uri`` is the part of ``android.net.Uri`` the providers read, ``_match`` is
``UriMatcher``; the calling identity is what a provider learns from Binder
(here: the uid of the ``content`` process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Uri:
    """The parts of ``android.net.Uri`` the providers look at."""

    text: str
    scheme: str
    authority: str | None
    segments: list[str]
    query: dict[str, list[str]] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def bool_param(self, name: str) -> bool:
        """``Uri.getBooleanQueryParameter``: false only for missing, "false" or "0"."""
        v = self.param(name)
        if v is None:
            return False
        return v.lower() not in ("false", "0")

    def __str__(self) -> str:
        return self.text


def parse_uri(text: str) -> Uri:
    parts = urlsplit(text)
    authority = parts.netloc if text.find("//") == len(parts.scheme) + 1 else None
    segments = [unquote(s) for s in parts.path.split("/") if s]
    query = parse_qs(parts.query, keep_blank_values=True)
    return Uri(text, parts.scheme, authority or None, segments, query)


def _match(uri: Uri, table: Sequence[tuple[str, str]]) -> str | None:
    """``UriMatcher.match``: ``#`` is a run of digits, ``*`` any one segment."""
    for pattern, code in table:
        pat = [p for p in pattern.split("/") if p]
        if len(pat) != len(uri.segments):
            continue
        for want, got in zip(pat, uri.segments):
            if want == "#":
                if not got.isascii() or not got.isdigit():
                    break
            elif want != "*" and want != got:
                break
        else:
            return code
    return None


def calling_package() -> str | None:
    """``Content.resolveCallingPackage``: "root" for uid 0, the shell package for 2000."""
    uid = os.getuid()
    if uid == 0:
        return "root"
    if uid == 2000:
        return "com.android.shell"
    return None


def _exception_message(message: str | None, uri: Uri) -> str:
    """``ContactsDatabaseHelper.exceptionMessage``."""
    uid = os.getuid()
    names = {0: "root", 1000: "android.uid.system:1000", 2000: "shell"}
    text = (f"{message}; " if message is not None else "") + f"URI: {uri}"
    text += f", calling user: {names.get(uid, str(uid))}"
    if uid == 2000:
        text += ", calling package:com.android.shell"
    return text
