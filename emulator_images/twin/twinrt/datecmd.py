"""``date`` for the twin: prints device time, and as root sets the device wall
clock the way toybox ``date`` does on Android.

Setting moves the start of the shared libfaketime spec by the jump, so every
firmware process sees the new wall clock at once while keeping the common
base and rate; each jump is recorded (real time, seconds) so the host can
extend its host->device mapping with a new segment.  Forms accepted for
setting: ``date @SECONDS``, ``date -s 'YYYY-MM-DD hh:mm[:ss]'`` and
``date MMDDhhmm[[CC]YY][.ss]``.  Everything else goes to coreutils ``date``.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import sys
import time

from . import clockd, paths

SPEC_RE = re.compile(r"^@(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)( x[0-9.]+)?\s*$")
TOYBOX_RE = re.compile(r"^(\d\d)(\d\d)(\d\d)(\d\d)(\d{2}|\d{4})?(?:\.(\d\d))?$")


class DateError(Exception):
    pass


def parse_target(argv: list[str], now: float) -> float | None:
    """The epoch to set, or None when argv only asks to print."""
    if len(argv) == 2 and argv[0] in ("-s", "--set"):
        text = argv[1].strip()
        if text.startswith("@"):
            return float(text[1:])
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
            try:
                return float(calendar.timegm(time.strptime(text, fmt)))
            except ValueError:
                continue
        raise DateError(f"date: bad date '{text}'")
    if len(argv) == 1 and argv[0].startswith("@"):
        try:
            return float(argv[0][1:])
        except ValueError as exc:
            raise DateError(f"date: bad date '{argv[0]}'") from exc
    if len(argv) == 1 and (m := TOYBOX_RE.match(argv[0])):
        month, day, hour, minute, year, sec = m.groups()
        cur = time.gmtime(now)
        y = cur.tm_year if year is None else (int(year) if len(year) == 4 else 2000 + int(year))
        return float(calendar.timegm((y, int(month), int(day), int(hour), int(minute), int(sec or 0), 0, 0, 0)))
    return None


def shift_spec(spec: str, delta: float) -> str:
    m = SPEC_RE.match(spec.strip())
    if not m:
        raise DateError(f"date: unexpected device clock spec {spec.strip()!r}")
    start = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + round(delta)
    return "@" + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start)) + (m.group(2) or "")


def set_device_time(target: float) -> float:
    spec_path = paths.under(clockd.CLOCK_SPEC)
    if not spec_path.exists():
        raise DateError("date: the device clock is not running (it starts with the firmware's services)")
    if os.geteuid() != 0:
        raise DateError("date: cannot set date: Operation not permitted")
    delta = target - time.time()
    tmp = spec_path.with_suffix(".tmp")
    tmp.write_text(shift_spec(spec_path.read_text(encoding="utf-8"), delta) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, spec_path)
    with open(paths.under(clockd.CLOCK_JUMPS), "a", encoding="utf-8") as f:
        f.write(json.dumps({"real": clockd.real_time(), "delta": round(delta)}) + "\n")
    return delta


def main(argv: list[str]) -> int:
    try:
        target = parse_target(argv, time.time())
        if target is None:
            os.execvp("/bin/date", ["date", *argv])
        set_device_time(target)
    except DateError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(time.strftime("%a %b %d %H:%M:%S %Z %Y", time.gmtime()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
