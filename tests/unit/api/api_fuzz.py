"""Fuzzing the gRPC API over a real port: strategies built from the message descriptors, a sender, a tally.

Shared by ``tests/unit/api/test_api_fuzz.py`` (about a thousand requests per
run) and ``benchmarks/fuzz_api.py`` (10,000).  Every method of
``honeyphone.v1.Sandbox`` and ``honeyphone.v1.Fleet`` gets three kinds of
request:

* **generated**: each field drawn from its descriptor's type -- strings
  (random unicode with NUL and control characters, near-miss ids, path
  traversal, huge strings), bytes (up to past the 1 MiB chunk limit), integers
  at and beyond the bounds of their width, floats with NaN/inf/-0, unknown
  enum values, nested messages, empty and oversized repeated fields and maps;
* **mutated**: a valid request built from ids the server really knows (so it
  gets past the format checks into the store and the scheduler) with some
  fields, at any depth, replaced by generated values or cleared;
* **raw**: bytes sent as the serialized request through a generic
  ``channel.unary_unary(method, request_serializer=None, ...)`` -- random
  bytes, and valid serializations bit-flipped, truncated, spliced, extended
  with bogus tags (every wire type, field 0, overlong varints and lengths),
  nested past protobuf's recursion limit, or carrying invalid UTF-8.

Everything is sent as bytes on one path, so what the server sees is exactly
what was generated.  A response passes when it is OK, or one of ``ALLOWED``
with a non-empty message; a live response stream (WatchAnalysis of a running
analysis) is cancelled by the fuzzer after a short budget and counted as
CANCELLED by the client.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from sandbox.api.gen.honeyphone.v1 import fleet_pb2 as fpb
from sandbox.api.gen.honeyphone.v1 import sandbox_pb2 as pb

ALLOWED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.CANCELLED,
    }
)
MAX_MESSAGE = 64 * 1024 * 1024


# -- the methods -------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    path: str
    name: str
    input: Descriptor
    client_streaming: bool
    server_streaming: bool


def _methods() -> tuple[Method, ...]:
    out = []
    for module, service in ((pb, "Sandbox"), (fpb, "Fleet")):
        svc = module.DESCRIPTOR.services_by_name[service]
        for m in svc.methods:
            md: MethodDescriptor = m
            out.append(
                Method(f"/{svc.full_name}/{md.name}", md.name, md.input_type, md.client_streaming, md.server_streaming)
            )
    return tuple(out)


METHODS = _methods()
BY_NAME = {m.name: m for m in METHODS}


def new(descriptor: Descriptor) -> Message:
    return message_factory.GetMessageClass(descriptor)()


# -- what the server knows ---------------------------------------------------------------


@dataclass
class Corpus:
    """Real ids, so that mutated requests reach the store and scheduler, not only the format checks."""

    firmware: list[str] = field(default_factory=list)
    analyses: dict[str, str] = field(default_factory=dict)  # id -> state at set-up
    workers: list[str] = field(default_factory=list)
    leases: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    page_tokens: list[str] = field(default_factory=list)
    learned_analyses: list[str] = field(default_factory=list)

    def strings(self) -> list[str]:
        return [
            *self.firmware, *self.analyses, *self.learned_analyses, *self.workers, *self.leases, *self.artifacts, *self.page_tokens,
            "twin", "android", "en_US", "fw.tgz", "report.html",
        ]

    def terminal(self) -> list[str]:
        return [a for a, s in self.analyses.items() if s in ("succeeded", "failed", "cancelled")] or list(self.analyses)

    def learn(self, method: str, response: bytes) -> None:
        """Keep the ids an OK response hands out, so later requests can use them (bounded)."""
        if method == "SubmitAnalysis":
            self._keep(self.learned_analyses, pb.Analysis.FromString(response).id)
        elif method == "RegisterWorker":
            self._keep(self.workers, fpb.RegisterWorkerResponse.FromString(response).worker_id)
        elif method == "LeaseWork":
            for lease in fpb.LeaseWorkResponse.FromString(response).leases:
                self._keep(self.leases, lease.lease_id)
                self._keep(self.learned_analyses, lease.analysis_id)
        elif method == "UploadFirmware":
            self._keep(self.firmware, pb.FirmwareRef.FromString(response).sha256)

    @staticmethod
    def _keep(into: list[str], value: str, limit: int = 64) -> None:
        if value and value not in into:
            into.append(value)
            if len(into) > limit:
                del into[4]  # keep the set-up's first ids: they cover every state


def pick(values: Callable[[], list[str]]) -> st.SearchStrategy[str]:
    """One of ``values()`` as it is when drawn (the corpus grows while the fuzzer runs)."""
    return st.integers(0, 2**16).map(lambda i: values()[i % len(values())])


def build_corpus(channel: Any) -> Corpus:
    """Upload firmware; submit analyses and take them to every state; keep the ids."""
    from sandbox.api.gen.honeyphone.v1 import fleet_pb2_grpc, sandbox_pb2_grpc

    sandbox, fleet = sandbox_pb2_grpc.SandboxStub(channel), fleet_pb2_grpc.FleetStub(channel)
    c = Corpus()
    for data in (b"fuzz firmware one", b"fuzz firmware two"):
        c.firmware.append(sandbox.UploadFirmware(iter([pb.FirmwareChunk(filename="fw.tgz", data=data)])).sha256)

    def submit(i: int) -> str:
        req = pb.SubmitAnalysisRequest(
            firmware_sha256=c.firmware[i % 2], scenario=pb.Scenario(hours=24, seed=i), labels={"fuzz": str(i)}
        )
        return str(sandbox.SubmitAnalysis(req).id)

    ids = [submit(i) for i in range(8)]
    worker = fleet.RegisterWorker(fpb.RegisterWorkerRequest(name="fuzz-w1", slots=8, profiles=["twin"])).worker_id
    c.workers += [worker, fleet.RegisterWorker(fpb.RegisterWorkerRequest(name="fuzz-w2", slots=1, profiles=["twin", "android"])).worker_id]
    leases = list(fleet.LeaseWork(fpb.LeaseWorkRequest(worker_id=worker, max=4)).leases)
    for lease in leases:
        c.leases.append(lease.lease_id)
    done, failed, running = leases[0], leases[1], leases[2:]
    for name in ("flows.json", "report.html"):
        fleet.UploadArtifact(iter([fpb.ArtifactChunk(lease_id=done.lease_id, name=name, data=b"{}")]))
        c.artifacts.append(name)
    fleet.CompleteAnalysis(
        fpb.CompleteAnalysisRequest(lease_id=done.lease_id, verdict=pb.VERDICT_LEAK, report_json='{"verdict": "leak"}')
    )
    fleet.CompleteAnalysis(fpb.CompleteAnalysisRequest(lease_id=failed.lease_id, error="fuzz set-up failure"))
    leased = {lease.analysis_id for lease in leases}
    queued = [a for a in ids if a not in leased]
    sandbox.CancelAnalysis(pb.CancelAnalysisRequest(id=queued[0]))
    states = {done.analysis_id: "succeeded", failed.analysis_id: "failed", queued[0]: "cancelled"}
    states.update({lease.analysis_id: "running" for lease in running})
    for a in ids:
        c.analyses[a] = states.get(a, "queued")
    page = sandbox.ListAnalyses(pb.ListAnalysesRequest(page_size=2))
    c.page_tokens.append(page.next_page_token)
    return c


# -- value strategies --------------------------------------------------------------------

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_BOUNDARIES = [0, 1, -1, 2, 24, 100, 101, -100, -101, 256, 257, 500, 501, 720, 721, 1000, 1001, 10_000, 10_001,
               2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**31), -(2**63)]
_SPECIAL_STRINGS = [
    "", " ", "\x00", "\x00" * 16, "\n", "\t\r", "\x7f", "\u0085", "\u2028", "\u202e", "\ufeff", "\U0001f600",
    "..", "../../etc/passwd", "/", "\\", "C:\\x", "%s%n%x", "' OR 1=1 --", "${jndi:x}", "a" * 64, "a" * 65,
    "0" * 15, "0" * 17, "F" * 16, "w-", "l-", "w-" + "0" * 16, "l-" + "0" * 16, "0" * 64, "g" * 64,
    "en_US", "EN_us", "twin", "android", "ios", "twin,android", "k", "Bad Key", "a/b", "a" * 63, "a" * 300,
    "cDEuMQ", "cDEuOTIyMzM3MjAzNjg1NDc3NTgwOA", "cDEuLTE", "cDIuMQ", "p1.1", "!!!", "{}", "[]", "null",
    "{" * 2000, "[" * 5000, '{"a": ' * 3000, "1" * 5000,
]


def _near_misses(value: str) -> st.SearchStrategy[str]:
    if not value:
        return st.just(value)
    return st.one_of(
        st.just(value.upper()),
        st.just(value[:-1]),
        st.just(value + "0"),
        st.just(" " + value),
        st.just(value + "\x00"),
        st.integers(0, len(value) - 1).map(lambda i: value[:i] + "Z" + value[i + 1 :]),
    )


def strings(corpus: Corpus) -> st.SearchStrategy[str]:
    known = pick(corpus.strings)
    return st.one_of(
        st.text(max_size=40),
        st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Co"]), max_size=20),
        st.sampled_from(_SPECIAL_STRINGS),
        known,
        known.flatmap(_near_misses),
        st.text("0123456789abcdef", min_size=16, max_size=16),
        st.text("0123456789abcdef", min_size=16, max_size=16).map(lambda s: "l-" + s),
        st.text("0123456789abcdef", min_size=16, max_size=16).map(lambda s: "w-" + s),
        st.tuples(st.sampled_from("aZ\x00é😀"), st.integers(1_000, 400_000)).map(lambda t: t[0] * t[1]),
    )


def byte_values() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from([1024 * 1024, 1024 * 1024 + 1, 256 * 1024]).map(lambda n: b"\x00" * n),
        st.integers(0, 1_100_000).map(lambda n: b"\xab" * n),
    )


def integers(ftype: int) -> st.SearchStrategy[int]:
    lo, hi = _INT_RANGES[ftype]
    return st.one_of(
        st.integers(lo, hi),
        st.sampled_from([b for b in _BOUNDARIES if lo <= b <= hi]),
        st.integers(max(lo, -1000), min(hi, 1000)),
    )


def floats(ftype: int) -> st.SearchStrategy[float]:
    width = 32 if ftype == FieldDescriptor.TYPE_FLOAT else 64
    return st.one_of(
        st.floats(width=width),
        st.sampled_from([0.0, -0.0, 1.0, 0.999, 96.0, 720.0, 720.0001, 1e308, -1e308, 5e-324,
                         float("nan"), float("inf"), float("-inf")]),
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def json_texts() -> st.SearchStrategy[str]:
    """For fields that carry JSON: documents of every type, deep nesting, huge numbers, broken text."""
    return st.one_of(
        _json.map(json.dumps),
        st.dictionaries(st.text(max_size=6), _json, max_size=4).map(json.dumps),
        st.tuples(
            st.sampled_from(["[", "{\"a\":", "[{\"a\":"]),
            st.sampled_from([999, 1000, 1001, 5000, 100_000]) | st.integers(500, 200_000),
        ).map(lambda t: t[0] * t[1]),  # past the JSON parser's recursion limit
        st.integers(500, 100_000).map(lambda n: '{"a": ' + "1" * n + "}"),
        st.sampled_from(['{"a": NaN}', '{"a": Infinity}', '{"a": 1e999}', "{", '{"a"}', "\ufeff{}", '{"\ud800": 1}']),
    )


def page_tokens() -> st.SearchStrategy[str]:
    """Tokens in the server's own format (base64url of ``p1.<seq>``) with any ``seq``, and near misses."""
    import base64

    def encode(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    seqs = st.integers(-(2**70), 2**70).map(str) | st.sampled_from(["", "x", "1.5", "٣", "²", "1" * 5000, " 1"])
    return st.tuples(st.sampled_from(["p1", "p2", "", "p1.p1"]), seqs).map(lambda t: encode(f"{t[0]}.{t[1]}"))


def scalar(f: FieldDescriptor, corpus: Corpus) -> st.SearchStrategy[Any]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        # Field names hint at formats the server parses further; give those their own generators too.
        if f.name.endswith("json"):
            return json_texts() | strings(corpus)
        if f.name.endswith("token"):
            return page_tokens() | strings(corpus)
        return strings(corpus)
    if t == FieldDescriptor.TYPE_BYTES:
        return byte_values()
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return floats(t)
    if t == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in f.enum_type.values]) | integers(FieldDescriptor.TYPE_INT32)
    return integers(t)


