"""Oversized, malformed, cancelled, slow and idle uploads over a real loopback port.

Over the limit -> RESOURCE_EXHAUSTED and nothing of the upload is kept; a
client that trickles chunks does not hold up anyone else; a stream that goes
quiet is cut off by the server's idle timeout (DEADLINE_EXCEEDED); and more
request streams than the server admits at once are refused, not queued.
"""

from __future__ import annotations

import hashlib

import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from api_harness import Api, close_api, open_api, rpc_error

from sandbox.api.gen.honeyphone.v1 import fleet_pb2 as fpb
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb
from sandbox.settings import FleetSettings

LIMITS = FleetSettings(
    lease_seconds=30, max_firmware_bytes=3_000_000, max_artifact_bytes=500_000, server_threads=16,
    upload_idle_timeout_s=1.0, max_concurrent_uploads=4,
)
MIB = 1024 * 1024


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = open_api(tmp_path, fleet=LIMITS)
    yield a
    close_api(a)


def blob_files(tmp_path: Path) -> tuple[list[str], list[str]]:
    root = tmp_path / "data" / "blobs"
    return (
        sorted(p.name for p in (root / "tmp").iterdir()),
        sorted(p.name for p in (root / "sha256").rglob("*") if p.is_file()) if (root / "sha256").exists() else [],
    )


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def reader_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "rpc-stream-reader")


def firmware(chunks: list[bytes], filename: str = "fw.tgz") -> Iterator[pb.FirmwareChunk]:
    for i, data in enumerate(chunks):
        yield pb.FirmwareChunk(filename=filename if i == 0 else "", data=data)


def stalled(first: list[Any], release: threading.Event, sent: threading.Event | None = None) -> Iterator[Any]:
    """Send ``first``, then go quiet until ``release`` (the client side of an idle stream)."""
    yield from first
    if sent is not None:
        sent.set()
    release.wait(30)


# -- oversized ---------------------------------------------------------------------------


def test_oversized_firmware_is_refused_and_nothing_is_kept(api: Api, tmp_path: Path) -> None:
    before = blob_files(tmp_path)
    err = rpc_error(api.sandbox.UploadFirmware, firmware([b"\x01" * MIB] * 4))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than the limit of 3000000 bytes" in err.details()
    eventually(lambda: blob_files(tmp_path) == before)
    # One byte under the limit is fine, and is kept exactly once.
    ok = api.sandbox.UploadFirmware(firmware([b"\x01" * MIB, b"\x01" * MIB, b"\x01" * (3_000_000 - 2 * MIB)]))
    assert ok.size == 3_000_000
    assert blob_files(tmp_path) == ([], sorted([*before[1], ok.sha256]))


def test_oversized_artifact_is_refused_and_nothing_is_kept(api: Api, tmp_path: Path) -> None:
    api.submit()
    lease = api.lease_one(api.register())
    before = blob_files(tmp_path)
    chunks = [fpb.ArtifactChunk(lease_id=lease.lease_id, name="pcap", data=b"\x02" * 400_000), fpb.ArtifactChunk(data=b"\x02" * 400_000)]
    err = rpc_error(api.fleet.UploadArtifact, iter(chunks))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 500000 bytes" in err.details()
    eventually(lambda: blob_files(tmp_path) == before)
    done = api.finish(lease.lease_id)
    assert done.accepted
    assert not api.sandbox.GetAnalysis(pb.GetAnalysisRequest(id=lease.analysis_id)).artifacts


def test_a_message_over_the_grpc_limit_is_resource_exhausted(api: Api) -> None:
    too_big = "x" * (LIMITS.max_report_bytes + 2 * MIB)
    err = rpc_error(api.fleet.CompleteAnalysis, fpb.CompleteAnalysisRequest(lease_id="l-" + "0" * 16, report_json=too_big))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and err.details()


