import json, time

t0 = time.time()
time.sleep(12 * 3600)
print(json.dumps({"event": "late", "t0": t0, "t": time.time()}), flush=True)
time.sleep(10 ** 7)