def _is_map(f: FieldDescriptor) -> bool:
    return f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.GetOptions().map_entry


def _value(f: FieldDescriptor, corpus: Corpus, depth: int) -> st.SearchStrategy[Any]:
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(f.message_type, corpus, depth + 1)
    return scalar(f, corpus)


BIG_FIELD_BYTES = 8 * 1024 * 1024  # an oversized repeated field or map stays around this size


def _size(value: Any) -> int:
    if isinstance(value, Message):
        return value.ByteSize() + 2
    if isinstance(value, (str, bytes)):
        return len(value) + 2
    return 10


def _repeats(element: Any, wanted: int) -> int:
    """How many copies of ``element`` fit the budget (at least a few past every limit)."""
    return max(2, min(wanted, BIG_FIELD_BYTES // _size(element)))


def _many(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """Empty, a few, or very many (one drawn value repeated, so it stays cheap to generate)."""
    return st.one_of(
        st.just([]),
        st.lists(element, min_size=1, max_size=6),
        st.tuples(element, st.integers(257, 20_000)).map(lambda t: [t[0]] * _repeats(*t)),
    )


def field_values(f: FieldDescriptor, corpus: Corpus, depth: int) -> st.SearchStrategy[Any]:
    """What to put into field ``f``: a value, a list (repeated) or a dict (map)."""
    if _is_map(f):
        key_f, value_f = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        small = st.dictionaries(scalar(key_f, corpus), _value(value_f, corpus, depth), max_size=6)
        big = st.tuples(_value(value_f, corpus, depth), st.integers(33, 5000)).map(
            lambda t: {f"k{i}": t[0] for i in range(_repeats(*t))}
        )
        return st.one_of(st.just({}), small, big)
    if f.is_repeated:
        return _many(_value(f, corpus, depth))
    return _value(f, corpus, depth)


def assign(msg: Message, f: FieldDescriptor, value: Any) -> None:
    """Set ``f`` of ``msg`` to a value from :func:`field_values` (whatever the field's shape)."""
    msg.ClearField(f.name)
    target = getattr(msg, f.name)
    if _is_map(f):
        for k, v in value.items():
            if isinstance(v, Message):
                target[k].CopyFrom(v)
            else:
                target[k] = v
    elif f.is_repeated:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            for v in value:
                target.add().CopyFrom(v)
        else:
            target.extend(value)
    elif f.type == FieldDescriptor.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(msg, f.name, value)


MAX_DEPTH = 3


def messages(descriptor: Descriptor, corpus: Corpus, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of this type: each field unset or set to a generated value."""

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = new(descriptor)
        if depth >= MAX_DEPTH:
            return msg
        for f in descriptor.fields:
            if draw(st.booleans()):
                assign(msg, f, draw(field_values(f, corpus, depth)))
        return msg

    return build()


# -- valid requests, then mutated --------------------------------------------------------


def templates(method: Method, corpus: Corpus) -> st.SearchStrategy[list[Message]]:
    """Valid requests of ``method`` made of known ids (a list: the messages of the call)."""
    a_id = pick(lambda: [*corpus.analyses, *corpus.learned_analyses])
    done = st.sampled_from(corpus.terminal())
    lease = pick(lambda: corpus.leases)
    worker = pick(lambda: corpus.workers)
    sha = pick(lambda: corpus.firmware)
    name = method.name

    def one(s: st.SearchStrategy[Message]) -> st.SearchStrategy[list[Message]]:
        return s.map(lambda m: [m])

    if name == "UploadFirmware":
        return st.lists(st.binary(max_size=32), min_size=1, max_size=3).map(
            lambda parts: [pb.FirmwareChunk(filename="fw.tgz" if i == 0 else "", data=p) for i, p in enumerate(parts)]
        )
    if name == "SubmitAnalysis":
        return one(st.builds(
            lambda s, h, seed: pb.SubmitAnalysisRequest(
                firmware_sha256=s, scenario=pb.Scenario(hours=h, seed=seed), priority=0, labels={"fuzz": "1"}
            ),
            sha, st.floats(1, 720), st.integers(0, 100),
        ))
    if name in ("GetAnalysis", "CancelAnalysis", "GetReport"):
        return one(a_id.map(lambda i: _with(new(method.input), id=i)))
    if name == "ListAnalyses":
        return one(st.builds(
            lambda st_, tok: pb.ListAnalysesRequest(state=st_, labels={"fuzz": "1"}, page_size=2, page_token=tok),
            st.sampled_from([0, 1, 3, 4, 5]), st.sampled_from(["", *corpus.page_tokens]),
        ))
    if name == "WatchAnalysis":
        return one(st.builds(lambda i, s: pb.WatchAnalysisRequest(id=i, from_sequence=s), done | a_id, st.integers(0, 5)))
    if name == "DownloadArtifact":
        return one(st.builds(
            lambda i, n: pb.DownloadArtifactRequest(id=i, name=n), done, st.sampled_from(corpus.artifacts or ["x"])
        ))
    if name == "RegisterWorker":
        return one(st.builds(
            lambda s: fpb.RegisterWorkerRequest(name="fuzz-reg", slots=s, profiles=["twin"]), st.integers(1, 4)
        ))
    if name == "LeaseWork":
        return one(st.builds(lambda w: fpb.LeaseWorkRequest(worker_id=w, max=1), worker))
    if name == "DownloadFirmware":
        return one(st.builds(lambda w, le: fpb.DownloadFirmwareRequest(worker_id=w, lease_id=le), worker, lease))
    if name == "Heartbeat":
        return one(st.builds(
            lambda w, le: fpb.HeartbeatRequest(worker_id=w, leases=[fpb.LeaseProgress(
                lease_id=le, events=[fpb.WorkerEvent(stage=pb.STAGE_BOOTING, message="fuzz", device_hours=1.0)]
            )]),
            worker, lease,
        ))
    if name == "UploadArtifact":
        return st.builds(
            lambda le, n: [fpb.ArtifactChunk(lease_id=le, name=n, data=b"fuzz"), fpb.ArtifactChunk(data=b"more")],
            lease, st.sampled_from(["fuzz.bin", "report.html"]),
        )
    if name == "CompleteAnalysis":
        return one(st.builds(
            lambda le, v: fpb.CompleteAnalysisRequest(lease_id=le, verdict=v, report_json=json.dumps({"v": v})),
            lease, st.sampled_from([1, 2, 3]),
        ))
    raise AssertionError(f"no template for {name}")


def _with(msg: Message, **fields: Any) -> Message:
    out = new(msg.DESCRIPTOR)
    out.CopyFrom(msg)
    for k, v in fields.items():
        setattr(out, k, v)
    return out


def mutate(msg: Message, corpus: Corpus, depth: int = 0) -> st.SearchStrategy[Message]:
    """``msg`` with some fields (possibly inside nested messages) cleared or replaced."""
    descriptor = msg.DESCRIPTOR

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        out = new(descriptor)
        out.CopyFrom(msg)
        chosen = draw(st.lists(st.sampled_from(list(descriptor.fields)), min_size=1, max_size=3, unique_by=lambda f: f.name))
        for f in chosen:
            action = draw(st.sampled_from(["replace", "clear", "nested"]))
            if action == "clear":
                out.ClearField(f.name)
            elif (
                action == "nested" and depth < MAX_DEPTH and f.type == FieldDescriptor.TYPE_MESSAGE
                and not f.is_repeated and out.HasField(f.name)
            ):
                getattr(out, f.name).CopyFrom(draw(mutate(getattr(out, f.name), corpus, depth + 1)))
            else:
                assign(out, f, draw(field_values(f, corpus, depth)))
        return out

    return build()


# -- raw bytes ---------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint((number << 3) | wire)


BOGUS_TAILS = [
    _tag(1, 2) + _varint(2**32) + b"x",  # a length far past the end
    _tag(1, 2) + b"\x02\xff\xfe",  # invalid UTF-8 in a string field
    _tag(1, 2) + b"\x04\xed\xa0\x80a",  # an encoded surrogate
    _tag(1, 2) + b"\x03\xc0\xafz",  # an overlong encoding
    _tag(0, 0) + b"\x01",  # field number 0
    _tag(2**29 - 1, 0) + b"\x01",  # the largest field number
    _tag(1, 6) + b"\x00",  # wire type 6
    _tag(1, 7) + b"\x00",  # wire type 7
    _tag(1, 4),  # an end-group with no start
    _tag(3, 0) + b"\xff" * 11,  # an overlong varint
    _tag(9, 1) + b"\x00" * 3,  # a truncated fixed64
    _tag(9, 5) + b"\x00",  # a truncated fixed32
    _tag(1, 3) * 200 + _tag(1, 4) * 200,  # groups nested past the recursion limit
    (_tag(2, 2) + b"\x00") * 1000,  # many empty sub-messages / map entries
]


def _nested(field_number: int, depth: int) -> bytes:
    """A sub-message in ``field_number`` nested ``depth`` deep (past protobuf's limit of 100)."""
    inner = b""
    for _ in range(depth):
        inner = _tag(field_number, 2) + _varint(len(inner)) + inner
    return inner


@st.composite
def _mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "splice", "tail", "set"]))
        if op == "flip" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate" and buf:
            del buf[draw(st.integers(0, len(buf) - 1)) :]
        elif op == "insert":
            i = draw(st.integers(0, len(buf)))
            buf[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "splice" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i:] = draw(st.sampled_from(BOGUS_TAILS))
        elif op == "tail":
            buf += draw(st.sampled_from(BOGUS_TAILS))
        elif op == "set" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12]))
    return bytes(buf)


