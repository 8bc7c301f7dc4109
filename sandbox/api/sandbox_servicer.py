"""The public ``honeyphone.v1.Sandbox`` service: translate, call the orchestrator, map errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from sandbox.orchestrator import validation as v
from sandbox.orchestrator.errors import InvalidArgument
from sandbox.orchestrator.service import AnalysisService
from sandbox.orchestrator.store import read_chunks

from . import convert
from .gen.honeyphone.v1 import sandbox_pb2 as pb
from .gen.honeyphone.v1 import sandbox_pb2_grpc
from .status import streaming, unary
from .streams import SEND_CHUNK, bounded


class SandboxServicer(sandbox_pb2_grpc.SandboxServicer):
    def __init__(self, service: AnalysisService) -> None:
        self._service = service

    @unary
    def UploadFirmware(self, request_iterator: Iterator[pb.FirmwareChunk], context: grpc.ServicerContext) -> pb.FirmwareRef:
        first = next(request_iterator, None)
        if first is None:
            raise InvalidArgument("empty upload: send at least one chunk")

        def data() -> Iterator[bytes]:
            yield first.data
            for chunk in request_iterator:
                if chunk.filename:
                    raise InvalidArgument("filename: only the first chunk may carry it")
                yield chunk.data

        rec = self._service.upload_firmware(first.filename, bounded(data()))
        return pb.FirmwareRef(sha256=rec.sha256, size=rec.size)

    @unary
    def SubmitAnalysis(self, request: pb.SubmitAnalysisRequest, context: grpc.ServicerContext) -> pb.Analysis:
        rec = self._service.submit(
            request.firmware_sha256, convert.scenario_from_proto(request.scenario), request.priority,
            dict(request.labels), request.request_id,
        )
        return convert.analysis_to_proto(rec)

    @unary
    def GetAnalysis(self, request: pb.GetAnalysisRequest, context: grpc.ServicerContext) -> pb.Analysis:
        rec, artifacts = self._service.get(request.id)
        return convert.analysis_to_proto(rec, artifacts)

    @unary
    def ListAnalyses(self, request: pb.ListAnalysesRequest, context: grpc.ServicerContext) -> pb.ListAnalysesResponse:
        page, artifacts = self._service.list(
            convert.state_from_proto(request.state), dict(request.labels), request.page_size, request.page_token
        )
        return pb.ListAnalysesResponse(
            analyses=[convert.analysis_to_proto(a, artifacts.get(a.id, ())) for a in page.analyses],
            next_page_token=page.next_page_token,
        )

    @streaming
    def WatchAnalysis(self, request: pb.WatchAnalysisRequest, context: grpc.ServicerContext) -> Iterator[pb.Event]:
        for ev in self._service.watch(request.id, request.from_sequence, context.is_active):
            yield convert.event_to_proto(ev)

    @unary
    def CancelAnalysis(self, request: pb.CancelAnalysisRequest, context: grpc.ServicerContext) -> pb.Analysis:
        return convert.analysis_to_proto(self._service.cancel(request.id))

    @unary
    def GetReport(self, request: pb.GetReportRequest, context: grpc.ServicerContext) -> pb.Report:
        rec, doc = self._service.report(request.id)
        return pb.Report(id=rec.id, verdict=convert.verdict_to_proto(rec.verdict), json=doc)

    @streaming
    def DownloadArtifact(self, request: pb.DownloadArtifactRequest, context: grpc.ServicerContext) -> Iterator[pb.Chunk]:
        v.analysis_id(request.id)
        for data in read_chunks(self._service.open_artifact(request.id, request.name), SEND_CHUNK):
            yield pb.Chunk(data=data)


def add_to_server(service: AnalysisService, server: Any) -> None:
    sandbox_pb2_grpc.add_SandboxServicer_to_server(SandboxServicer(service), server)
