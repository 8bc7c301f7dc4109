"""Farm throughput with the REAL runner: analyses per hour with 1, 2 and 4 slots, per store.

For each slot count, in the same run and one after another: a fresh
``honeyphone serve --local-worker SLOTS`` (its own data dir and its own adb
server port) on a free loopback port, one firmware upload, then ``--analyses``
submissions at once of the same example firmware and scenario (default
``benign-updater``, 2 device hours, 4 contacts / 4 SMS / 4 calls, a
different seed each).  Nothing is faked: every analysis boots a twin and a
fakenet, plants, fast-forwards, captures, detects and uploads its report.

Throughput = analyses / (last ``finished_at`` - first ``created_at``), both
stamped by the orchestrator, times 3600.  Also reported per configuration: the
median time one analysis spent leased (LEASED -> FINISHED event), verdicts and
failures.  The ratio is against the 1-slot run of the same invocation (the
baseline), so machines compare by ratio, not by absolute figures.

``--stores sqlite,postgresql`` measures every slot count on each store in the
same run: ``sqlite`` is one ``serve`` on its embedded store; ``postgresql`` is
``--pg-orchestrators`` (default 2) ``serve --store postgresql://…`` processes
on one throwaway PostgreSQL server (Debian's binaries, started and stopped
here, loopback only), the slots split between their local workers and the
submissions spread round-robin over them.  Each result then also carries
``ratio_to_sqlite`` (same slot count).  ``--runner fake`` swaps in the fake
runner (no Docker) to measure the orchestrators alone.

    .venv/bin/python benchmarks/bench_farm_throughput.py [--analyses 8] [--slots 1,2,4] [--rounds 2]
    .venv/bin/python benchmarks/bench_farm_throughput.py --stores sqlite,postgresql --slots 4 [--runner fake]

Needs root, Docker and the built images (``honeyphone images build twin
fakenet``).  Leaves nothing behind: each serve is stopped by its PID, each adb
server by its port, and every analysis' containers, networks and firewall
rules are removed by analysis id.
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sandbox.api.channel import open_channel  # noqa: E402
from sandbox.api.client import SandboxClient  # noqa: E402
from sandbox.bundle.pack import pack_bundle  # noqa: E402
from sandbox.containers.cleanup import cleanup  # noqa: E402
from sandbox.containers.engine import docker_client  # noqa: E402
from sandbox.model import Scenario, Stage  # noqa: E402
from sandbox.device.adb_server import AdbServer  # noqa: E402
from sandbox.network.containment import remove_rules  # noqa: E402
from sandbox.orchestrator.model import AnalysisState  # noqa: E402
from sandbox.settings import Settings  # noqa: E402

TERMINAL = {AnalysisState.SUCCEEDED, AnalysisState.FAILED, AnalysisState.CANCELLED}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(client: SandboxClient, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list(page_size=1)
            return
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start; see {log}") from None
            time.sleep(0.2)


def leftovers(settings: Settings, analysis_ids: list[str]) -> dict[str, list[str]]:
    """What of ``analysis_ids`` is still on the host: containers, networks, firewall rules
    (found by their labels and ``honeyphone:<id>`` comments, in one pass each)."""
    from sandbox.network.containment import COMMENT_PREFIX, list_rules
    from sandbox.network.iptables import ListedRule

    wanted = set(analysis_ids)
    engine = docker_client(settings)
    has_label = {"label": [settings.label_analysis]}
    found: dict[str, list[str]] = {
        "containers": sorted(str(c.name) for c in engine.containers.list(all=True, filters=has_label)
                             if c.labels.get(settings.label_analysis) in wanted),
        "networks": sorted(str(n.name) for n in engine.networks.list(filters=has_label)
                           if (n.attrs.get("Labels") or {}).get(settings.label_analysis) in wanted),
        "rules": sorted(r.describe() for r in list_rules(None)
                        if (ListedRule(r.chain, r.spec).comment or "").removeprefix(COMMENT_PREFIX) in wanted),
    }
    engine.close()
    return found


def leave_nothing(settings: Settings, analysis_ids: list[str], adb_ports: list[int]) -> dict[str, list[str]]:
    """Kill the adb servers on ``adb_ports`` and remove whatever of ``analysis_ids`` is left
    (containers, networks, firewall rules; by id only: other analyses on this host stay).
    Returns what was found before removing it: all lists empty when the run cleaned up after itself."""
    for port in adb_ports:
        AdbServer(settings.adb_path, port).kill()
    found = leftovers(settings, analysis_ids)
    names = set(found["containers"]) | set(found["networks"])
    rules = "\n".join(found["rules"])
    dirty = [aid for aid in analysis_ids if aid in rules or any(aid in n for n in names)]
    if dirty:
        engine = docker_client(settings)
        for aid in dirty:
            cleanup(engine, settings, aid, extra=(remove_rules,))
        engine.close()
    return found


def start_serves(
    store: str, dsn: str, n: int, slots: int, args: argparse.Namespace, data: Path, log: Path, adb_port: int
) -> list[tuple[subprocess.Popen[bytes], str]]:
    """``n`` orchestrators (one for sqlite), the slots split between their local workers."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", ANDROID_ADB_SERVER_PORT=str(adb_port))
    fake = ["--runner", "workers.fake_runner:make_runner", "--no-cleanup", "--profiles", "twin"]
    out: list[tuple[subprocess.Popen[bytes], str]] = []
    for i in range(n):
        address = f"127.0.0.1:{free_port()}"
        share = slots // n + (1 if i < slots % n else 0)
        argv = [sys.executable, "-m", "sandbox.cli", "--data-dir", str(data / f"orch{i}"), "serve", "--listen", address]
        if share:
            argv += ["--local-worker", str(share), "--name", f"bench-{i}"]
            argv += fake if args.runner == "fake" else []
        if store == "postgresql":
            argv += ["--store", dsn]
        with log.open("ab") as f:
            out.append((subprocess.Popen(argv, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                         start_new_session=True), address))
    return out