def raw_payloads(method: Method, corpus: Corpus) -> st.SearchStrategy[bytes]:
    serialized = st.one_of(templates(method, corpus), messages(method.input, corpus).map(lambda m: [m])).map(
        lambda msgs: msgs[0].SerializeToString()
    )
    message_fields = [f.number for f in method.input.fields if f.type == FieldDescriptor.TYPE_MESSAGE] or [15]
    return st.one_of(
        st.binary(max_size=300),
        serialized.flatmap(_mutated_bytes),
        st.sampled_from(BOGUS_TAILS),
        st.tuples(st.sampled_from(message_fields), st.integers(90, 400)).map(lambda t: _nested(*t)),
        st.integers(1, 200_000).map(lambda n: b"\xff" * n),
    )


# -- cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    method: Method
    kind: str  # valid, generated, mutated, raw
    payloads: tuple[bytes, ...]  # one per message of the call (exactly one unless client streaming)

    def describe(self) -> str:
        sizes = ",".join(str(len(p)) for p in self.payloads[:5])
        return f"{self.method.name} {self.kind} [{sizes}{',…' if len(self.payloads) > 5 else ''}]"


# How often each kind is drawn: mutated most, plus some valid requests that move
# the server's state along (new analyses, leases, completions) for the others.
KINDS = ("generated", "generated", "mutated", "mutated", "mutated", "raw", "raw", "valid")


