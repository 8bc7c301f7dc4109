"""Compile time and peak RSS of a Scanner for 10,000 canaries, with the
automata compiled serially (``compile_workers=1``) or in threads (default).
Run each in a fresh process, from the repository root:

    python benchmarks/results/detect-scan-2026-12-08/compile_workers.py 1
    python benchmarks/results/detect-scan-2026-12-08/compile_workers.py

(The figures in NOTES.md's compile table came from this measurement.)
"""
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import bench_detect_scan as B  # noqa: E402
from sandbox.detect import Scanner  # noqa: E402

needles = B.make_canaries(10000, random.Random(1))
workers = int(sys.argv[1]) if len(sys.argv) > 1 else None
t, c = time.perf_counter(), time.process_time()
Scanner(needles, compile_workers=workers)
print(f"workers {workers} wall {time.perf_counter() - t:.2f} s cpu {time.process_time() - c:.2f} s "
      f"peak rss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")
