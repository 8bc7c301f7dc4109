"""Fuzz the gRPC API with N requests against a real ``honeyphone serve`` and count the answers.

A ``honeyphone serve`` subprocess listens on a free loopback port with its own
data directory (``--in-process`` runs the server in this process instead).
After a set-up that takes analyses to every state, N fuzzed requests go to
every method of ``honeyphone.v1.Sandbox`` and ``honeyphone.v1.Fleet``:
messages generated from the descriptors, valid requests with mutated fields,
and raw bytes as the serialized request (the strategies live in
``tests/unit/api/api_fuzz.py``, shared with the unit test that sends about a
thousand).  Every 250 requests the server must still answer a health check.

Reported: counts per status code (overall, per method, per kind), contract
violations (any code other than OK and the clear ones, or an empty message),
crashes (the server process gone, UNAVAILABLE answers, failed health checks),
tracebacks in the server log, the server's RSS before and after, and the
wall time.  Exit status 0 only when there were no violations and no crashes.

    .venv/bin/python benchmarks/fuzz_api.py --requests 10000 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "unit" / "api"))

import grpc  # noqa: E402
from api_fuzz import Case, Sender, Tally, build_corpus, cases, open_fuzz_channel  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HEALTH_EVERY = 250


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``honeyphone serve`` as a subprocess, or the same server in this process."""

    def __init__(self, tmp: Path, in_process: bool) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.log_path = tmp / "serve.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._inproc: Any = None
        if in_process:
            from sandbox.api.server import Security, start_server
            from sandbox.orchestrator.runtime import Orchestrator
            from sandbox.settings import FleetSettings

            fleet = FleetSettings()
            orch = Orchestrator.open(tmp / "data" / "orchestrator", fleet)
            orch.start()
            running = start_server(orch, fleet, self.address, Security())
            self._inproc = (orch, running)
            self.pid = os.getpid()
        else:
            env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
            with self.log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "sandbox.cli", "--data-dir", str(tmp / "data"), "serve", "--listen", self.address],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            self.pid = self._proc.pid

    def alive(self) -> bool:
        return self._proc is None or self._proc.poll() is None

    def log_errors(self) -> list[str]:
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or " ERROR " in line or "internal error" in line]

    def stop(self) -> int | None:
        if self._inproc is not None:
            orch, running = self._inproc
            running.stop(grace=0)
            orch.close()
            return 0
        assert self._proc is not None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                return self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        return self._proc.returncode


def wait_healthy(health: Any, server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            health.Check(health_pb2.HealthCheckRequest(), timeout=2)
            return
        except grpc.RpcError:
            if time.monotonic() > deadline or not server.alive():
                raise SystemExit(f"server did not start; see {server.log_path}") from None
            time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--stream-budget", type=float, default=0.3, help="seconds before a live stream is cancelled")
    ap.add_argument("--in-process", action="store_true", help="run the server in this process")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--keep", action="store_true", help="keep the server's data directory and log")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fuzz-api-"))
    server = Server(tmp, args.in_process)
    proc = psutil.Process(server.pid)
    crashes: list[str] = []
    tally = Tally()
    started = time.monotonic()
    try:
        channel = open_fuzz_channel(server.address)
        health = health_pb2_grpc.HealthStub(channel)
        wait_healthy(health, server)
        corpus = build_corpus(channel)
        rss_before = proc.memory_info().rss
        sender = Sender(channel, timeout=30, stream_budget=args.stream_budget)
        strategy = cases(corpus)

        def one(case: Case) -> None:
            outcome = sender.send(case)
            tally.add(outcome)
            if outcome.code == grpc.StatusCode.UNAVAILABLE:
                crashes.append(f"UNAVAILABLE after {tally.total} requests: {outcome.details}")
            elif outcome.code == grpc.StatusCode.OK and outcome.response is not None:
                corpus.learn(case.method.name, outcome.response)
            if tally.total % HEALTH_EVERY == 0:
                if not server.alive():
                    crashes.append(f"server process exited after {tally.total} requests")
                    raise SystemExit(1)
                try:
                    health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                except grpc.RpcError as exc:
                    crashes.append(f"health check failed after {tally.total} requests: {exc.code().name}")
                if not args.json:
                    print(f"  {tally.total:>6} requests, {time.monotonic() - started:6.1f} s, "
                          f"server RSS {proc.memory_info().rss / 2**20:.0f} MiB", file=sys.stderr, flush=True)

        while tally.total < args.requests:  # hypothesis may stop a batch early; go on until N were sent
            remaining = args.requests - tally.total

            @settings(
                max_examples=remaining, deadline=None, database=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(st.data())
            def fuzz(data: st.DataObject) -> None:
                if tally.total < args.requests:
                    one(data.draw(strategy))

            fuzz()
        wall = time.monotonic() - started
        alive = server.alive()
        if not alive:
            crashes.append("server process exited")
        rss_after = proc.memory_info().rss if alive else 0
    finally:
        rc = server.stop()
    log_errors = server.log_errors()
    result = {
        "requests": tally.total,
        "server": "in-process" if args.in_process else "honeyphone serve subprocess",
        "codes": dict(tally.codes.most_common()),
        "kinds": dict(tally.kinds),
        "by_method": {m: dict(c.most_common()) for m, c in sorted(tally.by_method.items())},
        "violations": tally.problems,
        "crashes": crashes,
        "server_log_errors": log_errors[:20],
        "server_exit_status_on_sigterm": rc,
        "server_rss_mib": {"before": rss_before / 2**20, "after": rss_after / 2**20},
        "slowest_ms": tally.slowest * 1e3,
        "slowest_case": tally.slowest_case,
        "wall_seconds": wall,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{tally.total} fuzzed requests against {result['server']} in {wall:.0f} s")
        for line in list(tally.lines())[1:]:
            print(line)
        print("per method:")
        for m, counts in result["by_method"].items():  # type: ignore[union-attr]
            print(f"  {m:<18} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        print(f"crashes: {len(crashes)}" + "".join(f"\n  {c}" for c in crashes))
        print(f"server log errors/tracebacks: {len(log_errors)}" + "".join(f"\n  {e}" for e in log_errors[:10]))
        print(f"server RSS {rss_before / 2**20:.0f} MiB before, {rss_after / 2**20:.0f} MiB after; "
              f"exit status on SIGTERM {rc}")
    ok = not tally.problems and not crashes and not log_errors and rc == 0
    if ok and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"server data and log kept in {tmp}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
