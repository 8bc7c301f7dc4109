"""CPU spinner: two processes in tight loops, no syscalls."""
import os

print(f"cpuspin: pid {os.getpid()} spinning", flush=True)
os.fork()
n = 0
while True:
    n += 1