def cases(corpus: Corpus, kinds: tuple[str, ...] = KINDS) -> st.SearchStrategy[Case]:
    @st.composite
    def build(draw: st.DrawFn) -> Case:
        method = draw(st.sampled_from(METHODS))
        kind = draw(st.sampled_from(kinds))
        count = draw(st.integers(0, 4)) if method.client_streaming else 1
        if kind == "valid":
            payloads = tuple(m.SerializeToString() for m in draw(templates(method, corpus)))
        elif kind == "mutated":
            msgs = draw(templates(method, corpus))
            if method.client_streaming and draw(st.booleans()):
                msgs = msgs[: draw(st.integers(0, len(msgs)))]  # also: no messages at all
            i = draw(st.integers(0, max(0, len(msgs) - 1)))
            if msgs:
                msgs[i] = draw(mutate(msgs[i], corpus))
            payloads = tuple(m.SerializeToString() for m in msgs)
        elif kind == "generated":
            payloads = tuple(draw(messages(method.input, corpus)).SerializeToString() for _ in range(count))
        else:
            payloads = tuple(draw(raw_payloads(method, corpus)) for _ in range(count))
        return Case(method, kind, payloads)

    return build()


# -- sending and judging -----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: grpc.StatusCode
    details: str
    responses: int
    cancelled_by_client: bool
    seconds: float
    response: bytes | None = None  # the (first) response message, serialized

    def problem(self) -> str | None:
        """Why this outcome breaks the contract, or None."""
        if self.code == grpc.StatusCode.OK:
            return None
        if self.code not in ALLOWED:
            return f"{self.code.name}: {self.details!r}"
        if not self.details.strip():
            return f"{self.code.name} with an empty message"
        return None

    @property
    def label(self) -> str:
        return "CANCELLED (live stream, by the fuzzer)" if self.cancelled_by_client else self.code.name


