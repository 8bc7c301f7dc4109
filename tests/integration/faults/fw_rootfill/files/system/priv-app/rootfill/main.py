"""Root disk filler: writes to /var/cache (the container's own layer) slowly
enough to be caught, up to 256 MiB, then waits."""
import os
import time

chunk = b"\1" * (1024 * 1024)
written = 0
with open("/var/cache/fill.bin", "wb", buffering=0) as f:
    while written < 256 * 1024 * 1024:
        f.write(chunk)
        written += len(chunk)
        if written % (16 << 20) == 0:
            os.fsync(f.fileno())
            print(f"rootfill: {written >> 20} MiB", flush=True)
while True:
    time.sleep(3600)
