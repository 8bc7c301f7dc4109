"""Throughput benchmark for sandbox.detect against ``grep -F`` on the same bytes.

Builds ~10,000 canaries x 5 forms (phone number renderings plus an SMS body
or a name), generates capture-like data (random binary ~40 %, text/JSON
~25 %, HTTP-ish headers with cookies/tokens/query strings ~20 %, base64 blobs
~15 %, plus a few planted encoded canaries), writes it to a temporary file,
then times, in the same run:

* ours: ``Scanner.scan`` over the file read back in flow-sized buffers
  (16 KiB - 1 MiB, like reassembled flows), all decoders and hashes on;
* grep: ``LC_ALL=C grep -F -c -f forms.txt data.bin`` (plain needle values
  only, no decoding) via subprocess.

Prints one JSON object.  ``--size-mib 20`` for a quick run; default 500.
``--profile`` adds a cProfile top list (stderr) for the first 32 MiB.

What bounds the speed (issue 15, profiled again 2026-12-07 after the numpy /
decode-once work; same-process A/B figures, CPU time, 256 KiB flows; see
``results/detect-scan-2026-12-07/NOTES.md``): the per-byte C passes of every
generation and, above all, Python work per *token*.

* Random binary (~115-130 MB/s per core) is bounded by the C passes: the
  literal automaton (one Hyperscan shard since 2026-12-08, ~0.6 ms/MB), the
  XOR-difference automaton (~1 ms/MB; the difference sequence itself is one
  numpy XOR, 0.1 ms/MB, where big-int XOR cost 1.7), the triggers (2 groups,
  ~2 ms/MB) and the class-map ``translate``s and run ``find``s (~1.5 ms/MB).
  One trigger group is faster on binary and base64, slower on text.
* Header-heavy traffic (~15 MB/s) has ~9 distinct base64-alphabet runs per
  KB (request ids, paths, query strings; repeated ones are skipped in C).
  Each costs ~10-15 us over its life: a dozen C calls from Python to
  classify and decode it (``regions.Decoding.runs``), ~3 us of digest
  lookup by window, and in the next generation a raw deflate and a brotli
  attempt on its decoded piece (~2.4 and ~2 us of zlib/brotli set-up per
  call, C; the head checks before them run in bulk, ``sniff.py``).
  numpy does not remove these: run finding with array ops costs ~7 ms/MB
  (binary data has a class boundary every few bytes, twice the ``find``
  loop), and a bulk window lookup for digests was no faster (per-window
  slicing replaced per-run calls).
* Text (~55-60 MB/s): JSON strings with escapes (~2.5 per KB) cost ~5 us
  each to bound; identical ones (and identical query components and HTML
  regions) are decoded once per generation and chain.
* Base64 blobs (~22 MB/s): an unpadded long run is decoded at all 4
  alignments (~10 ms per MB of run; a numpy regrouping was slower than
  ``a2b_base64`` plus big-int shifts), so the next generation scans ~2x the
  blob's size of random-looking bytes through every C pass.

So 120 MB/s on the mix (8 ms per MB) needs the per-token work below ~1 us:
out of the interpreter (a compiled extension that classifies, decodes and
emits runs in one loop) -- a process pool over flows scales with cores, not
per core.

2026-12-07: compiling 10,000 canaries went from ~3.6 to ~2.4 s CPU (in one
process): needles ending in another needle (E.164 -> country-code digits ->
digits) share its literal and XOR pattern (a fifth fewer patterns), and the
digest table is built with C loops (``hashing.digest_table``).  Scan speed
moved by ~5 % only (base64 runs shared by the digest lookup and the
decoders, repeated runs skipped in C).  numpy was tried next (above): it
pays for whole-buffer arithmetic (the XOR difference, bulk head checks),
not for finding or decoding runs.

2026-12-08: the literal, XOR and trigger automata compile in parallel
threads (Hyperscan's compiler releases the GIL) while the main thread builds
the digest table, and one shard per automaton holds up to 60,000 patterns:
compiling 10,000 canaries takes 1.7-2.1 s wall on 2 cores (2.9-3.5 s CPU over
all threads; peak RSS ~320 MiB, from two compilers at once), and a buffer gets one
pass per automaton instead of two (random +8 %, text +25 %; headers and
blobs, bound by per-token Python work, unchanged).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import cProfile
import gzip
import io
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.detect import Needle, Scanner  # noqa: E402

WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will up "
    "other about out many then them these so some her would make like him into time has look two more write "
    "go see number no way could people my than first water been call who oil its now find long down day did "
    "get come made may part message phone contact backup sync upload device telemetry analytics session"
).split()
FIRST = "Alice Bruno Chiara Dmitri Elena Farid Greta Hiro Ines Jonas Kemal Lucia Mateo Nadia Oskar Priya".split()
LAST = "Quill Rasko Santoro Tamm Ulloa Vance Wexler Yoon Zeller Abara Bexley Corvin Dace Elwood Fenn Galt".split()


def make_canaries(n: int, rng: random.Random) -> list[Needle]:
    """~5 forms per canary: 4 phone renderings + an SMS body or a full name."""
    needles: list[Needle] = []
    for i in range(n):
        area = 200 + (i // 10000) * 37 % 800
        line = i % 10000
        e164 = f"+1{area}555{line:04d}"
        forms = [e164, f"{area}555{line:04d}", f"({area}) 555-{line:04d}", f"{area}-555-{line:04d}"]
        if i % 2:
            forms.append(f"Pick up {rng.choice(WORDS)} at {i % 12 + 1}pm ZQX{i:05d}{rng.randrange(36**3):x}")
        else:
            forms.append(f"{rng.choice(FIRST)} {rng.choice(LAST)}-{i:05d}")
        needles.extend(Needle(f, (i, k)) for k, f in enumerate(forms))
    return needles


class DataGen:
    """Deterministic capture-like byte generator."""

    def __init__(self, rng: random.Random, needles: list[Needle], mix: dict[str, float]) -> None:
        self.rng = rng
        self.needles = needles
        self.plants: list[object] = []
        total = sum(mix.values())
        self.mix = [(k, v / total) for k, v in mix.items()]
        self.new_session()

    def text(self, n: int) -> bytes:
        r = self.rng
        out = []
        size = 0
        while size < n:
            if r.random() < 0.3:
                obj = {
                    "id": r.randrange(10**9),
                    "event": r.choice(WORDS),
                    "ts": 1700000000000 + r.randrange(10**9),
                    "msg": " ".join(r.choice(WORDS) for _ in range(r.randrange(3, 20))),
                    "url": f"https:\\/\\/api.example.com\\/v{r.randrange(3)}\\/{r.choice(WORDS)}",
                }
                s = json.dumps(obj).replace("\\\\/", "\\/")
            else:
                s = " ".join(r.choice(WORDS) for _ in range(r.randrange(5, 40))).capitalize() + ".\n"
            out.append(s.encode())
            size += len(out[-1])
        return b"".join(out)[:n]

    def new_session(self) -> None:
        """Per-flow session state: like a keep-alive connection of one app,
        requests in a flow share host, cookie and bearer token."""
        r = self.rng
        self.host = f"{r.choice(WORDS)}.example.com"
        self.sid = r.randbytes(16).hex()
        self.ga = f"GA1.2.{r.randrange(10**9)}.{r.randrange(10**9)}"
        self.token = base64.urlsafe_b64encode(r.randbytes(r.choice((16, 24, 32)))).decode().rstrip("=")

    def headers(self, n: int) -> bytes:
        r = self.rng
        out = []
        size = 0
        while size < n:
            path = "/" + "/".join(r.choice(WORDS) for _ in range(r.randrange(1, 5)))
            q = urllib.parse.urlencode({r.choice(WORDS): " ".join(r.choice(WORDS) for _ in range(r.randrange(1, 4))),
                                        "id": r.randrange(10**6)})
            req = (
                f"{r.choice(('GET', 'POST'))} {path}?{q} HTTP/1.1\r\n"
                f"Host: {self.host}\r\n"
                "User-Agent: Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/116.0.0.0 Mobile Safari/537.36\r\n"
                "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
                "Accept-Encoding: gzip, deflate, br\r\n"
                f"Cookie: sid={self.sid}; _ga={self.ga}\r\n"
                f"Authorization: Bearer {self.token}\r\n"
                f"X-Request-Id: {r.randbytes(8).hex()}-{r.randbytes(4).hex()}\r\n"
                f"Content-Length: {r.randrange(10**5)}\r\n\r\n"
            )
            if r.random() < 0.3:
                req += f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 0{r.randrange(1, 9)} Jan 2024\r\n\r\n"
            out.append(req.encode())
            size += len(out[-1])
        return b"".join(out)[:n]

    def blob(self, n: int) -> bytes:
        raw = self.rng.randbytes(max(1, n * 3 // 4))
        b64 = binascii.b2a_base64(raw, newline=False)
        return b'{"data":"' + b64 + b'"}' if self.rng.random() < 0.5 else b"payload=" + b64 + b"&v=2"

    def planted_canary(self) -> bytes:
        r = self.rng
        needle = r.choice(self.needles)
        value = needle.value.encode()
        enc = r.choice(("raw", "b64", "gzip-b64", "hex", "url"))
        self.plants.append(needle.ref)
        if enc == "raw":
            return b" " + value + b" "
        if enc == "b64":
            return b'"' + base64.b64encode(value) + b'"'
        if enc == "gzip-b64":
            return b'"' + base64.b64encode(gzip.compress(value)) + b'"'
        if enc == "hex":
            return b" " + value.hex().encode() + b" "
        return b"q=" + urllib.parse.quote_plus(value).encode() + b"&"

    def segment(self, kind: str, size: int) -> bytes:
        if kind == "random":
            return self.rng.randbytes(size)
        if kind == "text":
            return self.text(size)
        if kind == "headers":
            return self.headers(size)
        return self.blob(size)

    def flow(self, size: int) -> bytes:
        r = self.rng
        self.new_session()
        parts: list[bytes] = []
        got = 0
        while got < size:
            x = r.random()
            for kind, share in self.mix:
                x -= share
                if x < 0:
                    break
            part = self.segment(kind, r.randrange(512, 32768))
            if r.random() < 0.02 and got + len(part) + 200 < size:
                part += self.planted_canary()
            parts.append(part)
            got += len(part)
        return b"".join(parts)[:size]


def per_category(scanner: Scanner, gen: DataGen, mib: int = 8) -> dict[str, float]:
    """CPU-time MB/s of each content kind alone (256 KiB flows)."""
    out = {}
    for kind, _ in gen.mix:
        bufs = []
        for _ in range(mib * 4):
            gen.new_session()
            bufs.append(b"".join(gen.segment(kind, gen.rng.randrange(512, 32768)) for _ in range(24))[: 256 << 10])
        t0 = time.process_time()
        for b in bufs:
            scanner.scan(b)
        out[kind] = round(sum(map(len, bufs)) / 1e6 / (time.process_time() - t0), 1)
    return out


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=500)
    ap.add_argument("--canaries", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", choices=("auto", "hyperscan", "pyahocorasick"), default="auto")
    ap.add_argument("--profile", action="store_true", help="cProfile the first 32 MiB (stderr)")
    ap.add_argument("--no-grep", action="store_true")
    ap.add_argument(
        "--mix",
        default="random=40,text=25,headers=20,blob=15",
        help="content shares by bytes (kinds: random, text, headers, blob)",
    )
    args = ap.parse_args()
    if args.backend != "auto":
        os.environ["HONEYPHONE_DETECT_BACKEND"] = args.backend

    rng = random.Random(args.seed)
    needles = make_canaries(args.canaries, rng)
    t0, c0 = time.perf_counter(), time.process_time()
    scanner = Scanner(needles)
    compile_s, compile_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_after_compile = peak_rss_mib()

    total = args.size_mib * 1024 * 1024
    mix = {k: float(v) for k, v in (item.split("=") for item in args.mix.split(","))}
    gen = DataGen(rng, needles, mix)
    with tempfile.TemporaryDirectory(prefix="bench_detect_") as tmp:
        data_path = Path(tmp) / "data.bin"
        forms_path = Path(tmp) / "forms.txt"
        forms_path.write_text("".join(n.value + "\n" for n in needles))
        flows: list[tuple[int, list[object]]] = []
        with data_path.open("wb") as fh:
            written = 0
            while written < total:
                size = min(total - written, int(2 ** rng.uniform(14, 20)))
                gen.plants = []
                fh.write(gen.flow(size))
                flows.append((size, gen.plants))
                written += size

        hits = planted = planted_found = 0
        decoded = 0
        budget_hits = 0
        prof = cProfile.Profile() if args.profile else None
        t0, c0 = time.perf_counter(), time.process_time()
        with data_path.open("rb", buffering=0) as fh:
            profiled = 0
            for size, plants in flows:
                buf = fh.read(size)
                if prof is not None and profiled < 32 << 20:
                    prof.enable()
                    res = scanner.scan(buf)
                    prof.disable()
                    profiled += size
                else:
                    res = scanner.scan(buf)
                hits += len(res)
                refs = {h.ref for h in res}
                planted += len(plants)
                planted_found += sum(ref in refs for ref in plants)
                decoded += scanner.last_stats.decoded_bytes
                budget_hits += scanner.last_stats.budget_exhausted
        ours_s, ours_cpu = time.perf_counter() - t0, time.process_time() - c0

        grep_s = grep_cpu = grep_count = None
        if not args.no_grep:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(
                ["grep", "-F", "-c", "-f", str(forms_path), str(data_path)],
                capture_output=True,
                env={**os.environ, "LC_ALL": "C"},
                check=False,
            )
            grep_s = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            grep_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            grep_count = proc.stdout.decode().strip()
        categories = per_category(scanner, gen)

    mb = total / 1e6
    summary = {
        "size_mib": args.size_mib,
        "mix": args.mix,
        "canaries": args.canaries,
        "needles": len(needles),
        "backend": scanner.backend,
        "compile_s": round(compile_s, 2),
        "compile_s_cpu": round(compile_cpu, 2),
        "flows": len(flows),
        "ours_mb_s": round(mb / ours_s, 1),
        "ours_mb_s_cpu": round(mb / ours_cpu, 1),
        "grep_mb_s": round(mb / grep_s, 1) if grep_s else None,
        "grep_mb_s_cpu": round(mb / grep_cpu, 1) if grep_cpu else None,
        "ratio_ours_over_grep": round(grep_s / ours_s, 4) if grep_s else None,
        "ratio_ours_over_grep_cpu": round(grep_cpu / ours_cpu, 4) if grep_cpu else None,
        "grep_matching_lines": grep_count,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_rss_after_compile_mib": round(rss_after_compile, 1),
        "per_category_mb_s_cpu": categories,
        "hits": hits,
        "planted": planted,
        "planted_found": planted_found,
        "decoded_mib": round(decoded / 2**20, 1),
        "budget_exhausted_flows": budget_hits,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "units": "MB = 10^6 bytes; *_cpu = bytes / CPU seconds of that process",
    }
    print(json.dumps(summary, indent=2))
    if prof is not None:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
        print(s.getvalue(), file=sys.stderr)


if __name__ == "__main__":
    main()