class Sender:
    """Sends cases as raw bytes over one channel; never raises for an RPC outcome."""

    def __init__(self, channel: Any, timeout: float = 30.0, stream_budget: float = 0.5) -> None:
        self._channel = channel
        self._timeout = timeout
        self._budget = stream_budget
        self._calls: dict[str, Any] = {}

    def _callable(self, m: Method) -> Any:
        if m.path not in self._calls:
            kind = ("stream_" if m.client_streaming else "unary_") + ("stream" if m.server_streaming else "unary")
            self._calls[m.path] = getattr(self._channel, kind)(m.path, request_serializer=None, response_deserializer=None)
        return self._calls[m.path]

    def send(self, case: Case, metadata: tuple[tuple[str, str], ...] | None = None) -> Outcome:
        m = case.method
        call = self._callable(m)
        request: Any = iter(case.payloads) if m.client_streaming else case.payloads[0]
        started = time.monotonic()
        responses = 0
        first: bytes | None = None
        cancelled = threading.Event()
        try:
            if m.server_streaming:
                stream = call(request, timeout=self._timeout, metadata=metadata)

                def cancel() -> None:
                    cancelled.set()
                    stream.cancel()

                timer = threading.Timer(self._budget, cancel)
                timer.start()
                try:
                    for item in stream:
                        first = item if first is None else first
                        responses += 1
                finally:
                    timer.cancel()
            else:
                first = call(request, timeout=self._timeout, metadata=metadata)
                responses = 1
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
        by_client = cancelled.is_set() and code == grpc.StatusCode.CANCELLED
        return Outcome(case, code, details, responses, by_client, time.monotonic() - started, first)


