"""End-to-end detection over synthetic artifacts: sources -> scanner -> findings."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import random
from pathlib import Path

import phonenumbers
from detect_helpers import (
    DEVICE,
    FAKENET,
    Conversation,
    dns_query,
    flow_record,
    pcap_bytes,
    timed,
    udp_frame,
    write_jsonl,
)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.canary import CanarySet, CanarySpec, generate
from sandbox.clock import ClockMapping
from sandbox.detect.findings import Detector, Finding, detect, device_port
from sandbox.detect.payloads import Payload
from sandbox.detect.sources import iter_payloads
from sandbox.monitor.events import Connect, Exec, Send
from sandbox.monitor.summary import Summary, summarize, summarize_lines

T0 = 1_700_000_000.0
IDENTITY = ClockMapping.identity()


@functools.lru_cache(maxsize=1)
def canaries() -> CanarySet:
    return generate(CanarySpec(seed=7, analysis_id="detect-findings", contacts=4, sms=4, calls=4))


@functools.lru_cache(maxsize=1)
def detector() -> Detector:
    return Detector(canaries())


def run(tmp_path: Path, *, frames: list[bytes] | None = None, flows: list[dict[str, object]] | None = None,
        dns: list[dict[str, object]] | None = None, step: float = 0.01,
        mapping: ClockMapping = IDENTITY, syscalls: object = None) -> list[Finding]:
    fk = tmp_path / "fakenet"
    fk.mkdir(exist_ok=True)
    write_jsonl(fk / "flows.jsonl", flows or [])
    write_jsonl(fk / "dns.jsonl", dns or [])
    pcap = None
    if frames:
        pcap = tmp_path / "bridge.pcap"
        pcap.write_bytes(pcap_bytes(timed(frames, start=T0, step=step)).getvalue())
    payloads = iter_payloads(DEVICE, pcap=pcap, fakenet_dir=fk)
    return detector().detect(payloads, mapping, syscalls)  # type: ignore[arg-type]


def items_with_number(e164: str) -> set[tuple[str, str]]:
    cs = canaries()
    return ({("contact", c.id) for c in cs.contacts if c.number == e164}
            | {("sms", s.id) for s in cs.sms if s.address == e164}
            | {("call_log", c.id) for c in cs.calls if c.number == e164})


def digits(e164: str) -> str:
    n = phonenumbers.parse(e164)
    return "".join(ch for ch in phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.NATIONAL)
                   if ch.isdigit())


def by_item(findings: list[Finding]) -> dict[tuple[str, str, str], Finding]:
    out = {(f.canary.kind, f.canary.item_id, f.canary.field): f for f in findings}
    assert len(out) == len(findings), "one finding per item and field"
    return out


def test_phone_number_in_an_http_query_string(tmp_path: Path) -> None:
    number = canaries().contacts[0].number
    flow = flow_record("q1", T0, host="collector.example", method="GET",
                       path=f"/track?tel={digits(number)}&v=2&t=1700000000")
    found = by_item(run(tmp_path, flows=[flow]))
    assert {(k, i) for k, i, _ in found} == items_with_number(number)
    f = found["contact", canaries().contacts[0].id, "number"]
    assert (f.canary.form, f.encoding, f.channel) == ("digits", (), "http")
    assert f.destination.to_dict() == {"host": "collector.example", "ip": FAKENET, "port": 80,
                                       "host_source": "http-host"}
    (ev,) = f.evidence
    assert (ev.artifact, ev.locator, ev.offset) == ("flows", "q1", len("GET /track?tel="))
    assert f"«{digits(number)}»" in ev.excerpt
    json.dumps([x.to_dict() for x in found.values()])  # report-ready


def test_gzipped_json_body_in_a_decrypted_flow(tmp_path: Path) -> None:
    sms = canaries().sms[1]
    body = gzip.compress(json.dumps({"messages": [{"from": sms.address, "text": sms.body}]}).encode())
    flow = flow_record("g1", T0, host="api.tracker.example", path="/v1/sms", body=body, tls=True,
                       headers=[["Content-Encoding", "gzip"], ["Content-Type", "application/json"]])
    found = by_item(run(tmp_path, flows=[flow]))
    f = found["sms", sms.id, "body"]
    assert (f.canary.form, f.canary.value, f.channel) == ("body_full", sms.body, "https")
    assert f.encoding[0] == "gzip"
    assert len(f.evidence) == 1  # token and windows are inside the full body: collapsed
    assert found["sms", sms.id, "address"].encoding[0] == "gzip"


def test_adups_style_report(tmp_path: Path) -> None:
    sms = canaries().sms[2]
    key = b"adups"
    obfuscated = bytes(b ^ key[i % len(key)] for i, b in enumerate(sms.body.encode()))
    doc = {"tell": sms.address, "keyword": base64.b64encode(obfuscated).decode(),
           "md5": hashlib.md5(sms.body.encode()).hexdigest().upper(), "type": "sms"}
    flow = flow_record("a1", T0, host="bigdata.adups.example", path="/collect", body=json.dumps(doc).encode(),
                       headers=[["Content-Type", "application/json"]])
    found = by_item(run(tmp_path, flows=[flow]))
    address = found["sms", sms.id, "address"]
    assert (address.canary.form, address.encoding) == ("e164", ())
    body = found["sms", sms.id, "body"]
    assert (body.canary.form, body.encoding) == ("body_full", ("md5-hex-upper",))
    assert {(k, i) for k, i, f in found if f == "address" or f == "number"} == items_with_number(sms.address)


def test_dns_label_exfiltration_split_across_labels(tmp_path: Path) -> None:
    call = canaries().calls[0]
    hexed = call.number.encode().hex()
    name = f"{hexed[:10]}.{hexed[10:]}.q.exfil.example"
    frames = [udp_frame(DEVICE, 5300, FAKENET, 53, dns_query(name))]
    log = [{"ts": T0 + 0.001, "client": f"{DEVICE}:5300", "name": name, "type": "A", "proto": "udp", "id": 1}]
    found = by_item(run(tmp_path, frames=frames, dns=log))
    f = found["call_log", call.id, "number"]
    assert (f.channel, f.encoding, f.canary.form) == ("dns", ("hex",), "e164")
    assert (f.destination.host, f.destination.ip, f.destination.port) == (name, FAKENET, 53)
    assert {e.artifact for e in f.evidence} == {"pcap", "dns"}  # one leak, two artifacts, one finding
    assert f.evidence[0].artifact == "pcap"


def test_raw_tcp_with_single_byte_xor_split_across_segments(tmp_path: Path) -> None:
    contact = canaries().contacts[1]
    clear = b"\x00\x10name=" + contact.display_name.encode() + b";ok"
    frames = Conversation(41000, "198.51.100.7", 4444).stream(bytes(b ^ 0x5A for b in clear), segment=5).frames
    found = by_item(run(tmp_path, frames=frames))
    f = found["contact", contact.id, "name"]
    assert (f.channel, f.encoding, f.canary.form) == ("tcp", ("xor-0x5a",), "name_full")
    assert (f.destination.ip, f.destination.port, f.destination.host) == ("198.51.100.7", 4444, None)
    assert contact.display_name in f.evidence[0].excerpt  # shown decoded


def test_benign_update_check_yields_nothing(tmp_path: Path) -> None:
    req = (b"GET /ota/check?model=HP-1&build=QP1A.190711.020&serial=0123456789ABCDEF&ts=1700000000 HTTP/1.1\r\n"
           b"Host: update.vendor.example\r\nUser-Agent: OtaClient/2.1\r\n\r\n")
    frames = [udp_frame(DEVICE, 5301, FAKENET, 53, dns_query("update.vendor.example"))]
    frames += Conversation(41001, FAKENET, 80).stream(req).frames
    frames += Conversation(41002, FAKENET, 443).stream(random.Random(9).randbytes(5000)).frames
    flow = flow_record("u1", T0 + 0.05, host="update.vendor.example", method="GET",
                       path="/ota/check?model=HP-1&build=QP1A.190711.020", client=f"{DEVICE}:41001",
                       response_body=json.dumps({"update": False, "sms": canaries().sms[0].body}).encode())
    assert run(tmp_path, frames=frames, flows=[flow]) == []  # the response's canary never counts


def test_one_leak_in_pcap_and_flow_is_one_finding(tmp_path: Path) -> None:
    sms = canaries().sms[3]
    body = json.dumps({"body": sms.body}).encode()
    req = (f"POST /up HTTP/1.1\r\nHost: collector.example\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    frames = Conversation(41003, FAKENET, 80).stream(req, segment=40).frames
    flow = flow_record("d1", T0 + 0.03, host="collector.example", path="/up", body=body,
                       client=f"{DEVICE}:41003", headers=[["Content-Length", str(len(body))]])
    found = by_item(run(tmp_path, frames=frames, flows=[flow]))
    f = found["sms", sms.id, "body"]
    assert [e.artifact for e in f.evidence] == ["flows", "pcap"]  # the flow is primary
    assert f.channel == "http" and f.destination.host == "collector.example"
    assert f.host_time == min(e.host_time for e in f.evidence)


def test_https_leak_comes_from_the_decrypted_flow(tmp_path: Path) -> None:
    contact = canaries().contacts[2]
    frames = Conversation(41004, FAKENET, 443).stream(random.Random(2).randbytes(3000)).frames
    flow = flow_record("h1", T0 + 0.02, host="api.tracker.example", path="/c", tls=True,
                       body=json.dumps({"email": contact.email}).encode(), client=f"{DEVICE}:41004")
    found = by_item(run(tmp_path, frames=frames, flows=[flow]))
    f = found["contact", contact.id, "email"]
    assert (f.channel, [e.artifact for e in f.evidence]) == ("https", ["flows"])


def test_the_same_upload_an_hour_later_is_a_second_finding(tmp_path: Path) -> None:
    contact = canaries().contacts[3]
    flows = [flow_record(f"r{i}", T0 + i * 3600, host="collector.example", path="/p",
                         body=contact.display_name.encode()) for i in range(2)]
    found = run(tmp_path, flows=flows)
    assert [(f.canary.item_id, f.host_time) for f in found] == [(contact.id, T0), (contact.id, T0 + 3600)]


FAST = ClockMapping.linear(T0, 1_800_000_000.0, 28_800.0)  # the twin's rate: 8 device hours per host second


def test_fast_clock_repeats_are_separate_but_layers_still_merge(tmp_path: Path) -> None:
    sms = canaries().sms[0]
    body = json.dumps({"b": sms.body}).encode()

    def upload(port: int, at: float) -> tuple[list[tuple[float, bytes]], dict[str, object]]:
        req = "POST /u HTTP/1.1\r\nHost: c.example\r\n\r\n".encode() + body
        frames = Conversation(port, FAKENET, 80).stream(req, segment=64).frames
        flow = flow_record(f"f{port}", at + 1.5, host="c.example", path="/u", body=body,
                           client=f"{DEVICE}:{port}")  # the fakenet's log lags the capture by 1.5 s
        return timed(frames, start=at, step=0.001), flow

    (f1, flow1), (f2, flow2) = upload(42001, T0), upload(42002, T0 + 6)  # 48 device hours later
    fk = tmp_path / "fakenet"
    write_jsonl(fk / "flows.jsonl", [flow1, flow2])
    pcap = tmp_path / "bridge.pcap"
    pcap.write_bytes(pcap_bytes(f1 + f2).getvalue())
    found = [f for f in detector().detect(iter_payloads(DEVICE, pcap=pcap, fakenet_dir=fk), FAST, None)
             if (f.canary.item_id, f.canary.field) == (sms.id, "body")]
    assert len(found) == 2
    assert all(sorted(e.artifact for e in f.evidence) == ["flows", "pcap"] for f in found)
    assert found[1].device_time.startswith(FAST.device_iso(T0 + 6)[:13])


def test_two_uploads_on_one_kept_alive_connection_stay_apart(tmp_path: Path) -> None:
    contact = canaries().contacts[2]
    req = f"POST /k HTTP/1.1\r\nHost: c.example\r\nContent-Length: 40\r\n\r\n{contact.email:<40}".encode()
    c = Conversation(42003, FAKENET, 80).syn().send(0, req).send(len(req), req).fin(2 * len(req))
    stamps = [T0, T0 + 0.01, T0 + 0.02, T0 + 3.02, T0 + 3.03]  # the second upload 3 s (24 device hours) later
    flows = [flow_record(f"k{i}", T0 + 0.03 + 3 * i, host="c.example", path="/k", client=f"{DEVICE}:42003",
                         body=f"{contact.email:<40}".encode()) for i in range(2)]
    fk = tmp_path / "fakenet"
    write_jsonl(fk / "flows.jsonl", flows)
    pcap = tmp_path / "bridge.pcap"
    pcap.write_bytes(pcap_bytes(zip(stamps, c.frames)).getvalue())
    found = [f for f in detector().detect(iter_payloads(DEVICE, pcap=pcap, fakenet_dir=fk), FAST, None)
             if f.canary.item_id == contact.id]
    # The scanner reports one copy per form per buffer: the stream's match is the first upload's.
    assert [sorted(e.artifact for e in f.evidence) for f in found] == [["flows", "pcap"], ["flows"]]
    assert [f.host_time for f in found] == [T0 + 0.02, T0 + 3.03]


def test_digits_only_forms_need_non_digit_boundaries() -> None:
    number = canaries().calls[1].number
    d = digits(number)
    det = detector()

    def found(data: bytes) -> set[str]:
        p = Payload("tcp", data, None, "192.0.2.1", 1, T0, "pcap", "x")
        return {m.form.form for m in det.matches(p) if m.form.item_id == canaries().calls[1].id}

    assert found(f"id=9{d}7;".encode()) == set()
    assert found(f"a=9{d}7;b={d};".encode()) == {"digits"}  # a later, bounded copy counts
    assert found(base64.b64encode(f"<{d}>".encode())) == {"digits"}
    assert found(base64.b64encode(f"9{d}7".encode())) == set()
    assert found(hashlib.md5(d.encode()).hexdigest().encode()) == {"digits"}  # a digest needs no boundary


def test_process_attribution_and_device_time(tmp_path: Path) -> None:
    contact = canaries().contacts[0]
    summary = summarize([
        Exec(700, T0 - 5, "/system/bin/sysoper", ("sysoper", "--upload")),
        Connect(700, T0 - 0.01, "AF_INET", FAKENET, 80, True, False, 9, "TCP"),
    ])
    flow = flow_record("p1", T0, host="collector.example", path="/c", body=contact.number.encode())
    mapping = ClockMapping.linear(T0, 1_800_000_000.0, 60.0)
    (f, *_) = [x for x in run(tmp_path, flows=[flow], mapping=mapping, syscalls=summary)
               if x.canary.item_id == contact.id]
    assert f.process is not None and (f.process.pid, f.process.name) == (700, "sysoper")
    assert f.process.argv == ("sysoper", "--upload")
    assert f.device_time == mapping.device_iso(T0) and f.device_time.startswith("2027-01-15")
    assert f.to_dict()["process"] == f.process.to_dict()


POLLER, UPLOADER = 10, 20
POLLER_PORT, UPLOADER_PORT = 40010, 40020


def timeouts_trace(*, reuse_at: float | None = None) -> Summary:
    """strace output of the real case: a 15-minute HTTPS poller and a 72 h
    uploader wake on one clock jump and connect to the one fakenet address
    at the same instant (the poller even first).  ``reuse_at``: the poller
    later gets the uploader's port again."""
    def tls(pid: int, comm: str, fd: int, port: int, at: float) -> list[str]:
        return [
            f'{pid}<{comm}> {at:.6f} connect({fd}<TCP:[{pid}{fd}]>, {{sa_family=AF_INET, sin_port=htons(443), '
            f'sin_addr=inet_addr("{FAKENET}")}}, 16) = 0',
            f'{pid}<{comm}> {at + 0.002:.6f} write({fd}<TCP:[{DEVICE}:{port}->{FAKENET}:443]>, '
            f'"\\26\\3\\1\\2\\0"..., 517) = 517',
        ]

    lines = [
        f'{POLLER}<poller.py> {T0 - 9:.6f} execve("/system/priv-app/timeouts/poller.py", ["poller.py"], '
        f'0x7ffd /* 3 vars */) = 0',
        f'{UPLOADER}<uploader.py> {T0 - 8:.6f} execve("/system/priv-app/timeouts/uploader.py", '
        f'["uploader.py"], 0x7ffd /* 3 vars */) = 0',
        *tls(POLLER, "poller.py", 5, POLLER_PORT, T0 - 0.001),
        *tls(UPLOADER, "uploader.py", 7, UPLOADER_PORT, T0 - 0.001),
    ]
    if reuse_at is not None:
        lines += tls(POLLER, "poller.py", 6, UPLOADER_PORT, reuse_at - 0.001)
    summary = summarize_lines(lines)
    assert summary.parse_stats is not None and summary.parse_stats.unparseable == 0
    return summary


