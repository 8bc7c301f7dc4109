import json, time
t0 = time.time()
target = t0 + 48 * 3600
while time.time() < target:
    time.sleep(600)  # poll every 10 device-minutes
print(json.dumps({"event": "poll48", "t": time.time(), "t0": t0}), flush=True)
