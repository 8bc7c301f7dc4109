"""The public Sandbox service over a real gRPC server (in process, loopback)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import grpc
import pytest
from api_harness import Api, rpc_error
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox.api.client import SandboxClient
from sandbox.api.gen.honeyphone.v1 import fleet_pb2 as fpb
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb
from sandbox.model import Scenario


def chunks(data: bytes, size: int, filename: str = "fw.tgz") -> Any:
    for i in range(0, len(data), size):
        yield pb.FirmwareChunk(filename=filename if i == 0 else "", data=data[i : i + size])


def test_upload_is_content_addressed_and_deduplicated(api: Api) -> None:
    data = bytes(range(256)) * 4000
    ref = api.sandbox.UploadFirmware(chunks(data, 100_000))
    assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert api.sandbox.UploadFirmware(chunks(data, 333_333, "again.zip")) == ref


@pytest.mark.parametrize(
    ("requests", "code", "text"),
    [
        ([], grpc.StatusCode.INVALID_ARGUMENT, "empty upload"),
        ([pb.FirmwareChunk(data=b"x" * (1024 * 1024 + 1))], grpc.StatusCode.INVALID_ARGUMENT, "per chunk"),
        ([pb.FirmwareChunk(data=b"x" * 1_000_000)] * 4, grpc.StatusCode.RESOURCE_EXHAUSTED, "limit"),
        ([pb.FirmwareChunk(data=b"x"), pb.FirmwareChunk(filename="b", data=b"y")], grpc.StatusCode.INVALID_ARGUMENT, "first chunk"),
        ([pb.FirmwareChunk(filename="../../etc/passwd", data=b"x")], grpc.StatusCode.INVALID_ARGUMENT, "filename"),
    ],
)
def test_upload_rejections(api: Api, requests: list[Any], code: grpc.StatusCode, text: str) -> None:
    err = rpc_error(api.sandbox.UploadFirmware, iter(requests))
    assert err.code() == code and text in err.details()


@pytest.mark.parametrize(
    ("scenario", "priority", "labels", "text"),
    [
        ({"hours": 0.5}, 0, {}, "scenario.hours: 0.5 is out of range 1..720"),
        ({"hours": 721}, 0, {}, "scenario.hours: 721.0 is out of range"),
        ({"hours": float("nan")}, 0, {}, "scenario.hours"),
        ({"contacts": -1}, 0, {}, "scenario.contacts: -1 is out of range 0..10000"),
        ({"sms": 10001}, 0, {}, "scenario.sms: 10001"),
        ({"seed": -5}, 0, {}, "scenario.seed"),
        ({"locale": "english"}, 0, {}, "scenario.locale"),
        ({"profile": "iphone"}, 0, {}, "scenario.profile: 'iphone' is not one of twin, android"),
        ({}, 101, {}, "priority: 101 is out of range -100..100"),
        ({}, 0, {"Bad Key": "v"}, "labels key"),
        ({}, 0, {"k": "v" * 257}, "labels[k]: value is 257 chars"),
        ({}, 0, {f"k{i}": "v" for i in range(33)}, "at most 32"),
    ],
)
def test_submit_validation(api: Api, scenario: dict[str, Any], priority: int, labels: dict[str, str], text: str) -> None:
    sha = api.upload()
    req = pb.SubmitAnalysisRequest(firmware_sha256=sha, scenario=pb.Scenario(**scenario), priority=priority, labels=labels)
    err = rpc_error(api.sandbox.SubmitAnalysis, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert text in err.details()


def test_submit_defaults_and_unknown_firmware(api: Api) -> None:
    sha = api.upload()
    a = api.sandbox.SubmitAnalysis(pb.SubmitAnalysisRequest(firmware_sha256=sha, scenario=pb.Scenario(hours=12)))
    assert a.state == pb.ANALYSIS_STATE_QUEUED and a.stage == pb.STAGE_QUEUED
    assert (a.scenario.hours, a.scenario.contacts, a.scenario.locale, a.scenario.profile) == (12, 25, "en_US", "twin")
    assert len(a.id) == 16 and a.max_attempts == 2
    err = rpc_error(api.sandbox.SubmitAnalysis, pb.SubmitAnalysisRequest(firmware_sha256="0" * 64))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "never uploaded" in err.details()
    err = rpc_error(api.sandbox.SubmitAnalysis, pb.SubmitAnalysisRequest(firmware_sha256="xyz"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "firmware_sha256" in err.details()


def test_get_and_ids(api: Api) -> None:
    aid = api.submit()
    assert api.sandbox.GetAnalysis(pb.GetAnalysisRequest(id=aid)).labels == {"t": "x"}
    assert rpc_error(api.sandbox.GetAnalysis, pb.GetAnalysisRequest(id="f" * 16)).code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(api.sandbox.GetAnalysis, pb.GetAnalysisRequest(id="../x"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "16 lowercase hex" in err.details()


def test_list_pages_and_filters(api: Api) -> None:
    ids = [api.submit() for _ in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        resp = api.sandbox.ListAnalyses(pb.ListAnalysesRequest(page_size=2, page_token=token))
        seen += [a.id for a in resp.analyses]
        token = resp.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    w = api.register()
    api.finish(api.lease_one(w).lease_id)
    done = api.sandbox.ListAnalyses(pb.ListAnalysesRequest(state=pb.ANALYSIS_STATE_SUCCEEDED, labels={"t": "x"}))
    assert [a.id for a in done.analyses] == [ids[0]] and done.analyses[0].artifacts == []
    assert not api.sandbox.ListAnalyses(pb.ListAnalysesRequest(labels={"t": "y"})).analyses
    for req, text in [
        (pb.ListAnalysesRequest(page_size=501), "page_size: 501"),
        (pb.ListAnalysesRequest(page_size=-1), "page_size"),
        (pb.ListAnalysesRequest(page_token="garbage!"), "page_token"),
        (pb.ListAnalysesRequest(state=42), "state: unknown state 42"),  # type: ignore[arg-type]
    ]:
        err = rpc_error(api.sandbox.ListAnalyses, req)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and text in err.details()


def test_watch_live_then_resume(api: Api) -> None:
    aid = api.submit(hours=8)
    got: list[Any] = []
    first = threading.Event()

    def watch() -> None:
        for ev in api.sandbox.WatchAnalysis(pb.WatchAnalysisRequest(id=aid)):
            got.append(ev)
            first.set()

    t = threading.Thread(target=watch)
    t.start()
    assert first.wait(5)
    w = api.register()
    lease = api.lease_one(w)
    events = [
        fpb.WorkerEvent(stage=pb.STAGE_BOOTING, message="boot"),
        fpb.WorkerEvent(stage=pb.STAGE_FAST_FORWARDING, message="ff", device_hours=4.0),
    ]
    api.fleet.Heartbeat(fpb.HeartbeatRequest(worker_id=w, leases=[fpb.LeaseProgress(lease_id=lease.lease_id, events=events)]))
    api.finish(lease.lease_id)
    t.join(5)
    assert not t.is_alive(), "the stream must end after the terminal event"
    assert [e.sequence for e in got] == [1, 2, 3, 4, 5]
    assert [e.stage for e in got] == [pb.STAGE_QUEUED, pb.STAGE_LEASED, pb.STAGE_BOOTING, pb.STAGE_FAST_FORWARDING, pb.STAGE_FINISHED]
    assert got[3].HasField("device_hours") and got[3].device_hours == 4.0 and not got[0].HasField("device_hours")
    resumed = list(api.sandbox.WatchAnalysis(pb.WatchAnalysisRequest(id=aid, from_sequence=4)))
    assert [e.sequence for e in resumed] == [4, 5]
    assert list(api.sandbox.WatchAnalysis(pb.WatchAnalysisRequest(id=aid, from_sequence=99))) == []
    a = api.sandbox.GetAnalysis(pb.GetAnalysisRequest(id=aid))
    assert (a.state, a.verdict, a.device_hours, a.stage) == (pb.ANALYSIS_STATE_SUCCEEDED, pb.VERDICT_LEAK, 4.0, pb.STAGE_FINISHED)


def test_cancel_report_and_artifacts(api: Api) -> None:
    aid = api.submit()
    err = rpc_error(api.sandbox.GetReport, pb.GetReportRequest(id=aid))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "queued" in err.details()
    assert api.sandbox.CancelAnalysis(pb.CancelAnalysisRequest(id=aid)).state == pb.ANALYSIS_STATE_CANCELLED
    assert [e.stage for e in api.sandbox.WatchAnalysis(pb.WatchAnalysisRequest(id=aid))][-1] == pb.STAGE_CANCELLED

    aid = api.submit()
    w = api.register()
    lease = api.lease_one(w)
    data = b"pcap" * 100_000
    api.fleet.UploadArtifact(
        iter([fpb.ArtifactChunk(lease_id=lease.lease_id, name="traffic.pcap", data=data[:200_000]), fpb.ArtifactChunk(data=data[200_000:])])
    )
    api.finish(lease.lease_id, pb.VERDICT_SUSPICIOUS)
    rep = api.sandbox.GetReport(pb.GetReportRequest(id=aid))
    assert rep.verdict == pb.VERDICT_SUSPICIOUS and rep.json
    a = api.sandbox.GetAnalysis(pb.GetAnalysisRequest(id=aid))
    assert [(x.name, x.size) for x in a.artifacts] == [("traffic.pcap", len(data))]
    body = b"".join(c.data for c in api.sandbox.DownloadArtifact(pb.DownloadArtifactRequest(id=aid, name="traffic.pcap")))
    assert body == data
    err = rpc_error(api.sandbox.DownloadArtifact, pb.DownloadArtifactRequest(id=aid, name="nope"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "traffic.pcap" in err.details()
    err = rpc_error(api.sandbox.CancelAnalysis, pb.CancelAnalysisRequest(id=aid))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_health_and_reflection(api: Api) -> None:
    health = health_pb2_grpc.HealthStub(api.channel)
    for service in ("", "honeyphone.v1.Sandbox", "honeyphone.v1.Fleet"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    resp = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in resp.list_services_response.service}
    assert {"honeyphone.v1.Sandbox", "honeyphone.v1.Fleet"} <= names


def test_submit_with_a_request_id_is_idempotent(api: Api) -> None:
    sha = api.upload()

    def submit(request_id: str, seed: int = 1) -> Any:
        return api.sandbox.SubmitAnalysis(
            pb.SubmitAnalysisRequest(firmware_sha256=sha, scenario=pb.Scenario(seed=seed), request_id=request_id)
        )

    first = submit("8f0c2d9e-retry")
    assert submit("8f0c2d9e-retry").id == first.id
    assert submit("").id != first.id != submit("").id  # no key: every call is a new analysis
    err = rpc_error(submit, "8f0c2d9e-retry", 2)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "already used" in err.details()
    err = rpc_error(submit, "no spaces allowed")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in err.details()
    assert len(api.sandbox.ListAnalyses(pb.ListAnalysesRequest()).analyses) == 3


def test_client_submit_sends_a_fresh_key_each_call(api: Api) -> None:
    client = SandboxClient(api.channel)
    sha = api.upload()
    a = client.submit(sha, Scenario(seed=1))
    assert client.submit(sha, Scenario(seed=1)).id != a.id
    assert client.submit(sha, Scenario(seed=1), request_id="k1").id == client.submit(sha, Scenario(seed=1), request_id="k1").id
