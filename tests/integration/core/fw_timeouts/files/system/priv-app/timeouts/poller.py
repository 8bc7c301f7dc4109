import json, ssl, time, urllib.request

ctx = ssl.create_default_context()
t0 = time.time()
n = 0
while True:
    n += 1
    time.sleep(max(0.0, t0 + n * 900 - time.time()))
    start = time.time()
    try:
        with urllib.request.urlopen(f"https://update.example.org/check?n={n}", timeout=10, context=ctx) as resp:
            resp.read()
            ok, why = True, resp.status
    except OSError as exc:
        ok, why = False, repr(exc)
    print(json.dumps({"event": "poll", "n": n, "t": start, "took": time.time() - start, "ok": ok, "why": why}),
          flush=True)