def test_simultaneous_connects_are_told_apart_by_the_device_port(tmp_path: Path) -> None:
    """The SMS leak is the uploader's, though the poller reached the same
    fakenet:443 at the same moment: the flow's client port says so."""
    sms = canaries().sms[0]
    flows = [
        flow_record("poll", T0 + 0.01, host="poll.example", path="/ping", tls=True,
                    body=b'{"alive": true}', client=f"{DEVICE}:{POLLER_PORT}"),
        flow_record("up", T0 + 0.01, host="upload.example", path="/sms", tls=True,
                    body=json.dumps({"body": sms.body}).encode(), client=f"{DEVICE}:{UPLOADER_PORT}"),
    ]
    (f,) = [x for x in run(tmp_path, flows=flows, syscalls=timeouts_trace()) if x.canary.item_id == sms.id]
    assert f.process is not None and f.process.pid == UPLOADER
    assert f.process.exe == "/system/priv-app/timeouts/uploader.py"
    # the same flow with its client unknown: time alone names the wrong one
    blind = [dict(flows[1], client=None)]
    (g,) = [x for x in run(tmp_path, flows=blind, syscalls=timeouts_trace()) if x.canary.item_id == sms.id]
    assert g.process is not None and g.process.pid == POLLER


def test_device_port_from_the_pcap_stream(tmp_path: Path) -> None:
    """A clear-text stream reassembled from the capture knows its source port."""
    contact = canaries().contacts[2]
    assert contact.email is not None
    body = json.dumps({"email": contact.email}).encode()
    for port, pid in ((UPLOADER_PORT, UPLOADER), (POLLER_PORT, POLLER)):
        request = b"POST /c HTTP/1.1\r\nHost: c.example\r\n\r\n" + body
        frames = Conversation(port, FAKENET, 443).stream(request).frames
        out = tmp_path / str(port)
        out.mkdir()
        (f,) = [x for x in run(out, frames=frames, syscalls=timeouts_trace())
                if x.canary.item_id == contact.id and x.canary.field == "email"]
        assert f.evidence[0].artifact == "pcap"
        assert f.process is not None and f.process.pid == pid, port


