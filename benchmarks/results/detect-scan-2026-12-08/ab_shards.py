"""Same-process A/B of one shard per automaton (60,000 patterns) against two
(30,000), same needles and buffers, min of 5 reps, CPU time; asserts identical
hits.  Run from the repository root: python benchmarks/results/detect-scan-2026-12-08/ab_shards.py"""
import sys, random, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2])); sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
import bench_detect_scan as B
from sandbox.detect import Scanner
from sandbox.detect.matcher import LiteralMatcher
rng = random.Random(1)
needles = B.make_canaries(10000, rng)
one = Scanner(needles)
two = Scanner(needles)
two._lit = LiteralMatcher(two._lit_pats, [False]*len(two._lit_pats), backend=two.backend, shard_size=30000)
two._xor = LiteralMatcher(two._xor_pats, backend=two.backend, shard_size=30000)
print("shards", len(one._lit._hs), len(one._xor._hs), "vs", len(two._lit._hs), len(two._xor._hs))
mix = {"random": 40., "text": 25., "headers": 20., "blob": 15.}
gen = B.DataGen(rng, needles, mix)
def key(hs): return sorted((repr(h.ref), h.chain, h.offset, h.needle, h.excerpt) for h in hs)
for kind in list(mix) + ["mix"]:
    bufs = []
    for _ in range(16):
        if kind == "mix":
            bufs.append(gen.flow(256 << 10)); continue
        gen.new_session()
        bufs.append(b"".join(gen.segment(kind, gen.rng.randrange(512, 32768)) for _ in range(24))[: 256 << 10])
    same = all(key(one.scan(b)) == key(two.scan(b)) for b in bufs)
    best = {}
    for name, sc in (("two", two), ("one", one)) * 5:
        t0 = time.process_time()
        for b in bufs: sc.scan(b)
        best[name] = min(best.get(name, 1e9), time.process_time() - t0)
    mb = sum(map(len, bufs)) / 1e6
    print(f"{kind:8s} two-shards {mb/best['two']:6.1f} MB/s one-shard {mb/best['one']:6.1f} MB/s speedup {best['two']/best['one']:.2f} same {same}", flush=True)
