"""An in-process orchestrator + gRPC server on a free loopback port, and raw stubs.

Imported by the api tests (and their conftest) by its unique module name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from sandbox.api.gen.honeyphone.v1 import fleet_pb2 as fpb
from sandbox.api.gen.honeyphone.v1 import fleet_pb2_grpc
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2_grpc
from sandbox.api.server import RunningServer, Security, start_server
from sandbox.orchestrator.runtime import Orchestrator
from sandbox.orchestrator.sqlite_store import SqliteStore
from sandbox.settings import FleetSettings

FLEET = FleetSettings(lease_seconds=5, max_attempts=2, max_firmware_bytes=3_000_000, server_threads=32)


@dataclass
class Api:
    orch: Orchestrator
    server: RunningServer
    address: str
    channel: Any
    sandbox: Any
    fleet: Any

    def upload(self, data: bytes = b"firmware-bytes", filename: str = "fw.tgz") -> str:
        ref = self.sandbox.UploadFirmware(iter([pb.FirmwareChunk(filename=filename, data=data)]))
        return str(ref.sha256)

    def submit(self, **scenario: Any) -> str:
        sha = self.upload()
        a = self.sandbox.SubmitAnalysis(
            pb.SubmitAnalysisRequest(firmware_sha256=sha, scenario=pb.Scenario(**scenario), labels={"t": "x"})
        )
        return str(a.id)

    def register(self, slots: int = 2) -> str:
        return str(self.fleet.RegisterWorker(fpb.RegisterWorkerRequest(name="w1", slots=slots, profiles=["twin"])).worker_id)

    def lease_one(self, worker_id: str) -> Any:
        resp = self.fleet.LeaseWork(fpb.LeaseWorkRequest(worker_id=worker_id, max=1))
        assert len(resp.leases) == 1
        return resp.leases[0]

    def finish(self, lease_id: str, verdict: int = pb.VERDICT_LEAK) -> Any:
        return self.fleet.CompleteAnalysis(
            fpb.CompleteAnalysisRequest(lease_id=lease_id, verdict=verdict, report_json=json.dumps({"v": verdict}))
        )


def open_api(tmp_path: Path, security: Security = Security(), fleet: FleetSettings = FLEET) -> Api:
    orch = Orchestrator(SqliteStore(tmp_path / "data"), fleet)
    orch.start()
    server = start_server(orch, fleet, "127.0.0.1:0", security)
    address = f"127.0.0.1:{server.port}"
    channel = grpc.insecure_channel(address)
    return Api(orch, server, address, channel, sandbox_pb2_grpc.SandboxStub(channel), fleet_pb2_grpc.FleetStub(channel))


def close_api(api: Api) -> None:
    api.channel.close()
    api.server.stop(grace=0)
    api.orch.close()


def rpc_error(fn: Any, *args: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = fn(*args)
        if hasattr(result, "__next__"):
            list(result)
    return info.value