def test_a_reused_port_goes_to_whoever_held_it_then(tmp_path: Path) -> None:
    sms = canaries().sms[1]
    later = T0 + 4 * 3600
    flows = [flow_record(f"up{i}", at + 0.01, host="upload.example", path="/sms", tls=True,
                         body=json.dumps({"body": sms.body}).encode(), client=f"{DEVICE}:{UPLOADER_PORT}")
             for i, at in enumerate((T0, later))]
    found = [x for x in run(tmp_path, flows=flows, syscalls=timeouts_trace(reuse_at=later))
             if x.canary.item_id == sms.id]
    assert [(f.host_time, f.process.pid if f.process else None) for f in found] == [
        (T0 + 0.01, UPLOADER), (later + 0.01, POLLER)]


def test_a_socket_idle_between_connect_and_send_is_found_by_its_port(tmp_path: Path) -> None:
    """Both connect at once; the uploader's socket sits idle for 20 s before
    its first send.  At the connect time only time would speak (and name the
    poller); the port at the data time names the uploader."""
    contact = canaries().contacts[2]
    assert contact.email is not None
    request = b"POST /c HTTP/1.1\r\nHost: c.example\r\n\r\n" + json.dumps({"email": contact.email}).encode()
    frames = Conversation(UPLOADER_PORT, FAKENET, 443).stream(request).frames  # SYN at T0, data at T0+20
    summary = summarize([
        Exec(POLLER, T0 - 9, "/system/priv-app/timeouts/poller.py", ("poller.py",)),
        Exec(UPLOADER, T0 - 8, "/system/priv-app/timeouts/uploader.py", ("uploader.py",)),
        Connect(POLLER, T0, "AF_INET", FAKENET, 443, True, False, 5, "TCP"),
        Send(POLLER, T0 + 0.002, 5, "AF_INET", FAKENET, 443, 517, "write", "TCP", DEVICE, POLLER_PORT),
        Connect(UPLOADER, T0, "AF_INET", FAKENET, 443, True, False, 7, "TCP"),
        Send(UPLOADER, T0 + 20.0, 7, "AF_INET", FAKENET, 443, len(request), "write", "TCP", DEVICE,
             UPLOADER_PORT),
    ])
    (f,) = [x for x in run(tmp_path, frames=frames, step=10.0, syscalls=summary)
            if x.canary.item_id == contact.id and x.canary.field == "email"]
    assert f.process is not None and f.process.pid == UPLOADER


