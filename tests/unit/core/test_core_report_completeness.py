"""The report carries every detection error counter, and they weigh on the verdict.

``build_report`` over real artifact files (no mocks): a damaged capture, a
capture whose stop failed and an unparseable trace line reach
``health.detection`` and ``health.incidents``, and a run without findings is
then ``suspicious``, never ``clean``.  A clean run says its scan was complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.bundle import load_bundle
from sandbox.canary import CanarySpec, generate
from sandbox.model import AnalysisRequest, Scenario
from sandbox.core.report import build_report
from sandbox.core.run_state import RunState
from sandbox.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "firmware"


def _report(tmp_path: Path, pcap_bytes: bytes | None, trace: str, capture: dict[str, Any]) -> dict[str, Any]:
    settings = Settings(data_dir=tmp_path / "data")
    (tmp_path / "w").mkdir()
    bundle = load_bundle(EXAMPLES / "hello", settings.bundle_limits, tmp_path / "w")
    request = AnalysisRequest("r" + "0" * 11, EXAMPLES / "hello", Scenario(hours=2, seed=1, contacts=2, sms=2, calls=2))
    canaries = generate(CanarySpec(seed=1, analysis_id=request.analysis_id, contacts=2, sms=2, calls=2))
    out = tmp_path / "out"
    fakenet = out / "fakenet"
    syscalls = out / "syscalls"
    fakenet.mkdir(parents=True)
    syscalls.mkdir()
    for name in ("flows", "dns", "tls_failures"):
        (fakenet / f"{name}.jsonl").write_text("")
    (syscalls / "svc.strace").write_text(trace)
    pcap = out / "capture.pcap"
    if pcap_bytes is not None:
        pcap.write_bytes(pcap_bytes)
    state = RunState(request.analysis_id, out)
    state.health["capture"] = capture
    try:
        return build_report(settings=settings, request=request, bundle=bundle, canaries=canaries, state=state,
                            fakenet_dir=fakenet, pcap=pcap, device_ip="10.88.0.3", syscalls_dir=syscalls).report
    finally:
        bundle.cleanup()


GOOD_PCAP = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")  # a header, no packets
GOOD_TRACE = '100 1700000000.000000 execve("/bin/true", ["true"], 0x0 /* 0 vars */) = 0\n'


def test_a_clean_run_says_its_scan_was_complete(tmp_path: Path) -> None:
    report = _report(tmp_path, GOOD_PCAP, GOOD_TRACE, {"packets": 0, "dropped_by_kernel": 0, "stop_error": None})
    assert report["verdict"] == "clean", report["verdict_reasons"]
    det = report["health"]["detection"]
    assert det["complete"] is True and det["sources"]["capture_error"] is None
    assert det["strace"]["svc.strace"]["unparseable"] == 0 and report["findings_partial"] is False


def test_unreadable_evidence_and_a_failed_capture_stop_rule_out_clean(tmp_path: Path) -> None:
    report = _report(tmp_path, b"not a pcap at all", GOOD_TRACE + "%%% what is this\n",
                     {"packets": None, "dropped_by_kernel": 3, "stop_error": "CaptureError: tcpdump hung"})
    assert report["verdict"] == "suspicious"
    reasons = " | ".join(report["verdict_reasons"])
    assert "not a readable pcap" in reasons and "tcpdump hung" in reasons and "dropped 3" in reasons
    assert "could not be parsed (svc.strace)" in reasons
    det = report["health"]["detection"]
    assert det["complete"] is False and det["capture_stop_error"] == "CaptureError: tcpdump hung"
    assert det["strace"]["svc.strace"]["unparseable"] == 1
    kinds = [i["kind"] for i in report["health"]["incidents"]]
    assert "detection_incomplete" in kinds and "trace_unparseable" in kinds
