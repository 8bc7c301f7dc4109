"""The worker-facing ``honeyphone.v1.Fleet`` service: translate, call the scheduler, map errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from sandbox.orchestrator import validation as v
from sandbox.orchestrator.errors import InvalidArgument
from sandbox.orchestrator.model import Completion, WorkerProgress
from sandbox.orchestrator.scheduler import Scheduler
from sandbox.orchestrator.store import read_chunks

from . import convert
from .gen.honeyphone.v1 import fleet_pb2 as fpb
from .gen.honeyphone.v1 import fleet_pb2_grpc
from .gen.honeyphone.v1 import sandbox_pb2 as pb
from .status import streaming, unary
from .streams import SEND_CHUNK, bounded


class FleetServicer(fleet_pb2_grpc.FleetServicer):
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    @unary
    def RegisterWorker(self, request: fpb.RegisterWorkerRequest, context: grpc.ServicerContext) -> fpb.RegisterWorkerResponse:
        rec = self._scheduler.register_worker(request.name, request.slots, list(request.profiles))
        return fpb.RegisterWorkerResponse(worker_id=rec.id, lease_seconds=self._scheduler.lease_seconds)

    @unary
    def LeaseWork(self, request: fpb.LeaseWorkRequest, context: grpc.ServicerContext) -> fpb.LeaseWorkResponse:
        grants = self._scheduler.lease(request.worker_id, request.max)
        return fpb.LeaseWorkResponse(leases=[convert.lease_to_proto(g) for g in grants])

    @streaming
    def DownloadFirmware(self, request: fpb.DownloadFirmwareRequest, context: grpc.ServicerContext) -> Iterator[pb.Chunk]:
        stream = self._scheduler.open_firmware(request.worker_id, request.lease_id)
        for data in read_chunks(stream, SEND_CHUNK):
            yield pb.Chunk(data=data)

    @unary
    def Heartbeat(self, request: fpb.HeartbeatRequest, context: grpc.ServicerContext) -> fpb.HeartbeatResponse:
        v.worker_id(request.worker_id)
        v.heartbeat_leases(len(request.leases))  # before converting them all
        progress = [
            WorkerProgress(
                lp.lease_id,
                tuple(convert.worker_event_from_proto(e, f"leases[{i}].events[{j}]") for j, e in enumerate(lp.events)),
            )
            for i, lp in enumerate(request.leases)
        ]
        result = self._scheduler.heartbeat(request.worker_id, progress)
        return fpb.HeartbeatResponse(
            cancelled_lease_ids=result.cancelled, expired_lease_ids=result.expired,
            lease_seconds=self._scheduler.lease_seconds,
        )

    @unary
    def UploadArtifact(self, request_iterator: Iterator[fpb.ArtifactChunk], context: grpc.ServicerContext) -> pb.ArtifactInfo:
        first = next(request_iterator, None)
        if first is None:
            raise InvalidArgument("empty upload: send at least one chunk")

        def data() -> Iterator[bytes]:
            yield first.data
            for chunk in request_iterator:
                if chunk.lease_id or chunk.name:
                    raise InvalidArgument("lease_id, name: only the first chunk may carry them")
                yield chunk.data

        rec = self._scheduler.upload_artifact(first.lease_id, first.name, bounded(data()))
        return convert.artifact_to_proto(rec)

    @unary
    def CompleteAnalysis(
        self, request: fpb.CompleteAnalysisRequest, context: grpc.ServicerContext
    ) -> fpb.CompleteAnalysisResponse:
        result = self._scheduler.complete(
            Completion(
                request.lease_id, convert.verdict_from_proto(request.verdict), request.report_json,
                request.error or None, request.retryable,
            )
        )
        return fpb.CompleteAnalysisResponse(
            accepted=result.accepted, duplicate=result.duplicate, ignored_reason=result.ignored_reason,
            state=convert.state_to_proto(result.state),
        )


def add_to_server(scheduler: Scheduler, server: Any) -> None:
    fleet_pb2_grpc.add_FleetServicer_to_server(FleetServicer(scheduler), server)
