"""Load: N queued analyses and M concurrent watchers, sustained for a duration, against a real farm.

    .venv/bin/python benchmarks/load_farm.py                          # 500 analyses, 200 watchers, 20 min, FAKE runner
    .venv/bin/python benchmarks/load_farm.py --duration 60 --analyses 100 --watchers 50
    .venv/bin/python benchmarks/load_farm.py --runner real            # 500 REAL analyses, 2 workers x 2 slots

What is real and what is not -- read this before quoting a figure:

* REAL in both modes: ``honeyphone serve`` (the orchestrator: gRPC server,
  SQLite store, scheduler, event bus) as a subprocess on a free loopback
  port, and ``--workers`` ``honeyphone worker`` subprocesses (the real worker
  agent: register, lease, download firmware, heartbeat progress, upload
  artifacts, complete), all over gRPC on 127.0.0.1; the M watchers are real
  gRPC WatchAnalysis streams.
* ``--runner fake`` (the default): the analysis itself is FAKE.  The workers
  run ``--runner workers.fake_runner:make_runner``: no Docker, no device, no
  fakenet; it sleeps for the label ``fake.seconds`` (paced so the queue
  drains over ``--fill`` of the duration), reports eight fast-forward steps,
  writes two small artifacts and returns a verdict.  The uploaded
  "firmware" is a few bytes that nobody unpacks.  This measures the
  orchestrator and the fleet protocol under load, not the pipeline.
* ``--runner real``: everything is REAL.  The workers use their default
  runner (``sandbox.core.pipeline.make_runner``, what ``honeyphone worker``
  runs without ``--runner``), each with its own adb server on a free port:
  every analysis unpacks the uploaded example bundle (``--firmware``,
  default ``benign-updater``), boots a twin and a fakenet on the real Docker
  engine, plants ``--canaries`` contacts/SMS/calls, fast-forwards ``--hours``
  device hours (default 2) under strace and tcpdump, detects, and uploads its
  report and artifacts.  Every analysis must succeed with ``--expect``
  (default ``clean``).  Nothing is paced: the queue drains as fast as the
  machine runs them, usually well after ``--duration``; the run waits for it
  (``--grace`` defaults to enough for ~60 s per analysis per slot, and it
  gives up sooner when nothing finishes for ``--stall`` seconds).  Use at
  most 4 slots in total on a two-core machine (default 2 workers x 2 slots).
  Afterwards it checks that no container, network or firewall rule of any of
  its analyses is left and that the workers' temp and run directories are
  empty, then removes anything found (reported as leftovers).

The run: every analysis is submitted at the start (all N queued at once);
M watcher threads (over several channels) each keep
one WatchAnalysis stream open, on an analysis that has not finished yet,
starting over on another when its stream ends.  Once every analysis has
finished, watchers replay finished ones (a short stream, then a one-second
pause) until the duration is over, so "M concurrent streams" holds until the
queue drains; the summary says how many were open while it had not.  The
main thread lists every analysis each sample period.  Recorded:

* the orchestrator's RSS (psutil) every ``--sample-seconds`` until the end of
  the run (the drain included), written to ``rss.csv`` with threads, file
  descriptors, CPU, each worker process' RSS (not its children's) and the
  queue's counts, and summarised as start (after set-up), peak, end and the
  least-squares slope over the whole run and over its second half;
* watch latency: for every event that happened while a watcher was attached,
  the time from the orchestrator stamping it to the watcher receiving it;
  p50/p99 (plus time to the first event of a new stream);
* that every analysis completed (SUCCEEDED; in real mode with the expected
  verdict), the verdict counts, each failure's reason, when the queue drained
  and, in real mode, the leased-to-finished time of each analysis -- the exit
  status is 1 otherwise.

The run stops by itself: watchers stop at ``--duration``; then it waits at
most ``--grace`` seconds for unfinished analyses and stops every process it
started, by PID (workers drain, then abort, then are killed).
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
REAL_RUNNER = "sandbox.core.pipeline.make_runner"  # the worker's default: no --runner
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

    def start(self, name: str, *args: str, data: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("wb") as log:
            p = subprocess.Popen(
                [sys.executable, "-m", "sandbox.cli", "--data-dir", str(data), *args],
                cwd=REPO, env=dict(self.env, **(env or {})), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((name, p))
        return p

    def stop_all(self, patience: float = 30.0) -> dict[str, int | None]:
        """Stop the workers, then the orchestrator (started first), so that a draining worker
        can still report.  SIGTERM (a worker drains: its running analyses finish), after
        ``patience`` s a second SIGTERM (it aborts: cancels and cleans up), then SIGKILL."""
        codes: dict[str, int | None] = {}
        for group in (self.procs[1:], self.procs[:1]):
            for _, p in group:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for name, p in group:
                try:
                    codes[name] = p.wait(patience)
                    continue
                except subprocess.TimeoutExpired:
                    p.send_signal(signal.SIGTERM)
                try:
                    codes[name] = p.wait(patience)
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
    ap.add_argument("--runner", choices=("fake", "real"), default="fake",
                    help="fake: workers sleep (the default); real: full analyses of --firmware on Docker")
    ap.add_argument("--workers", type=int, default=None, help="honeyphone worker processes (default 4; real: 2)")
    ap.add_argument("--slots", type=int, default=None,
                    help="slots per worker (default 4; real: 2, so 4 analyses at once on a 2-core host)")
    ap.add_argument("--firmware", default="benign-updater", help="real: example under examples/firmware/")
    ap.add_argument("--hours", type=float, default=2.0, help="real: device hours per analysis (default 2)")
    ap.add_argument("--canaries", type=int, default=4, help="real: contacts, SMS and calls each (default 4)")
    ap.add_argument("--expect", default="clean", help="real: the verdict every analysis must reach (default clean)")
    ap.add_argument("--stall", type=float, default=600.0,
                    help="real: stop waiting when no analysis finished for this many seconds (default 600)")
    ap.add_argument("--sample-seconds", type=float, default=5.0)
    ap.add_argument("--grace", type=float, default=None,
                    help="wait this long after --duration (default 10%%, >= 60 s; real: 60 s per analysis per slot)")
    ap.add_argument("--channels", type=int, default=8, help="client channels the watchers share")
    ap.add_argument("--fill", type=float, default=FILL, help="share of --duration the queue takes to drain")
    ap.add_argument("--out", type=Path, default=None, help="directory for rss.csv, summary.json and logs")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="load-farm-"))
    out.mkdir(parents=True, exist_ok=True)
    real = args.runner == "real"
    args.workers = args.workers or (2 if real else 4)
    args.slots = args.slots or (2 if real else 4)
    total_slots = args.workers * args.slots
    if args.grace is not None:
        grace = args.grace
    elif real:  # every analysis must be able to finish: ~60 s per analysis per slot is several times the need
        grace = max(600.0, args.analyses * 60.0 / total_slots)
    else:
        grace = max(60.0, args.duration * 0.1)
    fake_seconds = max(0.2, args.fill * args.duration * total_slots / args.analyses)
    address = f"127.0.0.1:{free_port()}"
    procs = Procs(out)
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))
    say(f"load_farm: {args.analyses} analyses, {args.watchers} watchers, {args.duration:.0f} s, "
        f"{args.workers} worker processes x {args.slots} slots; output in {out}")
    if real:
        import bench_farm_throughput as farm  # shared helpers: leftovers and their removal

        from sandbox.bundle.pack import pack_bundle
        from sandbox.settings import Settings

        settings = Settings.from_env()
        adb_ports = [free_port() for _ in range(args.workers)]
        archive = out / f"{args.firmware}.tar.gz"
        with archive.open("wb") as f:
            pack_bundle(REPO / "examples" / "firmware" / args.firmware, f)
        runner_desc = (f"REAL ({REAL_RUNNER}): {args.firmware}, {args.hours:g} device hours, "
                       f"{args.canaries} contacts/SMS/calls, twin profile")
        say(f"  REAL analyses: workers run their default runner on {archive.name} ({args.hours:g} device hours); "
            f"waiting up to {grace:.0f} s after --duration for the queue to drain")
    else:
        runner_desc = f"FAKE ({RUNNER}), {fake_seconds:.1f} s each"
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
    left: dict[str, list[str]] = {}
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
                    per_worker = {f"{n}_rss_mib": round(psutil.Process(p.pid).memory_info().rss / 2**20, 2)
                                  for n, p in procs.procs if n.startswith("worker") and p.poll() is None}
                    workers_rss = sum(per_worker.values()) * 2**20
                    row = {
                        "elapsed_s": round(time.time() - t0, 1), "orch_rss_mib": round(mem / 2**20, 2),
                        "orch_threads": orch.num_threads(), "orch_fds": orch.num_fds(),
                        "orch_cpu_percent": orch.cpu_percent(), "workers_rss_mib": round(workers_rss / 2**20, 2),
                        "open_watch_streams": shared.open_streams, "events_received": shared.events,
                        "unfinished_seen_by_watchers": len(shared.pending),
                        **{k: counts_now.get(k, 0) for k in STATES.values()},
                        **{f"worker{i}_rss_mib": per_worker.get(f"worker{i}_rss_mib", 0.0)
                           for i in range(args.workers)},
                    }
                    samples.append(row)
                except psutil.Error:
                    pass
                if sampler_stop.wait(args.sample_seconds):
                    return

        sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        sampler.start()

        for i in range(args.workers):
            if real:  # the default runner, each worker with an adb server of its own (killed by port at the end)
                procs.start(f"worker{i}", "worker", "--orchestrator", address, "--slots", str(args.slots),
                            "--name", f"load-w{i}", "--profiles", "twin", data=out / f"worker{i}",
                            env={"ANDROID_ADB_SERVER_PORT": str(adb_ports[i])})
            else:
                procs.start(
                    f"worker{i}", "worker", "--orchestrator", address, "--slots", str(args.slots),
                    "--name", f"load-w{i}", "--profiles", "twin", "--runner", RUNNER, "--no-cleanup",
                    data=out / f"worker{i}",
                )

        if real:
            blob = archive.read_bytes()
            chunks = [pb.FirmwareChunk(filename=archive.name, data=blob[i:i + 65536])
                      for i in range(0, len(blob), 65536)]
            ref = stub.UploadFirmware(iter(chunks), timeout=60)
            labels = {"bench": "load_farm"}
            scenario = {"hours": args.hours, "contacts": args.canaries, "sms": args.canaries, "calls": args.canaries}
        else:
            with tempfile.TemporaryFile() as fw:
                fw.write(b"load-farm firmware (the fake runner only counts its bytes)")
                fw.seek(0)
                ref = stub.UploadFirmware(iter([pb.FirmwareChunk(filename="load.tgz", data=fw.read())]), timeout=60)
            labels = {"fake.seconds": f"{fake_seconds:.2f}", "bench": "load_farm"}
            scenario = {"hours": 24}
        submitted_at = time.time() - t0
        for i in range(args.analyses):
            started = time.perf_counter()
            a = stub.SubmitAnalysis(
                pb.SubmitAnalysisRequest(firmware_sha256=ref.sha256, scenario=pb.Scenario(seed=i, **scenario),
                                         labels=labels),
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
        finished_before, progress_at, stalled = -1, time.time(), False
        next_report = time.time()
        while time.time() < grace_end and serve.poll() is None:
            counts_now.update(list_states(stub, args.analyses))
            finished = counts_now.get("succeeded", 0) + counts_now.get("failed", 0) + counts_now.get("cancelled", 0)
            if finished >= args.analyses:
                done_at = done_at or time.time() - t0
                break
            if finished != finished_before:
                finished_before, progress_at = finished, time.time()
            elif real and time.time() - progress_at > args.stall:
                stalled = True
                say(f"  no analysis finished for {args.stall:.0f} s: giving up")
                break
            if time.time() >= next_report:
                rss = samples[-1]["orch_rss_mib"] if samples else 0
                say(f"  t={time.time() - t0:6.0f}s  (draining) {counts_now}  orch RSS {rss:.1f} MiB")
                next_report = time.time() + 60
            time.sleep(2)
        time.sleep(min(args.sample_seconds, 2))
        sampler_stop.set()
        sampler.join(10)

        final = {aid: stub.GetAnalysis(pb.GetAnalysisRequest(id=aid), timeout=30) for aid in shared.ids}
        not_ok = {aid: STATES.get(a.state, "?") + (f" ({a.error})" if a.error else "")
                  for aid, a in final.items() if a.state != pb.ANALYSIS_STATE_SUCCEEDED}
        durations = [(a.finished_at.ToNanoseconds() - a.created_at.ToNanoseconds()) / 1e9
                     for a in final.values() if a.HasField("finished_at")]
        verdicts: dict[str, int] = {}
        for a in final.values():
            if a.state == pb.ANALYSIS_STATE_SUCCEEDED:
                v = pb.Verdict.Name(a.verdict).removeprefix("VERDICT_").lower()
                verdicts[v] = verdicts.get(v, 0) + 1
        attempts = sum(a.attempts for a in final.values())
        run_s: list[float] = []  # real: leased -> finished (the last lease), from each analysis' events
        if real:
            for aid in shared.ids:
                evs = list(stub.WatchAnalysis(pb.WatchAnalysisRequest(id=aid), timeout=60))
                leased = [e.time.ToNanoseconds() / 1e9 for e in evs if e.stage == pb.STAGE_LEASED]
                ended = [e.time.ToNanoseconds() / 1e9 for e in evs if e.stage in TERMINAL_STAGES]
                if leased and ended:
                    run_s.append(ended[-1] - leased[-1])
        for c in channels:
            c.close()
        channel.close()
    finally:
        sampler_stop.set()
        shared.stop.set()
        codes = procs.stop_all(patience=120.0 if real else 30.0)
        if real:  # by id only: nothing else on this host is touched
            left = farm.leave_nothing(settings, shared.ids, adb_ports)
            for i in range(args.workers):
                for sub in ("tmp", "worker-runs"):
                    d = out / f"worker{i}" / sub
                    files = sorted(str(f) for f in d.rglob("*") if f.is_file()) if d.exists() else []
                    left[f"worker{i}/{sub} files"] = files[:20] + ([f"... {len(files)} in all"] if len(files) > 20 else [])

    with (out / "rss.csv").open("w", newline="") as f:
        if samples:
            w = csv.DictWriter(f, fieldnames=list(samples[0]))
            w.writeheader()
            w.writerows(samples)
    points = [(s["elapsed_s"], s["orch_rss_mib"]) for s in samples]
    half = [p for p in points if p[0] >= (points[-1][0] / 2 if points else 0)]
    after_setup = [p for p in points if p[0] >= 10] or points
    wrong_verdicts = (sum(n for v, n in verdicts.items() if v != args.expect) if real else 0)
    leftover_count = sum(len(v) for k, v in left.items())
    while_pending = [int(s["open_watch_streams"]) for s in samples
                     if 10 <= s["elapsed_s"] < watch_end_s and s["unfinished_seen_by_watchers"] > 0]
    result = {
        "analyses": args.analyses, "watchers": args.watchers, "duration_s": args.duration,
        "workers": args.workers, "slots_per_worker": args.slots, "runner": runner_desc,
        "all_succeeded": not not_ok, "not_succeeded": not_ok if real else dict(list(not_ok.items())[:20]),
        "not_succeeded_count": len(not_ok),
        "verdicts": verdicts, "expected_verdict": args.expect if real else None,
        "wrong_verdicts": wrong_verdicts, "attempts": attempts,
        "queue_drained_at_s": done_at,
        "queue_drained_after_submission_s": round(done_at - submitted_at, 1) if done_at else None,
        "gave_up_stalled": stalled, "grace_s": grace,
        "analysis_seconds_created_to_finished": {"p50": pct(durations, 50), "max": max(durations, default=float("nan"))},
        "analysis_seconds_leased_to_finished": ({"p50": pct(run_s, 50), "p99": pct(run_s, 99),
                                                 "max": max(run_s, default=float("nan")), "n": len(run_s)}
                                                if real else None),
        "leftovers": left if real else None, "leftovers_found": leftover_count if real else None,
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
        "workers_rss_mib": {
            f"worker{i}": {"start": next((s[f"worker{i}_rss_mib"] for s in samples
                                          if s["elapsed_s"] >= 10 and s[f"worker{i}_rss_mib"]), None),
                           "peak": max((s[f"worker{i}_rss_mib"] for s in samples), default=None),
                           "end": next((s[f"worker{i}_rss_mib"] for s in reversed(samples)
                                        if s[f"worker{i}_rss_mib"]), None)}
            for i in range(args.workers)
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
            print("  not succeeded:", dict(list(not_ok.items())[:20]))
        print(f"verdicts: {verdicts}; attempts {attempts}")
        if real:
            rs = result["analysis_seconds_leased_to_finished"]
            print(f"real analyses: expected {args.expect!r}, {wrong_verdicts} other verdicts; leased->finished "
                  f"p50 {rs['p50']:.1f} s, p99 {rs['p99']:.1f} s, max {rs['max']:.1f} s; queue drained "
                  + (f"{result['queue_drained_after_submission_s']:.0f} s after submission" if done_at else "NOT")
                  + f"; leftovers: {leftover_count or 'none'}" + (f" {left}" if leftover_count else ""))
        print("workers RSS:", result["workers_rss_mib"])
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
    ok = (not not_ok and not stuck and all(c in (0, -signal.SIGTERM) for c in codes.values())
          and not wrong_verdicts and not leftover_count)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
