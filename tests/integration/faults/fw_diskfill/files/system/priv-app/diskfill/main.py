"""Disk filler: 1 MiB writes until ENOSPC, in each writable place."""
import time

chunk = b"\0" * (1024 * 1024)
for target in ("/data/local/tmp/fill.bin", "/tmp/fill.bin"):
    written = 0
    try:
        with open(target, "wb", buffering=0) as f:
            while True:
                f.write(chunk)
                written += len(chunk)
    except OSError as exc:
        print(f"diskfill: {target}: stopped after {written >> 20} MiB: {exc.strerror}", flush=True)
while True:
    time.sleep(3600)