@pytest.mark.parametrize("chunk", [b"\x0a\x02\xff\xfe", b"\xff\xff\xff\xff"])
def test_a_malformed_chunk_mid_stream_is_invalid_argument(api: Api, tmp_path: Path, chunk: bytes) -> None:
    upload = api.channel.stream_unary("/honeyphone.v1.Sandbox/UploadFirmware", request_serializer=None)
    first = pb.FirmwareChunk(filename="fw.tgz", data=b"\x03" * 1000).SerializeToString()
    more = pb.FirmwareChunk(data=b"\x03" * 1000).SerializeToString()
    with pytest.raises(grpc.RpcError) as info:
        upload(iter([first, more, chunk, more]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "message 2 of the stream is not a valid honeyphone.v1.FirmwareChunk message" in info.value.details()
    eventually(lambda: blob_files(tmp_path)[0] == [])


def test_a_client_that_cancels_mid_upload_leaves_nothing(api: Api, tmp_path: Path) -> None:
    release, sent = threading.Event(), threading.Event()
    call = api.sandbox.UploadFirmware.future(stalled(list(firmware([b"\x04" * MIB])), release, sent))
    assert sent.wait(10)
    eventually(lambda: len(blob_files(tmp_path)[0]) == 1)  # the partial upload exists while it runs
    call.cancel()
    release.set()
    # No partial file survives.  Every byte had been sent before the cancel, and
    # gRPC can end a cancelled call's request stream like a finished one before
    # the call reports inactive; then the whole, content-addressed blob may be
    # kept -- never a truncated one.
    whole = hashlib.sha256(b"\x04" * MIB).hexdigest()
    try:
        eventually(lambda: blob_files(tmp_path)[0] == [] and blob_files(tmp_path)[1] in ([], [whole]))
    except AssertionError:
        raise AssertionError(f"left: {blob_files(tmp_path)}") from None


# -- slow and idle -----------------------------------------------------------------------


def test_a_trickling_upload_does_not_hold_up_other_clients(api: Api) -> None:
    """Other clients are served *while* a trickling upload is in progress:
    the trickle keeps going (a chunk every 0.2 s, under the 1 s idle
    timeout) until every other call has returned, so those calls cannot
    have waited for it.  No clock is asserted on (latency figures belong
    in benchmarks/, as ratios)."""
    aid = api.submit()
    others_done = threading.Event()
    done = threading.Event()
    result: list[Any] = []
    chunks = [0]

    def trickle() -> Iterator[pb.FirmwareChunk]:
        while not others_done.is_set() and chunks[0] < 600:  # 600: a safety bound (2 min), not a timing
            yield pb.FirmwareChunk(filename="slow.tgz" if chunks[0] == 0 else "", data=b"\x09" * 100)
            chunks[0] += 1
            time.sleep(0.2)

    def slow() -> None:
        result.append(api.sandbox.UploadFirmware(trickle()))
        done.set()

    eventually(lambda: reader_threads() == 0)  # earlier calls' readers are gone: the count below is ours
    threading.Thread(target=slow, daemon=True).start()
    eventually(lambda: chunks[0] >= 1 and reader_threads() == 1)  # the server is reading the trickle
    for i in range(10):
        api.sandbox.GetAnalysis(pb.GetAnalysisRequest(id=aid))
        api.sandbox.ListAnalyses(pb.ListAnalysesRequest(page_size=5))
        api.upload(b"a quick upload %d" % i)
        assert not done.is_set()  # the trickle is still going: nobody waited for it
    others_done.set()
    assert done.wait(60)
    assert result and result[0].size == 100 * chunks[0]


@pytest.mark.parametrize("first", [[], list(firmware([b"\x05" * 1000]))], ids=["before-first-chunk", "after-a-chunk"])
def test_an_idle_upload_is_cut_off_by_the_server(api: Api, tmp_path: Path, first: list[Any]) -> None:
    threads_before = reader_threads()
    release = threading.Event()
    started = time.monotonic()
    try:
        err = rpc_error(api.sandbox.UploadFirmware, stalled(first, release))
    finally:
        release.set()
    took = time.monotonic() - started
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "request stream idle: no message for 1 s" in err.details()
    assert took > 0.9, took  # it waited for the idle timeout (a lower bound: no race)
    eventually(lambda: blob_files(tmp_path)[0] == [])
    eventually(lambda: reader_threads() == threads_before)  # the reader ends with the call


def test_too_many_uploads_at_once_are_refused_and_others_still_served(api: Api) -> None:
    release = threading.Event()
    sent = [threading.Event() for _ in range(LIMITS.max_concurrent_uploads)]
    eventually(lambda: reader_threads() == 0)  # earlier calls' readers are gone: the count below is ours
    calls = [
        api.sandbox.UploadFirmware.future(stalled(list(firmware([b"\x06" * 10])), release, s), timeout=30) for s in sent
    ]
    try:
        for s in sent:
            assert s.wait(10)
        # admitted: each admitted upload has its reader thread
        eventually(lambda: reader_threads() == LIMITS.max_concurrent_uploads)
        err = rpc_error(api.sandbox.UploadFirmware, firmware([b"one too many"]))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "too many uploads in progress" in err.details()
        assert api.sandbox.ListAnalyses(pb.ListAnalysesRequest()).analyses == []  # unary calls are still served
        # The idle timeout frees the slots; then uploads are admitted again.
        for c in calls:
            with pytest.raises(grpc.RpcError) as info:
                c.result()
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        release.set()
    assert api.sandbox.UploadFirmware(firmware([b"admitted again"])).size == 14


def test_a_worker_retries_an_upload_the_server_was_too_busy_for(api: Api) -> None:
    from sandbox.api.fleet_client import FleetClient, is_retryable, retry

    api.submit()
    lease = api.lease_one(api.register())
    fleet = FleetClient(api.channel)
    release = threading.Event()
    sent = [threading.Event() for _ in range(LIMITS.max_concurrent_uploads)]
    eventually(lambda: reader_threads() == 0)  # earlier calls' readers are gone: the count below is ours
    calls = [api.sandbox.UploadFirmware.future(stalled(list(firmware([b"\x07"])), release, s)) for s in sent]
    try:
        for s in sent:
            assert s.wait(10)
        eventually(lambda: reader_threads() == LIMITS.max_concurrent_uploads)  # all admitted
        with pytest.raises(grpc.RpcError) as busy:
            fleet.upload_artifact(lease.lease_id, "flows.json", io.BytesIO(b"{}"))
        assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and is_retryable(busy.value)
        # retried until the stalled uploads are cut off (1 s) and a slot is free
        retry(lambda: fleet.upload_artifact(lease.lease_id, "flows.json", io.BytesIO(b"{}")), give_up_after=20)
    finally:
        release.set()
        for c in calls:
            with pytest.raises(grpc.RpcError):
                c.result()
    too_big = io.BytesIO(b"\x08" * (LIMITS.max_artifact_bytes + 1))
    with pytest.raises(grpc.RpcError) as info:
        fleet.upload_artifact(lease.lease_id, "big.bin", too_big)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not is_retryable(info.value)
    assert api.finish(lease.lease_id).accepted
    names = [a.name for a in api.sandbox.GetAnalysis(pb.GetAnalysisRequest(id=lease.analysis_id)).artifacts]
    assert names == ["flows.json"]
