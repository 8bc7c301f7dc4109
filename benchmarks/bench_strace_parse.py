"""Benchmark: strace parsing + summarising vs just reading and splitting lines.

Generates a multi-million-line trace shaped like the output of
``sandbox.monitor.strace_cmd.strace_argv`` (``-f -ttt -yy -Y``: pid/comm
column, fd decorations, unfinished/resumed pairs interleaved across tasks,
forks, threads, execs of helpers and of ``content``, exits), then in ONE
process times:

* baseline: ``for line in f: line.split()``
* monitor:  ``StraceParser().parse(f)`` feeding ``SummaryBuilder``

and reports lines/s for each, the ratio, and peak RSS for each phase
(sampled from /proc/self/statm every 100k lines, plus ru_maxrss).

    .venv/bin/python benchmarks/bench_strace_parse.py --lines 2000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.monitor.parser import StraceParser  # noqa: E402
from sandbox.monitor.summary import SummaryBuilder  # noqa: E402

_PAGE = os.sysconf("SC_PAGE_SIZE")
_SAMPLE_EVERY = 100_000


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * _PAGE


def generate(n: int, seed: int = 1) -> Iterator[str]:
    """Yield ``n`` strace lines (each ending in a newline)."""
    rng = random.Random(seed)
    ts = 1_700_000_000.0
    services = {pid: f"svc{pid % 7}" for pid in range(1000, 1012)}
    tasks: dict[int, str] = dict(services)  # tid -> comm
    leaders = dict.fromkeys(services, 0)
    next_pid = 5000
    pending: dict[int, str] = {}  # tid -> resumed text
    hosts = [f"203.0.113.{i}" for i in range(1, 30)] + ["2001:db8::5", "10.0.0.53"]
    libs = [f"/system/lib64/lib{name}.so" for name in
            ("c", "m", "ssl", "crypto", "sqlite", "binder", "log", "z", "cutils", "utils")]
    stores = [
        "/data/user/0/com.android.providers.contacts/databases/contacts2.db",
        "/data/user/0/com.android.providers.contacts/databases/calllog.db",
        "/data/user/0/com.android.providers.telephony/databases/mmssms.db-wal",
    ]
    i = 0
    while i < n:
        ts += rng.random() * 0.0004
        tid = rng.choice(list(tasks))
        comm = tasks[tid]
        head = f"{tid}<{comm}> {ts:.6f} "
        if tid in pending:
            yield head + pending.pop(tid) + "\n"
            i += 1
            continue
        r = rng.random()
        fd = rng.randrange(3, 60)
        if r < 0.30:
            yield (head + f'write({fd}</data/local/tmp/{comm}.log>, "I/{comm}: event {i} '
                   f'state=ok\\n"..., {rng.randrange(20, 300)}) = 87\n')
        elif r < 0.45:
            lib = rng.choice(libs)
            yield head + f'openat(AT_FDCWD</>, "{lib}", O_RDONLY|O_CLOEXEC) = {fd}<{lib}>\n'
        elif r < 0.53:
            yield (head + f'openat(AT_FDCWD</>, "/vendor/etc/{comm}/{i % 97}.conf", O_RDONLY) '
                   f"= -1 ENOENT (No such file or directory)\n")
        elif r < 0.61:
            h = rng.choice(hosts[:-2])
            yield (head + f'write({fd}<TCP:[172.18.0.2:{40000 + tid % 999}->{h}:443]>, '
                   f'"\\27\\3\\3\\0\\223\\304\\17\\207"..., 152) = 152\n')
        elif r < 0.63:
            yield (head + f'writev({fd}<TCPv6:[[2001:db8::2]:{41000 + tid % 999}->[2001:db8::5]:443]>, '
                   f'[{{iov_base="\\27\\3\\3", iov_len=5}}, {{iov_base="..."..., iov_len=900}}], 2) = 905\n')
        elif r < 0.66:
            h = rng.choice(hosts)
            fam = (f'{{sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
                   f'inet_pton(AF_INET6, "{h}", &sin6_addr), sin6_scope_id=0}}, 28' if ":" in h else
                   f'{{sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("{h}")}}, 16')
            proto = "TCPv6" if ":" in h else "TCP"
            if rng.random() < 0.5:
                yield head + f"connect({fd}<{proto}:[{i}]>, {fam} <unfinished ...>\n"
                pending[tid] = "<... connect resumed>) = -1 EINPROGRESS (Operation now in progress)"
            else:
                yield head + f"connect({fd}<{proto}:[{i}]>, {fam}) = 0\n"
        elif r < 0.68:
            yield (head + f'sendto({fd}<UDP:[{i}]>, "\\252\\252\\1\\0\\0\\1\\0\\0"..., 40, MSG_NOSIGNAL, '
                   f'{{sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}}, 16) = 40\n')
        elif r < 0.69:
            msg = ('{msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="\\1\\2"..., '
                   'iov_len=34}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=34}')
            yield (head + f"sendmmsg({fd}<UDP:[172.18.0.2:5300->10.0.0.53:53]>, [{msg}, {msg}], 2, "
                   f"MSG_NOSIGNAL) = 2\n")
        elif r < 0.78:
            lib = rng.choice(libs)
            yield head + f'openat(AT_FDCWD</>, "{lib}", O_RDONLY|O_CLOEXEC <unfinished ...>\n'
            pending[tid] = f"<... openat resumed>) = {fd}<{lib}>"
        elif r < 0.84:
            yield head + 'write(1</dev/null<char 1:3>>, "ok\\n", 3 <unfinished ...>\n'
            pending[tid] = "<... write resumed>) = 3"
        elif r < 0.845:
            store = rng.choice(stores)
            yield head + f'openat(AT_FDCWD</>, "{store}", O_RDONLY|O_CLOEXEC) = {fd}<{store}>\n'
        elif r < 0.85 and len(tasks) < 200:
            next_pid += 1
            child = next_pid
            yield (head + "clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|"
                   "CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, "
                   f"exit_signal=0, stack=0x7f00, stack_size=0x7fff80}} => {{parent_tid=[{child}]}}, 88)"
                   f" = {child}\n")
            tasks[child] = comm
        elif r < 0.855:
            next_pid += 1
            child = next_pid
            yield head + "vfork( <unfinished ...>\n"
            if rng.random() < 0.2:
                cmd = ('"/system/bin/content", ["content", "query", "--uri", '
                       '"content://call_log/calls"]')
                name = "content"
            else:
                cmd = '"/system/bin/getprop", ["getprop", "ro.serialno"]'
                name = "getprop"
            yield (f"{child}<{comm}> {ts + 0.0001:.6f} execve({cmd}, 0x7ffd9 /* 12 vars */) = 0\n")
            yield f"{tid}<{comm}> {ts + 0.0002:.6f} <... vfork resumed>) = {child}<{name}>\n"
            yield f"{child}<{name}> {ts + 0.003:.6f} +++ exited with 0 +++\n"
            i += 3
        elif r < 0.86 and tid not in leaders:
            del tasks[tid]
            yield head + "+++ exited with 0 +++\n"
        else:
            yield (head + f'write({fd}</dev/__properties__/u:object_r:{comm}_prop:s0>, "x", 1) '
                   f"= -1 EBADF (Bad file descriptor)\n")
        i += 1


def write_trace(path: Path, n: int) -> int:
    with open(path, "w", encoding="utf-8") as out:
        buf: list[str] = []
        for line in generate(n):
            buf.append(line)
            if len(buf) >= 10_000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    return path.stat().st_size


def baseline(path: Path) -> tuple[float, int, int]:
    rss0 = rss_bytes()
    peak = rss0
    start = time.perf_counter()
    count = 0
    with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:
        for line in fh:
            line.split()
            count += 1
            if count % _SAMPLE_EVERY == 0:
                peak = max(peak, rss_bytes())
    return time.perf_counter() - start, count, peak - rss0


def monitor(path: Path) -> tuple[float, int, int, dict[str, object]]:
    rss0 = rss_bytes()
    peak = rss0
    start = time.perf_counter()
    parser = StraceParser()
    builder = SummaryBuilder()
    add = builder.add
    events = 0
    with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:
        for event in parser.parse(fh):
            add(event)
            events += 1
            if events % _SAMPLE_EVERY == 0:
                peak = max(peak, rss_bytes())
    summary = builder.build(parser.stats)
    elapsed = time.perf_counter() - start
    peak = max(peak, rss_bytes())
    info: dict[str, object] = {
        "events": events,
        "processes": len(summary.processes),
        "pruned_processes": summary.pruned_processes,
        "store_readers": len(summary.store_readers()),
        "connections": len(summary.connections()),
        "stats": parser.stats.to_dict(),
    }
    return elapsed, parser.stats.lines, peak - rss0, info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--trace", type=Path, help="reuse/keep the trace at this path")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.trace or Path(tmp) / "trace.txt"
        if not path.exists():
            t = time.perf_counter()
            size = write_trace(path, args.lines)
            gen_s = time.perf_counter() - t
        else:
            size, gen_s = path.stat().st_size, 0.0
        base_s, base_lines, base_rss = baseline(path)
        mon_s, mon_lines, mon_rss, info = monitor(path)

    result = {
        "lines": base_lines,
        "file_mb": round(size / 1e6, 1),
        "generate_s": round(gen_s, 2),
        "baseline_lines_per_s": round(base_lines / base_s),
        "monitor_lines_per_s": round(mon_lines / mon_s),
        "slowdown_ratio": round(mon_s / base_s, 2),
        "baseline_peak_rss_delta_mb": round(base_rss / 1e6, 1),
        "monitor_peak_rss_delta_mb": round(mon_rss / 1e6, 1),
        "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
        **info,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"trace: {result['lines']:,} lines, {result['file_mb']} MB "
              f"(generated in {result['generate_s']} s)")
        print(f"baseline read+split : {result['baseline_lines_per_s']:>12,} lines/s, "
              f"peak RSS +{result['baseline_peak_rss_delta_mb']} MB")
        print(f"parse + summary     : {result['monitor_lines_per_s']:>12,} lines/s, "
              f"peak RSS +{result['monitor_peak_rss_delta_mb']} MB")
        print(f"ratio (monitor time / baseline time): {result['slowdown_ratio']}x")
        print(f"process ru_maxrss: {result['process_max_rss_mb']} MB")
        print(f"events {result['events']:,}, processes {result['processes']} "
              f"(+{result['pruned_processes']} idle pruned), store readers "
              f"{result['store_readers']}, connections {result['connections']}")
        print(f"parse stats: {result['stats']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
