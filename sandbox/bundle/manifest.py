"""Strict validation of ``firmware.toml``.

The manifest is hostile input like the rest of the bundle, and it is also
validated on its own by the gRPC layer, so :func:`validate_manifest` takes raw
bytes, never raises anything but ``BundleError``, and rejects anything it does
not understand (unknown keys, wrong types) instead of guessing.  Error
messages name the offending key as ``services[1].exec[0]``.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from collections.abc import Mapping
from typing import NoReturn, cast

from sandbox.errors import BundleError
from sandbox.settings import BundleLimits

from .model import MANIFEST_NAME, App, Firmware, Manifest, Profile, Service, User
from .paths import UnsafePath, display, quote, split_relative

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}")
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_DESCRIPTION_CHARS = 4096
PROFILES: tuple[Profile, ...] = ("twin", "android")
USERS: tuple[User, ...] = ("system", "root", "shell")

# tomllib spends time quadratic in the parts of one dotted key (``x.a.a.a...``:
# 20,000 parts take seconds, 60,000 over a minute), and a 64 KiB manifest can
# hold 30,000.  No manifest key needs more than three parts.
MAX_KEY_PARTS = 16
_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

_TOP_KEYS = frozenset({"firmware", "services", "apps"})
_FIRMWARE_KEYS = frozenset({"name", "version", "profile", "description"})
_SERVICE_KEYS = frozenset({"name", "exec", "user", "env", "cwd"})
_APP_KEYS = frozenset({"path"})


def validate_manifest(text: bytes | str, *, limits: BundleLimits | None = None) -> Manifest:
    """Parse and validate a manifest, or raise ``BundleError`` saying what is wrong.

    ``limits`` bounds the manifest size and the number of services and apps;
    the defaults of :class:`BundleLimits` apply when it is omitted.
    """
    limits = limits or BundleLimits()
    data = _parse(text, limits)
    return _build(data, limits)


def _fail(where: str, message: str) -> NoReturn:
    raise BundleError(f"{where}: {message}" if where else message, path=MANIFEST_NAME)


def _parse(text: bytes | str, limits: BundleLimits) -> dict[str, object]:
    if isinstance(text, str):
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:
            _fail("", "manifest is not valid UTF-8")
    else:
        raw = bytes(text)
    if len(raw) > limits.max_manifest_bytes:
        _fail("", f"manifest is {len(raw)} bytes, over the limit of {limits.max_manifest_bytes}")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail("", f"manifest is not valid UTF-8 (bad byte at offset {exc.start})")
    decoded = decoded.removeprefix("\ufeff")
    _check_dotted_keys(decoded)
    try:
        return tomllib.loads(decoded)
    except ValueError as exc:  # TOMLDecodeError, and int() refusing 4300+ digit numbers
        _fail("", f"invalid TOML: {exc}")
    except RecursionError:
        _fail("", "invalid TOML: values are nested too deeply")


def _string_end(text: str, start: int) -> int:
    """The index just past the TOML string opening at ``start`` (or the end of the text)."""
    quote_char = text[start]
    if text.startswith(quote_char * 3, start):
        end = text.find(quote_char * 3, start + 3)
        if end < 0:
            return len(text)
        end += 3
        while end < len(text) and text[end] == quote_char:  # up to two more quotes belong to the content
            end += 1
        return end
    i = start + 1
    while i < len(text) and text[i] not in (quote_char, "\n"):
        i += 2 if quote_char == '"' and text[i] == "\\" else 1
    return min(i + 1, len(text))


def _check_dotted_keys(text: str) -> None:
    """Refuse a run of more than ``MAX_KEY_PARTS`` dot-joined key parts, in linear time.

    Strings and comments are skipped; bare and quoted parts joined by dots
    (with optional blanks around them) form a run.  Values never contain such
    a run (floats and dates have one dot), so valid manifests are unaffected.
    """
    i, n = 0, len(text)
    parts, after = 0, ""  # parts in the current run; the last token: "part", "dot" or ""
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            parts, after = 0, ""
            continue
        if c in "\"'" or c in _BARE_KEY_CHARS:
            if c in "\"'":
                i = _string_end(text, i)
            else:
                while i < n and text[i] in _BARE_KEY_CHARS:
                    i += 1
            parts = parts + 1 if after == "dot" else 1
            after = "part"
            if parts > MAX_KEY_PARTS:
                _fail("", f"invalid TOML: a dotted key has more than {MAX_KEY_PARTS} parts")
            continue
        if c == "." and after == "part":
            after = "dot"
        else:
            parts, after = 0, ""
        i += 1


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date/time"
    return type(value).__name__


def _table(value: object, where: str, allowed: frozenset[str]) -> Mapping[str, object]:
    if not isinstance(value, dict):
        _fail(where, f"must be a table, not {_type_name(value)}")
    table = cast(dict[str, object], value)
    for key in sorted(table):
        if key not in allowed:
            prefix = f"{where}." if where else ""
            _fail(
                f"{prefix}{display(key)}",
                f"unknown key (allowed here: {', '.join(sorted(allowed))})",
            )
    return table


def _string(value: object, where: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        _fail(where, f"must be a string, not {_type_name(value)}")
    if required and not value:
        _fail(where, "must not be empty")
    if "\x00" in value:
        _fail(where, "must not contain a NUL character")
    return value


def _matching(value: object, where: str, pattern: re.Pattern[str], allowed: str) -> str:
    text = _string(value, where)
    if not pattern.fullmatch(text):
        _fail(where, f"{quote(text)} is not allowed; use {allowed}")
    return text


def _choice(value: object, where: str, choices: tuple[str, ...]) -> str:
    text = _string(value, where)
    if text not in choices:
        _fail(where, f"must be one of {', '.join(choices)} (got {quote(text)})")
    return text


def _device_path(value: object, where: str) -> str:
    text = _string(value, where)
    if not text.startswith("/"):
        _fail(where, f"must be an absolute path (got {quote(text)})")
    if ".." in text.split("/"):
        _fail(where, f"{quote(text)} must not contain '..'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        _fail(where, "must not contain control characters")
    return text


def _array(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        _fail(where, f"must be an array, not {_type_name(value)}")
    return cast(list[object], value)


def _build(data: dict[str, object], limits: BundleLimits) -> Manifest:
    top = _table(data, "", _TOP_KEYS)
    if "firmware" not in top:
        _fail("firmware", "the [firmware] table is required")
    firmware = _firmware(top["firmware"])
    services = _services(top.get("services", []), limits)
    apps = _apps(top.get("apps", []), limits)
    if firmware.profile == "twin" and apps:
        _fail("apps", "only the android profile installs apps; set firmware.profile = \"android\"")
    if firmware.profile == "android" and services:
        _fail("services", "the android profile runs no services; ship the code as apps instead")
    return Manifest(firmware=firmware, services=services, apps=apps)


def _firmware(value: object) -> Firmware:
    table = _table(value, "firmware", _FIRMWARE_KEYS)
    for key in ("name", "version"):
        if key not in table:
            _fail(f"firmware.{key}", "is required")
    name = _matching(table["name"], "firmware.name", NAME_RE, "[A-Za-z0-9._-], max 64, starting alphanumeric")
    version = _matching(
        table["version"], "firmware.version", VERSION_RE, "[A-Za-z0-9._+~-], max 64, starting alphanumeric"
    )
    profile = cast(Profile, _choice(table.get("profile", "twin"), "firmware.profile", PROFILES))
    description = None
    if "description" in table:
        description = _string(table["description"], "firmware.description", required=False)
        if len(description) > MAX_DESCRIPTION_CHARS:
            _fail("firmware.description", f"is longer than {MAX_DESCRIPTION_CHARS} characters")
    return Firmware(name=name, version=version, profile=profile, description=description)


def _services(value: object, limits: BundleLimits) -> tuple[Service, ...]:
    items = _array(value, "services")
    if len(items) > limits.max_services:
        _fail("services", f"too many services ({len(items)} > limit {limits.max_services})")
    services: list[Service] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        service = _service(item, f"services[{index}]")
        if service.name in seen:
            _fail(
                f"services[{index}].name",
                f"duplicate service name {quote(service.name)} (also services[{seen[service.name]}])",
            )
        seen[service.name] = index
        services.append(service)
    return tuple(services)


def _service(value: object, where: str) -> Service:
    table = _table(value, where, _SERVICE_KEYS)
    for key in ("name", "exec"):
        if key not in table:
            _fail(f"{where}.{key}", "is required")
    name = _matching(table["name"], f"{where}.name", NAME_RE, "[A-Za-z0-9._-], max 64, starting alphanumeric")
    argv = _array(table["exec"], f"{where}.exec")
    if not argv:
        _fail(f"{where}.exec", "must not be empty; give the program and its arguments")
    args = [_string(arg, f"{where}.exec[{i}]", required=i == 0) for i, arg in enumerate(argv)]
    _device_path(args[0], f"{where}.exec[0]")
    user = cast(User, _choice(table.get("user", "system"), f"{where}.user", USERS))
    env = _env_table(table["env"], f"{where}.env") if "env" in table else []
    cwd = _device_path(table["cwd"], f"{where}.cwd") if "cwd" in table else None
    return Service(name=name, exec=tuple(args), user=user, env=tuple(env), cwd=cwd)


def _env_table(value: object, where: str) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        _fail(where, f"must be a table, not {_type_name(value)}")
    pairs: list[tuple[str, str]] = []
    for key, item in cast(dict[str, object], value).items():
        if not ENV_KEY_RE.fullmatch(key):
            _fail(f"{where}.{display(key)}", "is not a valid variable name; use [A-Za-z_][A-Za-z0-9_]*")
        pairs.append((key, _string(item, f"{where}.{key}", required=False)))
    return pairs


def _apps(value: object, limits: BundleLimits) -> tuple[App, ...]:
    items = _array(value, "apps")
    if len(items) > limits.max_apps:
        _fail("apps", f"too many apps ({len(items)} > limit {limits.max_apps})")
    apps: list[App] = []
    seen: set[tuple[str, ...]] = set()
    for index, item in enumerate(items):
        where = f"apps[{index}].path"
        table = _table(item, f"apps[{index}]", _APP_KEYS)
        if "path" not in table:
            _fail(where, "is required")
        text = _string(table["path"], where)
        try:
            parts = split_relative(text)
        except UnsafePath as exc:
            _fail(where, f"{display(text)}: {exc.reason}")
        if not parts:
            _fail(where, f"{display(text)} does not name a file")
        if not parts[-1].endswith(".apk"):
            _fail(where, f"{display(text)} must end in .apk")
        if parts in seen:
            _fail(where, f"{display(text)} is listed twice")
        seen.add(parts)
        apps.append(App(path="/".join(parts)))
    return tuple(apps)