def run_config(slots: int, store: str, dsn: str, args: argparse.Namespace, archive: Path, tmp: Path) -> dict[str, object]:
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / f"{store}-slots{slots}"
    log = tmp / f"serve-{store}-slots{slots}.log"
    adb_port = free_port()
    n = args.pg_orchestrators if store == "postgresql" else 1
    serves = start_serves(store, dsn, n, slots, args, data, log, adb_port)
    ids: list[str] = []
    settings = Settings()
    try:
        clients = [SandboxClient(open_channel(address), timeout=30) for _, address in serves]
        for (server, _), client in zip(serves, clients, strict=True):
            wait_ready(client, server, log)
        with archive.open("rb") as f:
            sha, _ = clients[0].upload_firmware(f, archive.name)
        for i in range(args.analyses):
            nc = args.canaries
            scenario = Scenario(hours=args.hours, seed=i, contacts=nc, sms=nc, calls=nc)
            labels = {"bench": "farm-throughput"}
            if args.runner == "fake":
                labels["fake.seconds"] = str(args.fake_seconds)
            ids.append(clients[i % n].submit(sha, scenario, labels=labels).id)
        deadline = time.monotonic() + args.timeout
        while True:
            recs = [clients[0].get(aid)[0] for aid in ids]
            if all(r.state in TERMINAL for r in recs):
                break
            if time.monotonic() > deadline or any(server.poll() is not None for server, _ in serves):
                raise SystemExit(f"{store} slots={slots}: not done after {args.timeout:g}s; see {log}")
            time.sleep(0.5)
        run_s: list[float] = []
        for i, aid in enumerate(ids):
            events = list(clients[(i + 1) % n].watch(aid))  # through another orchestrator than the submit's
            leased = [e.time for e in events if e.stage == Stage.LEASED]
            finished = [e.time for e in events if e.stage == Stage.FINISHED]
            if leased and finished:
                run_s.append(finished[-1] - leased[-1])
        wall = max(r.finished_at or 0.0 for r in recs) - min(r.created_at for r in recs)
        ok = [r for r in recs if r.state == AnalysisState.SUCCEEDED]
        verdicts: dict[str, int] = {}
        for r in ok:
            key = r.verdict.value if r.verdict else "none"
            verdicts[key] = verdicts.get(key, 0) + 1
        return {
            "slots": slots,
            "store": store,
            "orchestrators": n,
            "analyses": len(ids),
            "succeeded": len(ok),
            "failed": {r.id: r.error for r in recs if r.state != AnalysisState.SUCCEEDED},
            "verdicts": verdicts,
            "wall_seconds": round(wall, 2),
            "analyses_per_hour": round(len(ok) / wall * 3600, 1) if wall > 0 else 0.0,
            "median_seconds_per_analysis": round(statistics.median(run_s), 2) if run_s else None,
            "attempts": sum(r.attempts for r in recs),
        }
    finally:
        for server, _ in serves:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)  # drain: nothing is running any more
        for server, _ in serves:
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
        if args.runner != "fake":
            leave_nothing(settings, ids, [adb_port])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--analyses", type=int, default=8, help="analyses per configuration (default 8)")
    ap.add_argument("--slots", default="1,2,4", help="slot counts to measure; the first is the baseline")
    ap.add_argument("--firmware", default="benign-updater", help="example under examples/firmware/")
    ap.add_argument("--hours", type=float, default=2.0, help="device hours per analysis (default 2)")
    ap.add_argument("--canaries", type=int, default=4, help="contacts, SMS and calls each (default 4)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per configuration")
    ap.add_argument("--rounds", type=int, default=1, help="repeat every configuration, alternating the order")
    ap.add_argument("--stores", default="sqlite", help="comma-separated: sqlite, postgresql (default sqlite)")
    ap.add_argument("--pg-orchestrators", type=int, default=2, help="serve processes sharing the PostgreSQL store")
    ap.add_argument("--runner", choices=("real", "fake"), default="real", help="fake: no Docker, orchestrators alone")
    ap.add_argument("--fake-seconds", type=float, default=0.5, help="run time of one fake analysis")
    args = ap.parse_args()
    slot_counts = [int(s) for s in args.slots.split(",")]
    stores = args.stores.split(",")
    if set(stores) - {"sqlite", "postgresql"}:
        raise SystemExit(f"--stores: sqlite and/or postgresql, not {args.stores}")

    tmp = Path(tempfile.mkdtemp(prefix="bench-farm-"))
    load_start = round(os.getloadavg()[0], 2)  # other work on the host skews absolute figures
    archive = tmp / f"{args.firmware}.tar.gz"
    with archive.open("wb") as out:
        pack_bundle(REPO / "examples" / "firmware" / args.firmware, out)

    pg = None
    dsn = ""
    if "postgresql" in stores:
        sys.path.insert(0, str(REPO / "tests"))
        from pgcluster import PgServer, unavailable_reason

        if (why := unavailable_reason()) is not None:
            raise SystemExit(why)
        pg = PgServer(fsync=True)  # the production default: every commit reaches the disk
        pg.start()

    # Rounds alternate the order (1,2,4 then 4,2,1 ...) so that a host whose
    # background load drifts during the run does not favour one configuration.
    configs = [(slots, store) for slots in slot_counts for store in stores]
    runs: dict[tuple[int, str], list[dict[str, object]]] = {c: [] for c in configs}
    try:
        for r in range(args.rounds):
            for slots, store in configs if r % 2 == 0 else list(reversed(configs)):
                if pg is not None and store == "postgresql":
                    dsn = pg.new_database()
                res = run_config(slots, store, dsn, args, archive, tmp / f"round{r}")
                print(json.dumps(res), file=sys.stderr, flush=True)
                runs[(slots, store)].append(res)
    finally:
        if pg is not None:
            pg.destroy()
    results = []
    for slots, store in configs:
        done = sum(int(str(x["succeeded"])) for x in runs[(slots, store)])
        wall = sum(float(str(x["wall_seconds"])) for x in runs[(slots, store)])
        results.append({
            "slots": slots, "store": store, "orchestrators": runs[(slots, store)][0]["orchestrators"],
            "analyses": sum(int(str(x["analyses"])) for x in runs[(slots, store)]), "succeeded": done,
            "wall_seconds": round(wall, 2), "analyses_per_hour": round(done / wall * 3600, 1) if wall > 0 else 0.0,
            "per_round_analyses_per_hour": [x["analyses_per_hour"] for x in runs[(slots, store)]],
            "median_seconds_per_analysis": [x["median_seconds_per_analysis"] for x in runs[(slots, store)]],
            "failed": {k: v for x in runs[(slots, store)] for k, v in dict(x["failed"]).items()},  # type: ignore[call-overload]
        })
    base = float(str(results[0]["analyses_per_hour"]))
    by_key = {(res["slots"], res["store"]): float(str(res["analyses_per_hour"])) for res in results}
    for res in results:
        res["ratio_to_baseline"] = round(float(str(res["analyses_per_hour"])) / base, 2) if base else None
        sqlite_rate = by_key.get((res["slots"], "sqlite"))
        if res["store"] != "sqlite" and sqlite_rate:
            res["ratio_to_sqlite"] = round(float(str(res["analyses_per_hour"])) / sqlite_rate, 2)
    print(json.dumps({
        "benchmark": "farm_throughput",
        "firmware": args.firmware,
        "scenario": {"hours": args.hours, "contacts": args.canaries, "sms": args.canaries, "calls": args.canaries},
        "analyses_per_config": args.analyses,
        "rounds": args.rounds,
        "load_average_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "baseline": {"slots": slot_counts[0], "store": stores[0]},
        "runner": args.runner,
        "host": {"cpus": len(os.sched_getaffinity(0)), "clock_fallback_rate": Settings().clock.fallback_rate},
        "results": results,
        "logs": str(tmp),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
