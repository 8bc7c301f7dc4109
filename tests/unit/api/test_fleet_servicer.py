"""The worker-facing Fleet service: registration, leases, stale leases, uploads."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from api_harness import Api, rpc_error

from sandbox.api.gen.honeyphone.v1 import fleet_pb2 as fpb
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb


@pytest.mark.parametrize(
    ("req", "text"),
    [
        (fpb.RegisterWorkerRequest(name="w", slots=0, profiles=["twin"]), "slots: 0 is out of range 1..256"),
        (fpb.RegisterWorkerRequest(name="w", slots=1), "profiles: name at least one"),
        (fpb.RegisterWorkerRequest(name="w", slots=1, profiles=["ios"]), "profiles[0]"),
        (fpb.RegisterWorkerRequest(name="w w", slots=1, profiles=["twin"]), "name"),
    ],
)
def test_register_validation(api: Api, req: Any, text: str) -> None:
    err = rpc_error(api.fleet.RegisterWorker, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and text in err.details()


def test_register_and_lease(api: Api) -> None:
    resp = api.fleet.RegisterWorker(fpb.RegisterWorkerRequest(name="box-1", slots=2, profiles=["twin"]))
    assert resp.worker_id.startswith("w-") and resp.lease_seconds == 5
    aid = api.submit(hours=3, seed=9)
    lease = api.lease_one(resp.worker_id)
    assert (lease.analysis_id, lease.attempt, lease.scenario.hours, lease.scenario.seed) == (aid, 1, 3, 9)
    assert lease.lease_id.startswith("l-") and lease.deadline.seconds > 0 and lease.labels == {"t": "x"}
    body = b"".join(
        c.data for c in api.fleet.DownloadFirmware(fpb.DownloadFirmwareRequest(worker_id=resp.worker_id, lease_id=lease.lease_id))
    )
    assert body == b"firmware-bytes"
    err = rpc_error(api.fleet.LeaseWork, fpb.LeaseWorkRequest(worker_id="w-" + "0" * 16, max=1))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "register" in err.details()
    err = rpc_error(api.fleet.LeaseWork, fpb.LeaseWorkRequest(worker_id=resp.worker_id, max=0))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "max" in err.details()


def test_stale_lease_complete_is_ignored_and_upload_refused(api: Api) -> None:
    aid = api.submit()
    w = api.register()
    lease = api.lease_one(w)
    api.sandbox.CancelAnalysis(pb.CancelAnalysisRequest(id=aid))
    hb = api.fleet.Heartbeat(fpb.HeartbeatRequest(worker_id=w, leases=[fpb.LeaseProgress(lease_id=lease.lease_id)]))
    assert list(hb.cancelled_lease_ids) == [lease.lease_id]
    err = rpc_error(api.fleet.UploadArtifact, iter([fpb.ArtifactChunk(lease_id=lease.lease_id, name="pcap", data=b"x")]))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "cancelled" in err.details()
    resp = api.finish(lease.lease_id)
    assert not resp.accepted and resp.ignored_reason and resp.state == pb.ANALYSIS_STATE_CANCELLED
    err = rpc_error(api.fleet.DownloadFirmware, fpb.DownloadFirmwareRequest(worker_id=w, lease_id=lease.lease_id))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_complete_twice_is_duplicate(api: Api) -> None:
    api.submit()
    w = api.register()
    lease = api.lease_one(w)
    first, second = api.finish(lease.lease_id), api.finish(lease.lease_id, pb.VERDICT_CLEAN)
    assert first.accepted and not first.duplicate and first.state == pb.ANALYSIS_STATE_SUCCEEDED
    assert second.accepted and second.duplicate


@pytest.mark.parametrize(
    ("req", "code", "text"),
    [
        (fpb.CompleteAnalysisRequest(lease_id="bad"), grpc.StatusCode.INVALID_ARGUMENT, "lease_id"),
        (fpb.CompleteAnalysisRequest(lease_id="l-" + "0" * 16, error="x"), grpc.StatusCode.NOT_FOUND, "does not exist"),
        (fpb.CompleteAnalysisRequest(lease_id="l-" + "0" * 16, verdict=pb.VERDICT_CLEAN, report_json="{"), grpc.StatusCode.INVALID_ARGUMENT, "not valid JSON"),
        (fpb.CompleteAnalysisRequest(lease_id="l-" + "0" * 16, verdict=9, report_json="{}"), grpc.StatusCode.INVALID_ARGUMENT, "unknown verdict"),  # type: ignore[arg-type]
    ],
)
def test_complete_validation(api: Api, req: Any, code: grpc.StatusCode, text: str) -> None:
    err = rpc_error(api.fleet.CompleteAnalysis, req)
    assert err.code() == code and text in err.details()


def test_heartbeat_validation(api: Api) -> None:
    w = api.register()
    bad_stage = fpb.LeaseProgress(lease_id="l-" + "0" * 16, events=[fpb.WorkerEvent(stage=pb.STAGE_FINISHED)])
    err = rpc_error(api.fleet.Heartbeat, fpb.HeartbeatRequest(worker_id=w, leases=[bad_stage]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "leases[0].events[0].stage" in err.details()
    too_many = fpb.LeaseProgress(lease_id="l-" + "0" * 16, events=[fpb.WorkerEvent(stage=pb.STAGE_BOOTING)] * 1001)
    err = rpc_error(api.fleet.Heartbeat, fpb.HeartbeatRequest(worker_id=w, leases=[too_many]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 1000" in err.details()
    unknown = api.fleet.Heartbeat(fpb.HeartbeatRequest(worker_id=w, leases=[fpb.LeaseProgress(lease_id="l-" + "0" * 16)]))
    assert list(unknown.expired_lease_ids) == ["l-" + "0" * 16]


def test_report_too_big_is_resource_exhausted(api: Api) -> None:
    api.submit()
    w = api.register()
    lease = api.lease_one(w)
    big = json.dumps({"x": "y" * (api.orch.settings.max_report_bytes + 1)})
    err = rpc_error(
        api.fleet.CompleteAnalysis,
        fpb.CompleteAnalysisRequest(lease_id=lease.lease_id, verdict=pb.VERDICT_CLEAN, report_json=big),
    )
    assert err.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED,)
