"""What fuzzing the API found, pinned as plain examples (each was INTERNAL before its fix).

* any request that does not parse -> gRPC's "Exception deserializing request!" (INTERNAL);
* WatchAnalysis ``from_sequence`` >= 2^63 -> SQLite OverflowError;
* a page token in the server's own format with a position >= 2^63 -> the same;
* CompleteAnalysis ``report_json`` nested past the JSON parser's limit -> RecursionError;
* a client that cancels mid-upload was logged as an internal error with a traceback.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from api_harness import Api, close_api, open_api, rpc_error

from sandbox.api.gen.honeyphone.v1 import fleet_pb2 as fpb
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb

GARBAGE = [b"\xff\xff\xff", b"\x0a\x02\xff\xfe", b"\x0b" * 200 + b"\x0c" * 200]


@pytest.mark.parametrize("data", GARBAGE)
@pytest.mark.parametrize(
    ("method", "shape"),
    [
        ("/honeyphone.v1.Sandbox/GetAnalysis", "unary_unary"),
        ("/honeyphone.v1.Sandbox/WatchAnalysis", "unary_stream"),
        ("/honeyphone.v1.Sandbox/UploadFirmware", "stream_unary"),
        ("/honeyphone.v1.Fleet/Heartbeat", "unary_unary"),
        ("/honeyphone.v1.Fleet/UploadArtifact", "stream_unary"),
        ("/grpc.health.v1.Health/Check", "unary_unary"),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "stream_stream"),
    ],
)
def test_undecodable_requests_are_invalid_argument_on_every_service(api: Api, method: str, shape: str, data: bytes) -> None:
    call = getattr(api.channel, shape)(method, request_serializer=None, response_deserializer=None)
    request = iter([data]) if shape.startswith("stream") else data
    with pytest.raises(grpc.RpcError) as info:
        result = call(request, timeout=10)
        if shape.endswith("stream"):
            list(result)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "is not a valid" in info.value.details() and "message" in info.value.details()


def test_watch_from_a_sequence_past_sqlite_integers(api: Api) -> None:
    aid = api.submit()
    for seq in (2**63, 2**64 - 1):
        err = rpc_error(api.sandbox.WatchAnalysis, pb.WatchAnalysisRequest(id=aid, from_sequence=seq))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "from_sequence" in err.details()
    # The largest allowed position is accepted: the stream waits for events that far on.
    with pytest.raises(grpc.RpcError) as info:
        list(api.sandbox.WatchAnalysis(pb.WatchAnalysisRequest(id=aid, from_sequence=2**63 - 1), timeout=0.5))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # the client's own deadline


@pytest.mark.parametrize("position", [str(2**63), str(2**70), "٣", "1" * 5000])
def test_page_tokens_with_positions_the_server_never_issues(api: Api, position: str) -> None:
    token = base64.urlsafe_b64encode(f"p1.{position}".encode()).decode().rstrip("=")
    err = rpc_error(api.sandbox.ListAnalyses, pb.ListAnalysesRequest(page_token=token))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in err.details()


@pytest.mark.parametrize("doc", ["[" * 100_000, '{"a":' * 5000, "[" * 999 + "]" * 999])
def test_report_json_nested_too_deeply(api: Api, doc: str) -> None:
    api.submit()
    lease = api.lease_one(api.register())
    req = fpb.CompleteAnalysisRequest(lease_id=lease.lease_id, verdict=pb.VERDICT_CLEAN, report_json=doc)
    err = rpc_error(api.fleet.CompleteAnalysis, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "report_json" in err.details()


def test_heartbeat_with_more_leases_than_a_worker_can_hold(api: Api) -> None:
    worker = api.register()
    leases = [fpb.LeaseProgress(lease_id="l-" + f"{i:016x}") for i in range(257)]
    err = rpc_error(api.fleet.Heartbeat, fpb.HeartbeatRequest(worker_id=worker, leases=leases))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "257 leases" in err.details()


def test_a_client_cancelling_mid_upload_is_not_an_internal_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Waits on the events themselves (the server holds the upload's temp
    # file; the handler has returned, after any error was logged), not on sleeps.
    from sandbox.api.sandbox_servicer import SandboxServicer

    handled = threading.Event()
    original = SandboxServicer.UploadFirmware

    def tracked(self: SandboxServicer, requests: Iterator[pb.FirmwareChunk], context: grpc.ServicerContext) -> object:
        try:
            return original(self, requests, context)
        finally:
            handled.set()

    monkeypatch.setattr(SandboxServicer, "UploadFirmware", tracked)
    api = open_api(tmp_path)
    release, sent = threading.Event(), threading.Event()
    tmp_blobs = tmp_path / "data" / "blobs" / "tmp"

    def chunks() -> Iterator[pb.FirmwareChunk]:
        yield pb.FirmwareChunk(filename="fw.tgz", data=b"x" * 1000)
        sent.set()
        release.wait(10)

    try:
        with caplog.at_level(logging.ERROR, logger="sandbox"):
            call = api.sandbox.UploadFirmware.future(chunks())
            assert sent.wait(10)
            _wait_for(lambda: tmp_blobs.is_dir() and any(tmp_blobs.iterdir()))  # the server is mid-upload
            call.cancel()
            release.set()
            assert handled.wait(30)  # the handler returned: anything it logged is logged
    finally:
        close_api(api)
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]


def _wait_for(check: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll until ``check`` holds (``limit`` only bounds a hang; nothing is timed)."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)
