import json
import time

t0 = time.time()
target = t0 + 72 * 3600
print(json.dumps({"event": "scheduled", "t0": t0, "due": target}), flush=True)
while time.time() < target:
    time.sleep(min(600.0, max(target - time.time(), 0.01)))
print(json.dumps({"event": "fired", "t": time.time(), "t0": t0}), flush=True)
