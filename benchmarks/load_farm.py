"""Load: N queued analyses and M concurrent watchers, sustained for a duration, against a real farm.

    .venv/bin/python benchmarks/load_farm.py                          # 500 analyses, 200 watchers, 20 min
    .venv/bin/python benchmarks/load_farm.py --duration 60 --analyses 100 --watchers 50

What is real and what is not -- read this before quoting a figure:

* REAL: ``honeyphone serve`` (the orchestrator: gRPC server, SQLite store,
  scheduler, event bus) as a subprocess on a free loopback port, and
  ``--workers`` ``honeyphone worker`` subprocesses (the real worker agent:
  register, lease, download firmware, heartbeat progress, upload artifacts,
  complete), all over gRPC on 127.0.0.1.
* FAKE: the analysis itself.  The workers run with the fake runner
  (``--runner workers.fake_runner:make_runner``): no Docker, no device, no
  fakenet; it sleeps for the label ``fake.seconds``, reports eight
  fast-forward steps, writes two small artifacts and returns a verdict.  On
  this two-core machine a real analysis takes ~20-40 s of the machine's full
  attention, so 500 real analyses cannot finish in 20 minutes; this measures
  the orchestrator and the fleet protocol under load, not the pipeline.

The run: every analysis is submitted at the start (all N queued at once),
paced by ``fake.seconds`` so that the queue drains over about ``--fill``
(80%) of the duration; M watcher threads (over several channels) each keep
one WatchAnalysis stream open, on an analysis that has not finished yet,
starting over on another when its stream ends.  Once every analysis has
finished, watchers replay finished ones (a short stream, then a one-second
pause) until the duration is over, so "M concurrent streams" holds until the
queue drains; the summary says how many were open while it had not.  The
main thread lists every analysis each sample period.  Recorded:

* the orchestrator's RSS (psutil) every ``--sample-seconds``, written to
  ``rss.csv`` with threads, file descriptors, CPU and the queue's counts,
  and summarised as start (after set-up), peak, end and the least-squares
  slope over the whole run and over its second half;
* watch latency: for every event that happened while a watcher was attached,
  the time from the orchestrator stamping it to the watcher receiving it;
  p50/p99 (plus time to the first event of a new stream);
* that every analysis completed (SUCCEEDED) -- the exit status is 1 otherwise.

The run stops by itself: watchers stop at ``--duration``; then it waits at
most ``--grace`` seconds for unfinished analyses and stops every process it
started, by PID.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from sandbox.api.channel import open_channel  # noqa: E402
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb  # noqa: E402
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2_grpc  # noqa: E402

RUNNER = "workers.fake_runner:make_runner"
TERMINAL_STAGES = {pb.STAGE_FINISHED, pb.STAGE_FAILED, pb.STAGE_CANCELLED}
STATES = {
    pb.ANALYSIS_STATE_QUEUED: "queued", pb.ANALYSIS_STATE_RUNNING: "running",
    pb.ANALYSIS_STATE_SUCCEEDED: "succeeded", pb.ANALYSIS_STATE_FAILED: "failed",
    pb.ANALYSIS_STATE_CANCELLED: "cancelled",
}
FILL = 0.8  # by default the queue drains over this share of the duration (--fill)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) in value per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var * 60


# -- processes ----------------------------------------------------------------------------


class Procs:
    """The subprocesses this benchmark started; only these are ever signalled."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")

    def start(self, name: str, *args: str, data: Path) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("wb") as log:
            p = subprocess.Popen(
                [sys.executable, "-m", "sandbox.cli", "--data-dir", str(data), *args],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.procs.append((name, p))
        return p

    def stop_all(self) -> dict[str, int | None]:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, p in reversed(self.procs):
            try:
                codes[name] = p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait(10)
        return codes


# -- watchers -----------------------------------------------------------------------------


@dataclass
class Shared:
    ids: list[str]
    pending: set[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    live_latency: list[float] = field(default_factory=list)
    first_event: list[float] = field(default_factory=list)
    streams: int = 0
    open_streams: int = 0
    events: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    calls: set[Any] = field(default_factory=set)

    def pick(self, rng: random.Random) -> tuple[str, bool]:
        with self.lock:
            if self.pending:
                return rng.choice(tuple(self.pending)), True
            return rng.choice(self.ids), False


def watcher(shared: Shared, stub: Any, seed: int, end: float) -> None:
    rng = random.Random(seed)
    lat: list[float] = []
    first: list[float] = []
    while not shared.stop.is_set() and time.time() < end:
        aid, live = shared.pick(rng)
        attached = time.time()
        call = stub.WatchAnalysis(pb.WatchAnalysisRequest(id=aid), timeout=max(1.0, end - attached + 30))
        with shared.lock:
            shared.calls.add(call)
            shared.streams += 1
            shared.open_streams += 1
        seen_first = False
        try:
            for ev in call:
                now = time.time()
                stamped = ev.time.ToNanoseconds() / 1e9
                if not seen_first:
                    first.append(now - attached)
                    seen_first = True
                if stamped >= attached:  # happened while attached: a live event
                    lat.append(now - stamped)
                with shared.lock:
                    shared.events += 1
                if ev.stage in TERMINAL_STAGES:
                    with shared.lock:
                        shared.pending.discard(aid)
        except grpc.RpcError as exc:
            if not (shared.stop.is_set() and exc.code() == grpc.StatusCode.CANCELLED):
                with shared.lock:
                    shared.errors[exc.code().name] = shared.errors.get(exc.code().name, 0) + 1
                shared.stop.wait(0.5)
        finally:
            with shared.lock:
                shared.calls.discard(call)
                shared.open_streams -= 1
        if not live:
            shared.stop.wait(1.0)  # replays of finished analyses: keep a stream, do not spin
    with shared.lock:
        shared.live_latency.extend(lat)
        shared.first_event.extend(first)


# -- the run -------------------------------------------------------------------------------


def list_states(stub: Any, total: int) -> dict[str, int]:
    counts = {name: 0 for name in STATES.values()}
    token, seen = "", 0
    while seen < total + 500:
        resp = stub.ListAnalyses(pb.ListAnalysesRequest(page_size=500, page_token=token), timeout=60)
        for a in resp.analyses:
            counts[STATES.get(a.state, "queued")] += 1
        seen += len(resp.analyses)
        token = resp.next_page_token
        if not token:
            break
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--analyses", type=int, default=500)
    ap.add_argument("--watchers", type=int, default=200)
    ap.add_argument("--duration", type=float, default=1200.0, help="seconds watchers are kept up (default 20 min)")
    ap.add_argument("--workers", type=int, default=4, help="honeyphone worker processes")
    ap.add_argument("--slots", type=int, default=4, help="slots per worker (a 2-core host allows 4)")
    ap.add_argument("--sample-seconds", type=float, default=5.0)
    ap.add_argument("--grace", type=float, default=None, help="wait this long after --duration (default 10%%, >= 60 s)")
    ap.add_argument("--channels", type=int, default=8, help="client channels the watchers share")
    ap.add_argument("--fill", type=float, default=FILL, help="share of --duration the queue takes to drain")
    ap.add_argument("--out", type=Path, default=None, help="directory for rss.csv, summary.json and logs")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="load-farm-"))
    out.mkdir(parents=True, exist_ok=True)
    grace = args.grace if args.grace is not None else max(60.0, args.duration * 0.1)
    total_slots = args.workers * args.slots
    fake_seconds = max(0.2, args.fill * args.duration * total_slots / args.analyses)
    address = f"127.0.0.1:{free_port()}"
    procs = Procs(out)
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))
    say(f"load_farm: {args.analyses} analyses, {args.watchers} watchers, {args.duration:.0f} s, "
        f"{args.workers} worker processes x {args.slots} slots; output in {out}")
    say(f"  NOTE: workers run the FAKE runner ({RUNNER}): {fake_seconds:.1f} s of sleep per analysis, "
        "no Docker/device/fakenet; the orchestrator and workers are the real processes")

    serve = procs.start("serve", "serve", "--listen", address, data=out / "orch")
    samples: list[dict[str, float]] = []
    shared = Shared([], set())
    sampler_stop = threading.Event()
    counts_now: dict[str, int] = {}
    codes: dict[str, int | None] = {}
    submit_lat: list[float] = []
    result: dict[str, Any] = {}
    try:
        channel = open_channel(address)
        stub = sandbox_pb2_grpc.SandboxStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                stub.ListAnalyses(pb.ListAnalysesRequest(page_size=1), timeout=2)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise SystemExit(f"serve did not start; see {out / 'serve.log'}") from None
                time.sleep(0.2)
        orch = psutil.Process(serve.pid)
        orch.cpu_percent()
        t0 = time.time()

        def sample() -> None:
            while True:
                try:
                    mem = orch.memory_info().rss
                    workers_rss = sum(psutil.Process(p.pid).memory_info().rss for n, p in procs.procs
                                      if n.startswith("worker") and p.poll() is None)
                    row = {
                        "elapsed_s": round(time.time() - t0, 1), "orch_rss_mib": round(mem / 2**20, 2),
                        "orch_threads": orch.num_threads(), "orch_fds": orch.num_fds(),
                        "orch_cpu_percent": orch.cpu_percent(), "workers_rss_mib": round(workers_rss / 2**20, 2),
                        "open_watch_streams": shared.open_streams, "events_received": shared.events,
                        "unfinished_seen_by_watchers": len(shared.pending),
                        **{k: counts_now.get(k, 0) for k in STATES.values()},
                    }
                    samples.append(row)
                except psutil.Error:
                    pass
                if sampler_stop.wait(args.sample_seconds):
                    return

        sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        sampler.start()

        for i in range(args.workers):
            procs.start(
                f"worker{i}", "worker", "--orchestrator", address, "--slots", str(args.slots), "--name", f"load-w{i}",
                "--profiles", "twin", "--runner", RUNNER, "--no-cleanup", data=out / f"worker{i}",
            )

        with tempfile.TemporaryFile() as fw:
            fw.write(b"load-farm firmware (the fake runner only counts its bytes)")
            fw.seek(0)
            ref = stub.UploadFirmware(iter([pb.FirmwareChunk(filename="load.tgz", data=fw.read())]), timeout=60)
        labels = {"fake.seconds": f"{fake_seconds:.2f}", "bench": "load_farm"}
        for i in range(args.analyses):
            started = time.perf_counter()
            a = stub.SubmitAnalysis(
                pb.SubmitAnalysisRequest(firmware_sha256=ref.sha256, scenario=pb.Scenario(hours=24, seed=i), labels=labels),
                timeout=60,
            )
            submit_lat.append(time.perf_counter() - started)
            shared.ids.append(a.id)
            shared.pending.add(a.id)
        say(f"  submitted {args.analyses} analyses in {sum(submit_lat):.1f} s")

        end = time.time() + args.duration
        watch_end_s = end - t0
        channels = [open_channel(address) for _ in range(max(1, args.channels))]
        stubs = [sandbox_pb2_grpc.SandboxStub(c) for c in channels]
        threads = [
            threading.Thread(target=watcher, args=(shared, stubs[i % len(stubs)], i, end), name=f"watcher-{i}", daemon=True)
            for i in range(args.watchers)
        ]
        for t in threads:
            t.start()

        done_at: float | None = None
        next_report = time.time()
        while time.time() < end:
            try:
                counts_now.update(list_states(stub, args.analyses))
            except grpc.RpcError as exc:
                shared.errors[f"list:{exc.code().name}"] = shared.errors.get(f"list:{exc.code().name}", 0) + 1
            if counts_now.get("succeeded", 0) + counts_now.get("failed", 0) + counts_now.get("cancelled", 0) >= args.analyses:
                done_at = done_at or time.time() - t0
            if serve.poll() is not None:
                say("  the orchestrator exited!")
                break
            if time.time() >= next_report:
                rss = samples[-1]["orch_rss_mib"] if samples else 0
                say(f"  t={time.time() - t0:6.0f}s  {counts_now}  streams {shared.open_streams}  "
                    f"events {shared.events}  orch RSS {rss:.1f} MiB")
                next_report = time.time() + max(30.0, args.duration / 20)
            time.sleep(min(args.sample_seconds, max(0.0, end - time.time())))

        shared.stop.set()
        with shared.lock:
            for call in list(shared.calls):
                call.cancel()
        for t in threads:
            t.join(30)
        stuck = [t.name for t in threads if t.is_alive()]

        grace_end = time.time() + grace
        while time.time() < grace_end and serve.poll() is None:
            counts_now.update(list_states(stub, args.analyses))
            if counts_now.get("succeeded", 0) + counts_now.get("failed", 0) + counts_now.get("cancelled", 0) >= args.analyses:
                done_at = done_at or time.time() - t0
                break
            time.sleep(2)
        time.sleep(min(args.sample_seconds, 2))
        sampler_stop.set()
        sampler.join(10)

        final = {aid: stub.GetAnalysis(pb.GetAnalysisRequest(id=aid), timeout=30) for aid in shared.ids}
        not_ok = {aid: STATES.get(a.state, "?") + (f" ({a.error})" if a.error else "")
                  for aid, a in final.items() if a.state != pb.ANALYSIS_STATE_SUCCEEDED}
        durations = [(a.finished_at.ToNanoseconds() - a.created_at.ToNanoseconds()) / 1e9
                     for a in final.values() if a.HasField("finished_at")]
        for c in channels:
            c.close()
        channel.close()
    finally:
        sampler_stop.set()
        shared.stop.set()
        codes = procs.stop_all()

    with (out / "rss.csv").open("w", newline="") as f:
        if samples:
            w = csv.DictWriter(f, fieldnames=list(samples[0]))
            w.writeheader()
            w.writerows(samples)
    points = [(s["elapsed_s"], s["orch_rss_mib"]) for s in samples]
    half = [p for p in points if p[0] >= (points[-1][0] / 2 if points else 0)]
    after_setup = [p for p in points if p[0] >= 10] or points
    while_pending = [int(s["open_watch_streams"]) for s in samples
                     if 10 <= s["elapsed_s"] < watch_end_s and s["unfinished_seen_by_watchers"] > 0]
    result = {
        "analyses": args.analyses, "watchers": args.watchers, "duration_s": args.duration,
        "workers": args.workers, "slots_per_worker": args.slots, "runner": f"FAKE ({RUNNER}), {fake_seconds:.1f} s each",
        "all_succeeded": not not_ok, "not_succeeded": dict(list(not_ok.items())[:20]), "not_succeeded_count": len(not_ok),
        "queue_drained_at_s": done_at,
        "analysis_seconds_created_to_finished": {"p50": pct(durations, 50), "max": max(durations, default=float("nan"))},
        "watch": {
            "streams_opened": shared.streams, "events_received": shared.events,
            "live_events": len(shared.live_latency),
            "latency_ms_p50": pct(shared.live_latency, 50) * 1e3, "latency_ms_p99": pct(shared.live_latency, 99) * 1e3,
            "latency_ms_max": max(shared.live_latency, default=float("nan")) * 1e3,
            "first_event_ms_p50": pct(shared.first_event, 50) * 1e3, "first_event_ms_p99": pct(shared.first_event, 99) * 1e3,
            "errors": shared.errors, "threads_stuck": stuck,
            "open_streams_while_queue_not_drained": {
                "samples": len(while_pending), "min": min(while_pending, default=None),
                "median": statistics.median(while_pending) if while_pending else None,
            },
        },
        "submit_ms": {"p50": pct(submit_lat, 50) * 1e3, "p99": pct(submit_lat, 99) * 1e3},
        "orchestrator_rss_mib": {
            "start": after_setup[0][1] if after_setup else None, "peak": max((p[1] for p in points), default=None),
            "end": points[-1][1] if points else None, "samples": len(points),
            "slope_mib_per_min": slope_per_minute(after_setup), "slope_second_half_mib_per_min": slope_per_minute(half),
        },
        "orchestrator_threads_peak": max((s["orch_threads"] for s in samples), default=None),
        "orchestrator_fds_peak": max((s["orch_fds"] for s in samples), default=None),
        "exit_codes": codes, "csv": str(out / "rss.csv"),
    }
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        r, w = result["orchestrator_rss_mib"], result["watch"]
        print(f"analyses: {args.analyses - len(not_ok)}/{args.analyses} succeeded"
              + (f"; queue drained at {done_at:.0f} s" if done_at else "") + f" ({result['runner']})")
        if not_ok:
            print("  not succeeded:", result["not_succeeded"])
        o = w["open_streams_while_queue_not_drained"]
        print(f"watch: {o['median']} streams open (median; min {o['min']}) while the queue was not drained; "
              f"{w['streams_opened']} streams, {w['events_received']} events ({w['live_events']} live); "
              f"live latency p50 {w['latency_ms_p50']:.1f} ms, p99 {w['latency_ms_p99']:.1f} ms, max {w['latency_ms_max']:.0f} ms; "
              f"first event p50 {w['first_event_ms_p50']:.1f} ms, p99 {w['first_event_ms_p99']:.1f} ms; errors {w['errors'] or 'none'}")
        print(f"submit: p50 {result['submit_ms']['p50']:.1f} ms, p99 {result['submit_ms']['p99']:.1f} ms")
        print(f"orchestrator RSS: start {r['start']:.1f} MiB, peak {r['peak']:.1f} MiB, end {r['end']:.1f} MiB, "
              f"slope {r['slope_mib_per_min']:+.3f} MiB/min (second half {r['slope_second_half_mib_per_min']:+.3f}); "
              f"{r['samples']} samples in {result['csv']}")
        print(f"orchestrator peak threads {result['orchestrator_threads_peak']}, fds {result['orchestrator_fds_peak']}; "
              f"exit codes {codes}")
    ok = not not_ok and not stuck and all(c in (0, -signal.SIGTERM) for c in codes.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
