"""Hello service: the example bundle's only program.

Writes its pid to /data/local/tmp/hello.pid so a test can see it started, then
logs a heartbeat line to stdout every HELLO_INTERVAL seconds (default 5)
until it is sent SIGTERM.
"""

import os
import signal
import sys
import time

PID_FILE = "/data/local/tmp/hello.pid"


def main() -> int:
    interval = float(os.environ.get("HELLO_INTERVAL", "5"))
    os.makedirs(os.path.dirname(PID_FILE), exist_ok=True)
    tmp = f"{PID_FILE}.tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(tmp, PID_FILE)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    beat = 0
    while True:
        print(f"hello: pid {os.getpid()} heartbeat {beat}", flush=True)
        beat += 1
        time.sleep(interval)


if __name__ == "__main__":
    sys.exit(main())
