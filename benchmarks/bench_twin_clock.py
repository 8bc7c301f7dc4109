"""Real seconds to 96 device hours on the twin's event-driven clock, and the
share of network exchanges that completed, for four firmware shapes:

* ``sleeper``: one idle service (a 72 h sleep, then nothing);
* ``https_15min``: an HTTPS poll every 15 device minutes, 10 s timeout
  (384 exchanges in 96 h);
* ``http_60s``: an HTTP poll every 60 device seconds, 10 s timeout
  (5,760 exchanges);
* ``busy_loop``: a service that never sleeps (the clock's fallback).

Each runs as a full analysis (``run_analysis``: real twin, fakenet, strace,
capture); the figure is the real time of the fast-forward stage, from the
first FAST_FORWARDING event to ANALYZING.  Ratios are against the sleeper,
run first in the same process (the cost of an exchange-free run on this
machine at this moment).

Targets (issue 13): sleeper <= 5 s; https_15min <= 20 s with 100 % of
exchanges completed; http_60s <= 90 s.

    .venv/bin/python benchmarks/bench_twin_clock.py [--only NAME ...] [--hours 96]
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from sandbox.model import AnalysisRequest, CancelToken, ProgressEvent, Scenario, Stage
from sandbox.core.pipeline import run_analysis
from sandbox.device import AdbServer
from sandbox.device.twin import new_analysis_id
from sandbox.settings import Settings

POLLER = """\
import json, ssl, sys, time, urllib.request
url, period = sys.argv[1], float(sys.argv[2])
ctx = ssl.create_default_context()
t0, n = time.time(), 0
while True:
    n += 1
    time.sleep(max(0.0, t0 + n * period - time.time()))
    try:
        with urllib.request.urlopen(f"{url}?n={n}", timeout=10, context=ctx) as r:
            r.read()
            ok = True
    except OSError:
        ok = False
    print(json.dumps({"event": "poll", "n": n, "ok": ok}), flush=True)
"""

CASES: dict[str, tuple[list[str], int | None]] = {
    # name: (argv of the one service, exchanges expected in 96 h)
    "sleeper": (["/usr/bin/python3", "-c", "import time; time.sleep(72 * 3600); time.sleep(10 ** 7)"], None),
    "https_15min": (["/usr/bin/python3", "/system/priv-app/bench/poller.py", "https://poll.example.org/check", "900"],
                    384),
    "http_60s": (["/usr/bin/python3", "/system/priv-app/bench/poller.py", "http://poll.example.org/ping", "60"],
                 5760),
    "busy_loop": (["/usr/bin/python3", "-c", "while True: pass"], None),
}


def bundle(root: Path, name: str, argv: list[str]) -> Path:
    d = root / name
    (d / "files/system/priv-app/bench").mkdir(parents=True)
    (d / "files/system/priv-app/bench/poller.py").write_text(POLLER)
    (d / "firmware.toml").write_text(
        f'[firmware]\nname = "bench-{name}"\nversion = "1"\n\n[[services]]\nname = "svc"\nexec = {json.dumps(argv)}\n')
    return d


def run_case(settings: Settings, client: docker.DockerClient, root: Path, name: str, hours: float) -> dict[str, Any]:
    argv, expected = CASES[name]
    marks: dict[str, float] = {}

    def progress(ev: ProgressEvent) -> None:
        if ev.stage == Stage.FAST_FORWARDING:
            marks.setdefault("ff", time.monotonic())
        elif ev.stage == Stage.ANALYZING:
            marks.setdefault("done", time.monotonic())

    aid = new_analysis_id()
    t0 = time.monotonic()
    out = run_analysis(settings, AnalysisRequest(aid, bundle(root, name, argv), Scenario(hours=hours, seed=1)),
                       progress, CancelToken(), root / aid, client=client)
    total = time.monotonic() - t0
    if out.error:
        raise SystemExit(f"{name}: the analysis failed: {out.error}")
    polls: list[dict[str, Any]] = []
    log = out.artifacts.get("service-logs.svc.log")
    if log is not None:
        polls = [json.loads(x) for x in log.read_text(errors="replace").splitlines() if x.startswith("{")]
    clock = dict(out.report["health"]["clock"])  # type: ignore[index]
    row: dict[str, Any] = {
        "real_seconds_to_horizon": round(marks.get("done", t0 + total) - marks.get("ff", t0), 2),
        "analysis_real_seconds": round(total, 2),
        "device_hours": clock.get("device_hours"), "jumps": clock.get("jumps"),
        "fallback": clock.get("fallback"),
    }
    if expected is not None:
        ok = sum(1 for p in polls if p.get("ok"))
        row.update({"exchanges_expected": int(expected * hours / 96), "exchanges_logged": len(polls),
                    "exchanges_completed": ok, "completed_share": round(ok / max(len(polls), 1), 4)})
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", choices=list(CASES), help="run these cases (the sleeper always runs first)")
    ap.add_argument("--hours", type=float, default=96.0)
    args = ap.parse_args()
    names = ["sleeper"] + [n for n in (args.only or list(CASES)) if n != "sleeper"]
    client = docker.from_env()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(adb_server_port=port, data_dir=Path(tmp) / "data")
        try:
            for name in names:
                results[name] = run_case(settings, client, Path(tmp), name, args.hours)
                print(f"{name}: {json.dumps(results[name])}", flush=True)
        finally:
            AdbServer.from_settings(settings).kill()
    base = results["sleeper"]["real_seconds_to_horizon"] or 1e-9
    for row in results.values():
        row["ratio_to_sleeper"] = round(row["real_seconds_to_horizon"] / base, 2)
    print(json.dumps({"horizon_device_hours": args.hours, "cases": results}, indent=1))


if __name__ == "__main__":
    main()