def open_fuzz_channel(address: str) -> Any:
    return grpc.insecure_channel(
        address,
        options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)],
    )


@dataclass
class Tally:
    codes: Counter[str] = field(default_factory=Counter)
    by_method: dict[str, Counter[str]] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    slowest: float = 0.0
    slowest_case: str = ""

    def add(self, o: Outcome) -> None:
        self.codes[o.label] += 1
        self.by_method.setdefault(o.case.method.name, Counter())[o.label] += 1
        self.kinds[o.case.kind] += 1
        if o.seconds > self.slowest:
            self.slowest, self.slowest_case = o.seconds, o.case.describe()
        problem = o.problem()
        if problem is not None:
            self.problems.append(f"{o.case.describe()}: {problem}")

    @property
    def total(self) -> int:
        return sum(self.codes.values())

    def lines(self) -> Iterator[str]:
        yield f"{self.total} requests ({', '.join(f'{k} {v}' for k, v in sorted(self.kinds.items()))})"
        for code, n in self.codes.most_common():
            yield f"  {code:<40} {n:>6}"
        yield f"slowest: {self.slowest * 1e3:.0f} ms ({self.slowest_case})"
        yield f"contract violations: {len(self.problems)}"
        for p in self.problems[:20]:
            yield f"  {p}"

