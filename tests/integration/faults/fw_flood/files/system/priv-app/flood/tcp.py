"""TCP flood: one bulk stream of 96 MiB to 198.51.100.20:9999 (raw, not HTTP)."""
import socket
import time

chunk = b"T" * 65536
total = 0
try:
    with socket.create_connection(("198.51.100.20", 9999), timeout=1e7) as s:  # device seconds
        while total < 96 * 1024 * 1024:
            s.sendall(chunk)
            total += len(chunk)
except OSError as exc:
    print(f"tcpflood: {exc}", flush=True)
print(f"tcpflood: sent {total >> 20} MiB", flush=True)
while True:
    time.sleep(3600)
