"""Kill my own tracer, leaving a double-forked, setsid'd survivor behind."""
import os
import signal
import sys
import time


def tracer_pid() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def survivor() -> None:
    os.setsid()
    if os.fork():
        os._exit(0)
    n = 0
    while True:
        n += 1
        with open("/data/local/tmp/survivor.txt", "a") as f:
            f.write(f"alive {n} tracer={tracer_pid()}\n")
        time.sleep(60)  # device seconds: ~ every 17 ms at 3600x


print(f"tracerkill: pid {os.getpid()} tracer {tracer_pid()}", flush=True)
if os.fork() == 0:
    survivor()
time.sleep(3600)  # let an hour of device time pass first
victim = tracer_pid()
print(f"tracerkill: killing tracer {victim}", flush=True)
os.kill(victim, signal.SIGKILL)
print("tracerkill: still alive after killing the tracer", flush=True)
time.sleep(1e6)
sys.exit(0)
