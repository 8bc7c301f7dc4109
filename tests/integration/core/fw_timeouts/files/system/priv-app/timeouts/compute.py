import hashlib, json, ssl, time, urllib.request

time.sleep(3600)
t0, c0 = time.time(), time.process_time()
h = b"x"
while time.process_time() - c0 < 2.0:  # 2 s of CPU
    h = hashlib.sha256(h).digest()
t1 = time.time()
try:
    with urllib.request.urlopen("https://stats.example.org/ping", data=h.hex().encode(), timeout=10,
                                context=ssl.create_default_context()) as resp:
        ok = resp.status == 200
except OSError:
    ok = False
print(json.dumps({"event": "compute", "device_s": t1 - t0, "cpu_s": time.process_time() - c0, "sent": ok}),
      flush=True)
time.sleep(10 ** 7)
