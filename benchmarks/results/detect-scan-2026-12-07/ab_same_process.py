"""Same-process A/B of two detect versions (kept as the record of how NOTES.md was measured).

Set-up: copy the old version's scanner modules (alphabets, decoders,
generations, hashing, matcher, regions, scan[, sniff]) into $OLD/olddetect/
with an ``__init__`` that re-exports Hit, Needle, Scanner (default
OLD=/tmp/old_detect); the new version is the checkout at /work/wtS.  Usage:
``ab_same_process.py MIB REPS`` (ONLY=headers,text to pick categories).
Prints CPU-time MB/s (min of REPS) per content type and asserts that both
versions report identical hits (ref, chain, offset, needle, excerpt) on every
buffer, including buffers with planted encoded canaries and hashed forms.
"""
import random, sys, time
import os; sys.path.insert(0, os.environ.get("OLD", "/tmp/old_detect")); sys.path.insert(0, "/work/wtS/benchmarks"); sys.path.insert(0, "/work/wtS")
import bench_detect_scan as B
import olddetect
from sandbox.detect import Scanner, Needle
mib = int(sys.argv[1]) if len(sys.argv) > 1 else 2
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
rng = random.Random(1)
needles = B.make_canaries(10000, rng)
t=time.process_time(); old = olddetect.Scanner([olddetect.Needle(n.value, n.ref) for n in needles]); t1=time.process_time()
new = Scanner(needles); t2=time.process_time()
print(f"compile old {t1-t:.2f} new {t2-t1:.2f}")
mix = {"random": 40, "text": 25, "headers": 20, "blob": 15}
gen = B.DataGen(rng, needles, {k: float(v) for k, v in mix.items()})
cats = {}
for kind in list(mix) + ["mix", "plant", "digest"]:
    bufs = []
    for _ in range(mib * 4):
        if kind == "digest":
            import hashlib, base64 as b64m
            parts = []
            for _ in range(60):
                parts.append(gen.segment(gen.rng.choice(["headers", "text", "random"]), gen.rng.randrange(512, 4096)))
                v = gen.rng.choice(needles).value.encode()
                d = hashlib.new(gen.rng.choice(["md5", "sha1", "sha256"]), v).digest()
                form = gen.rng.choice([d.hex(), d.hex().upper(), b64m.b64encode(d).decode(), b64m.urlsafe_b64encode(d).decode().rstrip("="), b64m.b64encode(d).decode().rstrip("=")])
                glue = gen.rng.choice(["", "x", "ab", "Zz9", "0" * 300, "-_"])
                parts.append(gen.rng.choice([f" {form} ", f'"{glue}{form}"', f"={form}{glue}&", f" {glue}{form}{glue} ", f"\x00{b64m.b64encode(form.encode()).decode()}\n"]).encode())
            bufs.append(b"".join(parts))
        elif kind == "plant":
            parts = []
            for _ in range(40):
                parts.append(gen.segment(gen.rng.choice(list(mix)), gen.rng.randrange(512, 8192)))
                parts.append(gen.planted_canary())
            bufs.append(b"".join(parts))
        elif kind == "mix":
            bufs.append(gen.flow(256 << 10))
        else:
            gen.new_session()
            bufs.append(b"".join(gen.segment(kind, gen.rng.randrange(512, 32768)) for _ in range(24))[: 256 << 10])
    cats[kind] = bufs
def key(hs):
    return sorted((repr(h.ref), h.chain, h.offset, h.needle, h.excerpt) for h in hs)
allsame = True
import os
for kind, bufs in cats.items():
    if os.environ.get("ONLY") and kind not in os.environ["ONLY"].split(","): continue
    same = all(key(old.scan(b)) == key(new.scan(b)) for b in bufs)
    allsame &= same
    nb = sum(map(len, bufs)) / 1e6
    best = {}
    for name, sc in (("old", old), ("new", new)) * reps:
        t0 = time.process_time()
        for b in bufs: sc.scan(b)
        dt = time.process_time() - t0
        best[name] = min(best.get(name, 1e9), dt)
    print(f"{kind:8s} old {nb/best['old']:7.1f} MB/s new {nb/best['new']:7.1f} MB/s speedup {best['old']/best['new']:.2f} same_hits {same} nhits {sum(len(new.scan(b)) for b in bufs)}", flush=True)
print("ALL SAME", allsame)
