"""Memory hog: 16 MiB at a time, every page touched, never freed."""
import os

hoard = []
print(f"memhog: pid {os.getpid()} starting", flush=True)
while True:
    hoard.append(bytearray(os.urandom(1024)) * (16 * 1024))
    if len(hoard) % 8 == 0:
        print(f"memhog: {len(hoard) * 16} MiB", flush=True)
