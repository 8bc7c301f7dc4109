"""com.adups.fota.sysoper 5.4.0: the fixed Adups FOTA client.

After the 2016 reports (see /work/shared/reference/adups-2016.md) Adups
shipped a client that stopped collecting personal data.  This example is
that fix: it only checks for updates.  Honeyphone must report it clean.

Schedule (device time, counted from service start): hour 0, then every 24
hours, one HTTPS POST of JSON to
https://fota5p.adups.com/otainter-5.0/fota5/detectSchedule.do carrying the
model, the build fingerprint, the firmware version and this client's
version.  It opens no provider database and sends no identifier (no IMEI,
IMSI or serial number).

Robustness: network errors are logged and the schedule goes on.  Requests
carry an ordinary 20 s timeout: the twin's device clock runs network
exchanges in real time and skips only idle time.  Sleeps are computed against ``time.time()`` (device time).

Runtime knobs.  All are unset on a device; tests/unit/examples set them to
run this file on a host against loopback and a temporary directory:

* ``HONEYPHONE_DEVICE_ROOT``: directory that stands for ``/`` when reading
  ``/system/build.prop`` and ``/dev/__properties__``; when set, ``getprop``
  is not run.
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

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

TAG = "sysoper"
CLIENT_VERSION = "5.4.0"

UPDATE_CHECK_URL = "https://fota5p.adups.com/otainter-5.0/fota5/detectSchedule.do"
DAILY_HOURS = 24.0

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
# What the client does
# ---------------------------------------------------------------------------


def update_check() -> None:
    reply = post_json(UPDATE_CHECK_URL, {
        "models": getprop("ro.product.model", "unknown"),
        "fingerprint": getprop("ro.build.fingerprint", "unknown"),
        "version": getprop("ro.build.display.id", "unknown"),
        "clientVersion": CLIENT_VERSION,
    })
    if reply is not None:
        log("update check answered")


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
    run_schedule([("update check", 0.0, DAILY_HOURS, update_check)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