def test_device_port_parsing() -> None:
    assert device_port("10.213.0.3:40000") == 40000
    assert device_port("fd00::3:40000") == 40000
    assert device_port("[fd00::3]:40000") == 40000
    assert device_port(None) is None
    assert device_port("10.213.0.3") is None
    assert device_port("10.213.0.3:0") is None
    assert device_port("10.213.0.3:99999") is None


def test_detect_function_builds_its_own_scanner() -> None:
    email = canaries().contacts[1].email
    assert email is not None
    p = Payload("udp", f"x={email}".encode(), None, "192.0.2.2", 9, T0, "pcap", "frame 1")
    (f,) = detect(canaries(), [p], IDENTITY, None)
    assert (f.canary.field, f.channel, f.process) == ("email", "udp", None)


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=2000), _TEXT.map(str.encode),
                      st.lists(_TEXT, max_size=8).map(lambda xs: "&".join(xs).encode()),
                      st.binary(max_size=600).map(base64.b64encode),
                      st.binary(max_size=600).map(gzip.compress)),
       channel=st.sampled_from(["http", "https", "tcp", "udp", "dns"]))
def test_random_non_canary_traffic_never_yields_findings(data: bytes, channel: str) -> None:
    p = Payload(channel, data, None, "192.0.2.3", 80, T0, "pcap", "random")  # type: ignore[arg-type]
    assert detector().matches(p) == []


