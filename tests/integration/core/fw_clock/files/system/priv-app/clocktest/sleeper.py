import json, time
t0 = time.time()
print(json.dumps({"event": "start", "t": t0}), flush=True)
time.sleep(72 * 3600)
print(json.dumps({"event": "sleep72", "t": time.time(), "t0": t0}), flush=True)
