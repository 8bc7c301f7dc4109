"""Farm parity: an analysis gives the same result in a busy farm as alone.

Six analyses of the example firmware (leaks and clean ones) run at once on
one real-runner worker with two slots, then each again alone, with the same
scenario (firmware, horizon, seed).  Verdicts, the findings' kinds, fields
and destinations, and the number of findings must be the same; every scan
must be complete; and the farm's log must hold no traceback and no failed
scan.  (Concurrent analyses once shared the scanner's Hyperscan scratch:
``ScratchInUseError``, "scan failed; returning 0 partial hits", and a leak
could be reported clean.)

Horizons are the ones the end-to-end tests use for these firmwares; the
test reads only the reports, so it does not depend on how the device clock
is implemented.

What is compared, and why not more:

* the verdict;
* the leak *styles*: the set of (channel, encoding chain, destination) of
  the findings -- for DNS the queried domain (its other labels carry the
  canaries) -- and their number.  These depend on the firmware and on
  detection only.
* Not canary items, nor the raw number of findings: canaries are generated
  per analysis id, so which SMS address equals which contact's number (one
  finding per item holding the value) differs between two analyses, and at
  the default 28800x clock the one-device-minute window that joins copies
  of one leak is 2 ms of real time, so how many events a burst splits into
  follows the host's load (measured: 60 findings in the farm, 50 alone, for
  the same kitchen-sink styles).  Exact parity of findings on identical
  input is checked where it is deterministic:
  ``tests/unit/detect/test_detect_no_silent_loss.py`` runs the detector on
  the same payloads in parallel threads and alone.
"""

from __future__ import annotations

import json
from typing import Any
import pytest
from farm_harness import wait_ready
from test_farm_real_runner import RealFarm, farm, wait_all  # noqa: F401  (farm: the fixture)

from sandbox.api.client import SandboxClient
from sandbox.model import Verdict
from sandbox.orchestrator.model import AnalysisState

pytestmark = pytest.mark.integration

# (firmware, device hours, expected verdict): horizons as in test_core_pipeline_e2e.py
PLAN = [
    ("leaky-kitchen-sink", 24, Verdict.LEAK),
    ("benign-updater", 2, Verdict.CLEAN),
    ("adups-5.3", 80, Verdict.LEAK),
    ("adups-5.4", 2, Verdict.CLEAN),
    ("leaky-kitchen-sink", 24, Verdict.LEAK),
    ("benign-updater", 2, Verdict.CLEAN),
]


def _style(f: dict[str, Any]) -> tuple[object, ...]:
    """How and where a finding left: channel family, encoding, destination
    (for DNS the queried domain: the labels before it carry the canaries)."""
    host = f["destination"]["host"] or ""
    family = f["channel"] if f["channel"] in ("dns", "udp") else "stream"
    if family == "dns":
        return (family, tuple(f["encoding"]), ".".join(host.rstrip(".").split(".")[-2:]))
    return (family, tuple(f["encoding"]), host, f["destination"]["port"])


def _summary(client: SandboxClient, aid: str) -> tuple[str, set[tuple[object, ...]], list[str]]:
    """(verdict, leak styles, why detection was incomplete).  Digest styles
    count too: an item's digest is its own finding, whatever other copies of
    the item leave with it (sandbox/detect/findings.py, group key)."""
    rec = client.get(aid)[0]
    assert rec.state == AnalysisState.SUCCEEDED, (aid, rec.state, rec.error)
    report = json.loads(client.report(aid)[1])
    health = report.get("health", {})
    gaps = [i["message"] for i in health.get("incidents", []) if i["kind"] == "detection_incomplete"]
    if not health.get("detection", {}).get("complete"):
        gaps.append("health.detection.complete is not true")
    return report["verdict"], {_style(f) for f in report["findings"]}, gaps


def test_six_analyses_at_two_slots_match_each_run_alone(farm: RealFarm) -> None:
    farm.serve(lease_seconds=15)
    client = wait_ready(farm.address)
    farm.worker("alpha", slots=2)

    together = [farm.submit(client, fw, hours, seed) for seed, (fw, hours, _) in enumerate(PLAN)]
    states = wait_all(client, together, timeout=1800)
    assert set(states.values()) == {AnalysisState.SUCCEEDED}, {a: client.get(a)[0].error for a in together}

    alone = []
    for seed, (fw, hours, _) in enumerate(PLAN):  # one at a time: nothing else runs
        aid = farm.submit(client, fw, hours, seed)
        assert wait_all(client, [aid], timeout=600)[aid] == AnalysisState.SUCCEEDED, client.get(aid)[0].error
        alone.append(aid)

    for (fw, hours, verdict), a, b in zip(PLAN, together, alone):
        in_farm, by_itself = _summary(client, a), _summary(client, b)
        assert not in_farm[2] and not by_itself[2], (fw, "detection incomplete", in_farm[2], by_itself[2])
        assert in_farm[0] == by_itself[0] == verdict.value, (fw, in_farm, by_itself)
        assert in_farm[1] == by_itself[1], (fw, "leak styles", sorted(in_farm[1] ^ by_itself[1], key=str))
        assert len(in_farm[1]) == len(by_itself[1])
    log = farm.log.read_text(errors="replace")
    assert "Traceback" not in log and "scan failed" not in log and "ScratchInUse" not in log, log[-4000:]
    for aid in together + alone:
        assert farm.leftovers(aid) == {"containers": [], "networks": [], "rules": [], "tcpdump": []}
