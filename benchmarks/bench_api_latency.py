"""API latency under concurrency: N clients each doing Submit + Watch-to-the-end.

A real ``honeyphone serve`` runs as a subprocess on a free loopback port (its
RSS is sampled with psutil while the clients run); a worker agent with the
fake runner runs in this process with enough slots that the runner is not the
bottleneck.  Reported: p50/p99 of a trivial health-check RPC (the baseline),
of SubmitAnalysis alone, and of Submit + Watch until the terminal event, plus
the latency ratios against the baseline and the server's RSS.

    .venv/bin/python benchmarks/bench_api_latency.py --clients 20
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from sandbox.api.channel import open_channel  # noqa: E402
from sandbox.api.client import SandboxClient  # noqa: E402
from sandbox.api.fleet_client import FleetClient  # noqa: E402
from sandbox.core.analysis import Scenario  # noqa: E402
from sandbox.settings import Settings  # noqa: E402
from workers.agent import WorkerAgent, WorkerConfig  # noqa: E402
from workers.fake_runner import make_runner  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name: str, values: list[float]) -> dict[str, float]:
    return {"name": name, "n": len(values), "p50_ms": pct(values, 50) * 1e3, "p99_ms": pct(values, 99) * 1e3,  # type: ignore[dict-item]
            "mean_ms": statistics.fmean(values) * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1, help="Submit+Watch rounds per client")
    ap.add_argument("--health-calls", type=int, default=20, help="baseline calls per client")
    ap.add_argument("--run-seconds", type=float, default=0.05, help="fake analysis duration")
    ap.add_argument("--slots", type=int, default=64, help="worker slots (in this process)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    address = f"127.0.0.1:{free_port()}"
    log = (tmp / "serve.log").open("wb")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox.cli", "--data-dir", str(tmp / "data"), "serve", "--listen", address],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    proc = psutil.Process(server.pid)
    stop_sampling = threading.Event()
    rss: list[int] = []
    try:
        channel = open_channel(address)
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 30
        while True:
            try:
                health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"server did not start; see {tmp / 'serve.log'}")
                time.sleep(0.1)
        idle_rss = proc.memory_info().rss

        settings = Settings(data_dir=tmp / "worker")
        agent = WorkerAgent(
            settings, WorkerConfig(slots=args.slots, name="bench", profiles=("twin",), poll_s=0.05),
            FleetClient(open_channel(address)), make_runner(settings),
        )
        worker = threading.Thread(target=agent.run, daemon=True)
        worker.start()

        client = SandboxClient(channel)
        sha, _ = client.upload_firmware(__import__("io").BytesIO(b"bench firmware"), "bench.tgz")

        def sample() -> None:
            while not stop_sampling.wait(0.05):
                rss.append(proc.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        lat_health: list[float] = []
        lat_submit: list[float] = []
        lat_e2e: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(args.clients)
        labels = {"fake.seconds": str(args.run_seconds)}

        def one_client(i: int) -> None:
            ch = open_channel(address)
            hs = health_pb2_grpc.HealthStub(ch)
            c = SandboxClient(ch)
            barrier.wait()
            h, s, e = [], [], []
            for _ in range(args.health_calls):
                t = time.perf_counter()
                hs.Check(health_pb2.HealthCheckRequest())
                h.append(time.perf_counter() - t)
            for r in range(args.rounds):
                t = time.perf_counter()
                rec = c.submit(sha, Scenario(hours=24, seed=i * 1000 + r), labels=labels)
                s.append(time.perf_counter() - t)
                for _ in c.watch(rec.id):
                    pass
                e.append(time.perf_counter() - t)
            ch.close()
            with lock:
                lat_health.extend(h)
                lat_submit.extend(s)
                lat_e2e.extend(e)

        started = time.perf_counter()
        threads = [threading.Thread(target=one_client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        stop_sampling.set()
        agent.drain()
        worker.join(30)

        base = pct(lat_health, 50)
        result = {
            "clients": args.clients, "rounds": args.rounds, "worker_slots": args.slots,
            "fake_run_seconds": args.run_seconds, "wall_seconds": wall,
            "health": summary("health", lat_health), "submit": summary("submit", lat_submit),
            "submit_watch": summary("submit+watch", lat_e2e),
            "ratio_submit_p50_vs_health_p50": pct(lat_submit, 50) / base,
            "ratio_submit_watch_p50_vs_health_p50": pct(lat_e2e, 50) / base,
            "server_rss_idle_mib": idle_rss / 2**20, "server_rss_peak_mib": max(rss or [idle_rss]) / 2**20,
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"{args.clients} clients x {args.rounds} Submit+Watch, fake run {args.run_seconds}s, {args.slots} slots, "
                  f"wall {wall:.2f}s")
            for key in ("health", "submit", "submit_watch"):
                r = result[key]
                print(f"  {r['name']:13} n={r['n']:5}  p50 {r['p50_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms")  # type: ignore[index]
            print(f"  ratio p50 submit/health {result['ratio_submit_p50_vs_health_p50']:.1f}x, "
                  f"submit+watch/health {result['ratio_submit_watch_p50_vs_health_p50']:.1f}x")
            print(f"  server RSS idle {result['server_rss_idle_mib']:.1f} MiB, peak {result['server_rss_peak_mib']:.1f} MiB")
        return 0
    finally:
        stop_sampling.set()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
