"""A typed client of the Fleet service for the worker agent.

Calls that must not be lost (heartbeat, complete) are retried here while the
orchestrator is unavailable, e.g. while it restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import grpc

from sandbox.model import Stage, Verdict
from sandbox.orchestrator.model import LeaseGrant

from . import convert
from .gen.honeyphone.v1 import fleet_pb2 as fpb
from .gen.honeyphone.v1 import fleet_pb2_grpc
from .guard import BUSY
from .streams import SEND_CHUNK

T = TypeVar("T")
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

WorkerEventTuple = tuple[Stage, str, float | None]


@dataclass(frozen=True)
class Registration:
    worker_id: str
    lease_seconds: int


@dataclass(frozen=True)
class HeartbeatReply:
    cancelled: tuple[str, ...]
    expired: tuple[str, ...]
    lease_seconds: int


@dataclass(frozen=True)
class CompleteReply:
    accepted: bool
    duplicate: bool
    ignored_reason: str


def is_retryable(exc: grpc.RpcError) -> bool:
    """Unavailable, timed out (an upload the server cut off as idle too), or the server's uploads are all busy."""
    code = exc.code()
    return code in RETRYABLE or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and (exc.details() or "").startswith(BUSY))


class FleetClient:
    def __init__(self, channel: Any, timeout: float = 30.0) -> None:
        self._stub = fleet_pb2_grpc.FleetStub(channel)
        self._timeout = timeout

    def register(self, name: str, slots: int, profiles: Sequence[str]) -> Registration:
        resp = self._stub.RegisterWorker(
            fpb.RegisterWorkerRequest(name=name, slots=slots, profiles=list(profiles)),
            timeout=self._timeout, wait_for_ready=True,
        )
        return Registration(resp.worker_id, resp.lease_seconds)

    def lease(self, worker_id: str, max_leases: int) -> list[LeaseGrant]:
        resp = self._stub.LeaseWork(fpb.LeaseWorkRequest(worker_id=worker_id, max=max_leases), timeout=self._timeout)
        return [convert.lease_from_proto(m) for m in resp.leases]

    def download_firmware(self, worker_id: str, lease_id: str, out: BinaryIO) -> None:
        for chunk in self._stub.DownloadFirmware(
            fpb.DownloadFirmwareRequest(worker_id=worker_id, lease_id=lease_id), timeout=3600
        ):
            out.write(chunk.data)

    def heartbeat(self, worker_id: str, leases: dict[str, list[WorkerEventTuple]]) -> HeartbeatReply:
        req = fpb.HeartbeatRequest(
            worker_id=worker_id,
            leases=[
                fpb.LeaseProgress(lease_id=lid, events=[convert.worker_event_to_proto(*e) for e in events])
                for lid, events in leases.items()
            ],
        )
        resp = self._stub.Heartbeat(req, timeout=self._timeout)
        return HeartbeatReply(tuple(resp.cancelled_lease_ids), tuple(resp.expired_lease_ids), resp.lease_seconds)

    def upload_artifact(self, lease_id: str, name: str, stream: BinaryIO) -> None:
        def chunks() -> Iterator[fpb.ArtifactChunk]:
            yield fpb.ArtifactChunk(lease_id=lease_id, name=name, data=stream.read(SEND_CHUNK))
            while data := stream.read(SEND_CHUNK):
                yield fpb.ArtifactChunk(data=data)

        self._stub.UploadArtifact(chunks(), timeout=3600)

    def complete(
        self, lease_id: str, verdict: Verdict | None, report_json: str, error: str | None, retryable: bool
    ) -> CompleteReply:
        resp = self._stub.CompleteAnalysis(
            fpb.CompleteAnalysisRequest(
                lease_id=lease_id, verdict=convert.verdict_to_proto(verdict), report_json=report_json,
                error=error or "", retryable=retryable,
            ),
            timeout=self._timeout,
        )
        return CompleteReply(resp.accepted, resp.duplicate, resp.ignored_reason)


def retry(fn: Callable[[], T], *, give_up_after: float = 300.0, stop: Callable[[], bool] | None = None) -> T:
    """Call ``fn`` until it does not fail with a retryable status (or time runs out)."""
    start = time.monotonic()
    delay = 0.2
    while True:
        try:
            return fn()
        except grpc.RpcError as exc:
            if not is_retryable(exc) or time.monotonic() - start > give_up_after:
                raise
        if stop is not None and stop():
            raise TimeoutError("stopped while retrying")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
