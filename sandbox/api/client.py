"""A typed client of the Sandbox service for the CLI and scripts.

It speaks protobuf on the wire and hands back the orchestrator's frozen
records; ``watch`` resumes by itself across a restarting server, so a live
progress bar survives an orchestrator restart without gaps or repeats.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import grpc

from sandbox.model import Scenario, Verdict
from sandbox.errors import EnvironmentProblem
from sandbox.orchestrator.model import TERMINAL_STAGES, AnalysisRecord, AnalysisState, ArtifactRecord, EventRecord

from . import convert
from .gen.honeyphone.v1 import sandbox_pb2 as pb
from .gen.honeyphone.v1 import sandbox_pb2_grpc
from .streams import SEND_CHUNK

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})
# A submission timed out may have been queued: the idempotency key makes retrying it safe.
SUBMIT_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _chunks(stream: BinaryIO, filename: str) -> Iterator[pb.FirmwareChunk]:
    first = True
    while True:
        data = stream.read(SEND_CHUNK)
        if not data and not first:
            return
        yield pb.FirmwareChunk(filename=filename if first else "", data=data)
        first = False
        if not data:
            return


class SandboxClient:
    def __init__(self, channel: Any, timeout: float = 30.0) -> None:
        self._stub = sandbox_pb2_grpc.SandboxStub(channel)
        self._timeout = timeout

    def upload_firmware(self, stream: BinaryIO, filename: str) -> tuple[str, int]:
        ref = self._stub.UploadFirmware(_chunks(stream, filename), timeout=max(self._timeout, 3600))
        return ref.sha256, ref.size

    def submit(
        self, firmware_sha256: str, scenario: Scenario, priority: int = 0, labels: Mapping[str, str] | None = None,
        *, request_id: str | None = None, retry_s: float = 0.0,
    ) -> AnalysisRecord:
        """Queue an analysis.  Every call carries an idempotency key (``request_id``, a fresh UUID
        when not given), so retrying while the server is UNAVAILABLE or slow (for up to
        ``retry_s`` seconds) never queues the analysis twice."""
        req = pb.SubmitAnalysisRequest(
            firmware_sha256=firmware_sha256, scenario=convert.scenario_to_proto(scenario), priority=priority,
            labels=dict(labels or {}), request_id=request_id or uuid.uuid4().hex,
        )
        start = time.monotonic()
        while True:
            try:
                msg = self._stub.SubmitAnalysis(req, timeout=self._timeout)
                return convert.analysis_from_proto(msg)[0]
            except grpc.RpcError as exc:
                if exc.code() not in SUBMIT_RETRYABLE or time.monotonic() - start > retry_s:
                    raise
            time.sleep(0.5)

    def get(self, analysis_id: str) -> tuple[AnalysisRecord, list[ArtifactRecord]]:
        return convert.analysis_from_proto(
            self._stub.GetAnalysis(pb.GetAnalysisRequest(id=analysis_id), timeout=self._timeout)
        )

    def list(
        self, state: AnalysisState | None = None, labels: Mapping[str, str] | None = None,
        page_size: int = 0, page_token: str = "",
    ) -> tuple[list[AnalysisRecord], str]:
        resp = self._stub.ListAnalyses(
            pb.ListAnalysesRequest(
                state=convert.state_to_proto(state) if state else pb.ANALYSIS_STATE_UNSPECIFIED,
                labels=dict(labels or {}), page_size=page_size, page_token=page_token,
            ),
            timeout=self._timeout,
        )
        return [convert.analysis_from_proto(a)[0] for a in resp.analyses], resp.next_page_token

    def cancel(self, analysis_id: str) -> AnalysisRecord:
        msg = self._stub.CancelAnalysis(pb.CancelAnalysisRequest(id=analysis_id), timeout=self._timeout)
        return convert.analysis_from_proto(msg)[0]

    def report(self, analysis_id: str) -> tuple[Verdict | None, str]:
        msg = self._stub.GetReport(pb.GetReportRequest(id=analysis_id), timeout=self._timeout)
        return convert.verdict_from_proto(msg.verdict), msg.json

    def download_artifact(self, analysis_id: str, name: str, dest: Path) -> int:
        """Write the artifact to ``dest`` (via a temporary file); return its size."""
        tmp = dest.with_name(dest.name + ".part")
        size = 0
        with tmp.open("wb") as out:
            for chunk in self._stub.DownloadArtifact(
                pb.DownloadArtifactRequest(id=analysis_id, name=name), timeout=max(self._timeout, 3600)
            ):
                out.write(chunk.data)
                size += len(chunk.data)
        tmp.replace(dest)
        return size

    def watch(self, analysis_id: str, from_sequence: int = 1, reconnect_s: float = 120.0) -> Iterator[EventRecord]:
        """Every event to the terminal one; reconnects (resuming) while the server is unavailable."""
        next_seq = from_sequence
        down_since: float | None = None
        while True:
            try:
                for msg in self._stub.WatchAnalysis(pb.WatchAnalysisRequest(id=analysis_id, from_sequence=next_seq)):
                    down_since = None
                    ev = convert.event_from_proto(msg, analysis_id)
                    next_seq = ev.sequence + 1
                    yield ev
                    if ev.stage in TERMINAL_STAGES:
                        return
                # The server ended the stream without a terminal event: it is shutting down.
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > reconnect_s:
                    raise EnvironmentProblem(f"the server keeps ending the watch of {analysis_id}")
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE:
                    raise
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > reconnect_s:
                    raise
            time.sleep(0.5)