def _kitchen_sink_stats(cs: CanarySet) -> bytes:
    """The kitchen sink's md5-b64 body: per SMS the upper-case hex MD5 and the
    base64 of its body plus the base64 of its sender; per contact the MD5 of
    its number and the base64 of its name."""
    def md5u(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest().upper()

    def b64s(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    events = [{"md5": md5u(s.body), "keyword": b64s(s.body), "tell": b64s(s.address), "msg_date": "1"}
              for s in cs.sms]
    contacts = [{"hash": md5u(c.number), "n": b64s(c.display_name)} for c in cs.contacts]
    return json.dumps({"events": events, "contacts": contacts}, separators=(",", ":")).encode()


@pytest.mark.parametrize("seed", range(12))
def test_digest_findings_do_not_depend_on_the_canary_values(tmp_path: Path, seed: int) -> None:
    # With 4 contacts and 4 SMS, some seeds make every contact an SMS sender:
    # each contact number then also leaves as base64 ("tell").  A digest used
    # to fold into such a copy, so the MD5 style came and went with the
    # canaries (the farm parity test saw it).  A digest is its own finding.
    cs = generate(CanarySpec(seed=seed, analysis_id=f"digest-{seed}", contacts=4, sms=4, calls=4))
    fk = tmp_path / "fakenet"
    fk.mkdir()
    write_jsonl(fk / "flows.jsonl", [flow_record("s1", T0, host="api.example.org", path="/v2/stats",
                                                 body=_kitchen_sink_stats(cs), tls=True)])
    write_jsonl(fk / "dns.jsonl", [])
    found = Detector(cs).detect(iter_payloads(DEVICE, pcap=None, fakenet_dir=fk), IDENTITY, None)
    got = {(f.canary.kind, f.canary.item_id, f.canary.field, f.encoding) for f in found}
    for s in cs.sms:
        assert {("sms", s.id, "body", ("base64",)), ("sms", s.id, "body", ("md5-hex-upper",))} <= got
        assert ("sms", s.id, "address", ("base64",)) in got
    for c in cs.contacts:
        assert {("contact", c.id, "number", ("md5-hex-upper",)), ("contact", c.id, "name", ("base64",))} <= got
    assert {f.encoding for f in found} == {("base64",), ("md5-hex-upper",)}
