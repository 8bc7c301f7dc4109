"""``date`` for the twin: prints device time, and as root sets the device wall
clock the way toybox ``date`` does on Android.

Setting asks the clock controller to move the device wall clock, so every
firmware process sees the new time at once (monotonic clocks do not move);
the controller records the jump as a new segment of the host's mapping.  Forms accepted for
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


def set_device_time(target: float, timeout: float = 5.0) -> float:
    """Ask the clock controller (the clock page's only writer) to move the
    device wall clock; it records the jump as a new segment for the host."""
    if os.geteuid() != 0:
        raise DateError("date: cannot set date: Operation not permitted")
    req_dir = paths.under(clockd.CLOCK_REQUESTS)
    if not req_dir.is_dir():
        raise DateError("date: the device clock is not running (it starts with the firmware's services)")
    name = f"{os.getpid()}-{time.monotonic_ns()}"
    tmp = req_dir / f"{name}.tmp"
    tmp.write_text(json.dumps({"set_wall": target}), encoding="utf-8")
    os.replace(tmp, req_dir / f"{name}.req")
    from .clocklayout import SlotTable

    try:
        SlotTable.open().ring()
    except OSError:
        pass
    ack = req_dir / f"{name}.ack"
    deadline = time.monotonic() + timeout
    while not ack.exists():
        if time.monotonic() > deadline:
            raise DateError("date: the device clock did not answer")
        time.sleep(0.005)
    reply = json.loads(ack.read_text(encoding="utf-8"))
    ack.unlink(missing_ok=True)
    if "error" in reply:
        raise DateError(f"date: {reply['error']}")
    return float(reply["delta"])


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
