"""Fuzzing every request message of the API against a real server on a loopback port.

About a thousand requests per run (see ``api_fuzz`` for the strategies;
``benchmarks/fuzz_api.py --requests 10000`` runs ten thousand).  Each must be
answered OK or with a clear status code and a message -- never UNKNOWN or
INTERNAL, never a hang -- and afterwards the server is healthy, logged no
internal error, left no partial upload and no stream reader behind.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from api_fuzz import ALLOWED, METHODS, Case, Corpus, Sender, Tally, build_corpus, cases, open_fuzz_channel
from api_harness import Api, close_api, open_api
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.api.channel import ClientSecurity, open_channel
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb
from sandbox.api.server import Security
from sandbox.settings import FleetSettings

FLEET = FleetSettings(lease_seconds=30, max_attempts=2, max_firmware_bytes=3_000_000, server_threads=32)


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Target:
    api: Api
    corpus: Corpus
    sender: Sender
    tally: Tally
    errors: _Errors


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    api = open_api(tmp_path, fleet=FLEET)
    channel = open_fuzz_channel(api.address)
    errors = _Errors()
    logging.getLogger("sandbox").addHandler(errors)
    try:
        yield Target(api, build_corpus(channel), Sender(channel, timeout=30, stream_budget=0.3), Tally(), errors)
    finally:
        logging.getLogger("sandbox").removeHandler(errors)
        channel.close()
        close_api(api)


def send_and_check(t: Target, case: Case) -> None:
    outcome = t.sender.send(case)
    t.tally.add(outcome)
    problem = outcome.problem()
    assert problem is None, f"{case.describe()}: {problem}"
    if outcome.code == grpc.StatusCode.OK and outcome.response is not None:
        t.corpus.learn(case.method.name, outcome.response)


def assert_server_unharmed(t: Target, tmp_path: Path) -> None:
    health = health_pb2_grpc.HealthStub(t.api.channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    aid = t.api.submit(hours=2)  # ordinary work still goes through
    assert t.api.sandbox.GetAnalysis(pb.GetAnalysisRequest(id=aid)).state == pb.ANALYSIS_STATE_QUEUED
    assert [r.getMessage() for r in t.errors.records] == []  # no "internal error in RPC"
    deadline = time.monotonic() + 10
    while any(th.name == "rpc-stream-reader" for th in threading.enumerate()) or list((tmp_path / "data/blobs/tmp").iterdir()):
        assert time.monotonic() < deadline, "a stream reader or a partial upload outlived its call"
        time.sleep(0.05)


def test_fuzzed_requests_to_every_method_get_clear_status_codes(target: Target, tmp_path: Path) -> None:
    strategy = cases(target.corpus)

    @fuzz_settings(800)
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        send_and_check(target, data.draw(strategy, label="case"))

    fuzz()
    tally = target.tally
    print("\n".join(tally.lines()))
    assert set(tally.by_method) == {m.name for m in METHODS}  # every method got requests
    assert tally.codes["OK"] > 0 and tally.codes["INVALID_ARGUMENT"] > 0
    assert not tally.problems
    assert_server_unharmed(target, tmp_path)


def test_raw_bytes_as_requests_get_clear_status_codes(target: Target, tmp_path: Path) -> None:
    strategy = cases(target.corpus, kinds=("raw",))

    @fuzz_settings(200)
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        send_and_check(target, data.draw(strategy, label="case"))

    fuzz()
    assert target.tally.total >= 200
    assert_server_unharmed(target, tmp_path)


def test_without_the_token_every_fuzzed_request_is_unauthenticated(tmp_path: Path) -> None:
    api = open_api(tmp_path, Security(token="s3cret"), fleet=FLEET)
    channel = open_fuzz_channel(api.address)
    try:
        token = (("authorization", "Bearer s3cret"),)
        corpus = build_corpus(open_channel(api.address, ClientSecurity(token="s3cret")))
        sender = Sender(channel, stream_budget=0.3)
        wrong = st.sampled_from([None, (("authorization", "Bearer s3cre"),), (("authorization", "s3cret"),),
                                 (("authorization", "Bearer s3cret "),), (("authorization", ""),)])

        @fuzz_settings(150)
        @given(case=cases(corpus), metadata=wrong)
        def fuzz(case: Case, metadata: tuple[tuple[str, str], ...] | None) -> None:
            outcome = sender.send(case, metadata=metadata)
            assert_unauthenticated_or_too_large(case, outcome.code, outcome.details)
            with_token = sender.send(case, metadata=token)
            assert with_token.problem() is None, f"{case.describe()}: {with_token.problem()}"
            assert with_token.code != grpc.StatusCode.UNAUTHENTICATED

        fuzz()
    finally:
        channel.close()
        close_api(api)


#: The server's message limit (sandbox/api/server.py): max_report_bytes + 1 MiB.
MESSAGE_LIMIT = FLEET.max_report_bytes + 1024 * 1024
_TOO_LARGE = re.compile(r"^(?:SERVER: )?Received message larger than max \(\d+ vs\. \d+\)$")


def assert_unauthenticated_or_too_large(case: Case, code: grpc.StatusCode, details: str) -> None:
    """The contract of docs/threat-model.md ("Oversized requests without a
    token"): UNAUTHENTICATED, or RESOURCE_EXHAUSTED when a message is over the
    limit -- rejected as too large before authentication, saying only sizes."""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and any(len(p) > MESSAGE_LIMIT for p in case.payloads):
        assert _TOO_LARGE.match(details), (case.describe(), details)
        return
    assert code == grpc.StatusCode.UNAUTHENTICATED, (case.describe(), code, details)
    assert "bearer token" in details


def test_an_oversized_request_without_the_token_is_refused_and_leaks_nothing(tmp_path: Path) -> None:
    api = open_api(tmp_path, Security(token="s3cret"), fleet=FLEET)
    channel = open_fuzz_channel(api.address)
    try:
        method = next(m for m in METHODS if m.name == "SubmitAnalysis")
        big = pb.SubmitAnalysisRequest(firmware_sha256="0" * 64, labels={"k": "v" * (MESSAGE_LIMIT + 10)})
        case = Case(method, "generated", (big.SerializeToString(),))
        outcome = Sender(channel, stream_budget=0.3).send(case, metadata=None)
        assert_unauthenticated_or_too_large(case, outcome.code, outcome.details)
        assert "s3cret" not in outcome.details
    finally:
        channel.close()
        close_api(api)


def test_allowed_codes_exclude_unknown_and_internal() -> None:
    assert grpc.StatusCode.UNKNOWN not in ALLOWED and grpc.StatusCode.INTERNAL not in ALLOWED
