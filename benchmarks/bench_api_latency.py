"""API latency under concurrency: N clients each doing Submit + Watch-to-the-end.

A real ``honeyphone serve`` runs as a subprocess on a free loopback port (its
RSS is sampled with psutil while the clients run); a worker agent with the
fake runner runs in this process with enough slots that the runner is not the
bottleneck.  Reported: p50/p99 of a trivial health-check RPC (the baseline),
of SubmitAnalysis alone, and of Submit + Watch until the terminal event, plus
the latency ratios against the baseline and the server's RSS.

``--stores sqlite,postgresql`` runs the same load once per store, in one run:
``sqlite`` is one ``serve`` on its embedded store; ``postgresql`` is
``--pg-orchestrators`` (default 2) ``serve --store postgresql://…`` processes
on one throwaway PostgreSQL server (Debian's binaries, started and stopped
here, loopback only), each with its own in-process worker agent, and every
client submits on one orchestrator and watches on the next, so each Watch
follows events written through another process.  Every store's result then
carries its ratios to the sqlite run of the same invocation (throughput =
analyses per second over the clients' wall time).

    .venv/bin/python benchmarks/bench_api_latency.py --clients 20
    .venv/bin/python benchmarks/bench_api_latency.py --clients 20 --stores sqlite,postgresql --json
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
from sandbox.model import Scenario  # noqa: E402
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


def run_store(store: str, dsn: str, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    """One configuration: its orchestrators, worker agents and clients; the latencies it measured."""
    n = args.pg_orchestrators if store == "postgresql" else 1
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = (tmp / f"serve-{store}.log").open("wb")
    servers: list[subprocess.Popen[bytes]] = []
    addresses: list[str] = []
    for i in range(n):
        addresses.append(f"127.0.0.1:{free_port()}")
        argv = [sys.executable, "-m", "sandbox.cli", "--data-dir", str(tmp / f"data-{store}-{i}"), "serve",
                "--listen", addresses[-1]]
        if store == "postgresql":
            argv += ["--store", dsn]
        servers.append(subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True))
    procs = [psutil.Process(s.pid) for s in servers]
    stop_sampling = threading.Event()
    rss: list[int] = []
    agents: list[tuple[WorkerAgent, threading.Thread]] = []
    try:
        for server, address in zip(servers, addresses, strict=True):
            health = health_pb2_grpc.HealthStub(open_channel(address))
            deadline = time.monotonic() + 30
            while True:
                try:
                    health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    break
                except Exception:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(f"server did not start; see {log.name}") from None
                    time.sleep(0.1)
        idle_rss = sum(p.memory_info().rss for p in procs)

        for i, address in enumerate(addresses):  # the slots split between the orchestrators
            settings = Settings(data_dir=tmp / f"worker-{store}-{i}")
            agent = WorkerAgent(
                settings, WorkerConfig(slots=max(1, args.slots // n), name=f"bench-{i}", profiles=("twin",), poll_s=0.05),
                FleetClient(open_channel(address)), make_runner(settings),
            )
            thread = threading.Thread(target=agent.run, daemon=True)
            thread.start()
            agents.append((agent, thread))

        sha, _ = SandboxClient(open_channel(addresses[0])).upload_firmware(
            __import__("io").BytesIO(b"bench firmware"), "bench.tgz"
        )

        def sample() -> None:
            while not stop_sampling.wait(0.05):
                rss.append(sum(p.memory_info().rss for p in procs))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        lat_health: list[float] = []
        lat_submit: list[float] = []
        lat_e2e: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(args.clients)
        labels = {"fake.seconds": str(args.run_seconds)}

        def one_client(i: int) -> None:
            ch = open_channel(addresses[i % n])
            watch_ch = open_channel(addresses[(i + 1) % n]) if n > 1 else ch
            hs = health_pb2_grpc.HealthStub(ch)
            c = SandboxClient(ch)
            w = SandboxClient(watch_ch)
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
                for _ in w.watch(rec.id):
                    pass
                e.append(time.perf_counter() - t)
            ch.close()
            if watch_ch is not ch:
                watch_ch.close()
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
        for agent, _ in agents:
            agent.drain()
        for _, thread in agents:
            thread.join(30)

        base = pct(lat_health, 50)
        return {
            "store": store, "orchestrators": n,
            "clients": args.clients, "rounds": args.rounds, "worker_slots": max(1, args.slots // n) * n,
            "fake_run_seconds": args.run_seconds, "wall_seconds": wall,
            "analyses_per_second": args.clients * args.rounds / wall,
            "health": summary("health", lat_health), "submit": summary("submit", lat_submit),
            "submit_watch": summary("submit+watch", lat_e2e),
            "ratio_submit_p50_vs_health_p50": pct(lat_submit, 50) / base,
            "ratio_submit_watch_p50_vs_health_p50": pct(lat_e2e, 50) / base,
            "server_rss_idle_mib": idle_rss / 2**20, "server_rss_peak_mib": max(rss or [idle_rss]) / 2**20,
        }
    finally:
        stop_sampling.set()
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1, help="Submit+Watch rounds per client")
    ap.add_argument("--health-calls", type=int, default=20, help="baseline calls per client")
    ap.add_argument("--run-seconds", type=float, default=0.05, help="fake analysis duration")
    ap.add_argument("--slots", type=int, default=64, help="worker slots in all (in this process)")
    ap.add_argument("--stores", default="sqlite", help="comma-separated: sqlite, postgresql (default sqlite)")
    ap.add_argument("--pg-orchestrators", type=int, default=2, help="serve processes sharing the PostgreSQL store")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    stores = args.stores.split(",")
    if set(stores) - {"sqlite", "postgresql"}:
        raise SystemExit(f"--stores: sqlite and/or postgresql, not {args.stores}")

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    pg = None
    results: list[dict[str, object]] = []
    try:
        if "postgresql" in stores:
            sys.path.insert(0, str(REPO / "tests"))
            from pgcluster import PgServer, unavailable_reason

            if (why := unavailable_reason()) is not None:
                raise SystemExit(why)
            pg = PgServer(fsync=True)  # the production default: every commit reaches the disk
            pg.start()
        for store in stores:
            results.append(run_store(store, pg.new_database() if pg and store == "postgresql" else "", args, tmp))
    finally:
        if pg is not None:
            pg.destroy()

    sqlite = next((r for r in results if r["store"] == "sqlite"), None)
    for r in results:
        if sqlite is not None and r is not sqlite:
            r["ratio_to_sqlite"] = {
                "analyses_per_second": float(str(r["analyses_per_second"])) / float(str(sqlite["analyses_per_second"])),
                "submit_p50": r["submit"]["p50_ms"] / sqlite["submit"]["p50_ms"],  # type: ignore[index]
                "submit_p99": r["submit"]["p99_ms"] / sqlite["submit"]["p99_ms"],  # type: ignore[index]
                "submit_watch_p50": r["submit_watch"]["p50_ms"] / sqlite["submit_watch"]["p50_ms"],  # type: ignore[index]
                "submit_watch_p99": r["submit_watch"]["p99_ms"] / sqlite["submit_watch"]["p99_ms"],  # type: ignore[index]
            }
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {"benchmark": "api_latency", "results": results}, indent=2))
        return 0
    for result in results:
        print(f"{result['store']} x{result['orchestrators']}: {args.clients} clients x {args.rounds} Submit+Watch, "
              f"fake run {args.run_seconds}s, {result['worker_slots']} slots, wall {float(str(result['wall_seconds'])):.2f}s, "
              f"{float(str(result['analyses_per_second'])):.1f} analyses/s")
        for key in ("health", "submit", "submit_watch"):
            lat = dict(result[key])  # type: ignore[call-overload]
            print(f"  {lat['name']:13} n={lat['n']:5}  p50 {lat['p50_ms']:8.2f} ms  p99 {lat['p99_ms']:8.2f} ms")
        print(f"  ratio p50 submit/health {float(str(result['ratio_submit_p50_vs_health_p50'])):.1f}x, "
              f"submit+watch/health {float(str(result['ratio_submit_watch_p50_vs_health_p50'])):.1f}x")
        print(f"  server RSS idle {float(str(result['server_rss_idle_mib'])):.1f} MiB, "
              f"peak {float(str(result['server_rss_peak_mib'])):.1f} MiB")
        if "ratio_to_sqlite" in result:
            print("  vs sqlite: " + ", ".join(f"{k} {v:.2f}x" for k, v in dict(result["ratio_to_sqlite"]).items()))  # type: ignore[call-overload]
    return 0


if __name__ == "__main__":
    sys.exit(main())
