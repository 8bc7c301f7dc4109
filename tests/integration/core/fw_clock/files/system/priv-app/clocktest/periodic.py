import json, time
t0 = time.time()
for i in range(1, 5):
    # a 24 h periodic task, scheduled against the wall clock like AlarmManager RTC alarms
    time.sleep(max(0.0, t0 + i * 24 * 3600 - time.time()))
    print(json.dumps({"event": "periodic", "n": i, "t": time.time(), "t0": t0}), flush=True)
