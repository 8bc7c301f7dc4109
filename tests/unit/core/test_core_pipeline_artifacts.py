"""The pipeline names its artifacts so the orchestrator accepts every one.

A worker uploads ``AnalysisOutcome.artifacts`` under their names, and the
orchestrator only takes flat names (``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``): a
name with a slash (``syscalls/x.strace``) was refused and the syscall traces
never reached ``honeyphone artifacts``.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.core.pipeline import _artifact_map
from sandbox.orchestrator import validation


def test_every_artifact_name_is_accepted_by_the_orchestrator(tmp_path: Path) -> None:
    for rel in ("capture.pcap", "fakenet/flows.jsonl", "fakenet/dns.jsonl", "report.json", "report.html",
                "canaries.json", "syscalls/sysoper.strace", "syscalls/net-agent_2.strace",
                "service-logs/sysoper.log"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    names = _artifact_map(tmp_path)
    assert set(names) == {"pcap", "flows", "dns", "report.json", "report.html", "canaries",
                          "syscalls.sysoper.strace", "syscalls.net-agent_2.strace", "service-logs.sysoper.log"}
    for name, path in names.items():
        assert validation.artifact_name(name) == name and path.is_file()
