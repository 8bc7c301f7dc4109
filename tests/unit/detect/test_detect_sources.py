"""Payload sources: TCP reassembly from real (dpkt-built) pcaps, UDP, DNS names,
decrypted flows and the fakenet's raw logs."""

from __future__ import annotations

import io
import json
import random
import socket
import struct
from pathlib import Path

import pytest
from detect_helpers import (
    ACK,
    DEVICE,
    FAKENET,
    RST,
    Conversation,
    b64,
    dns_answer,
    dns_query,
    flow_record,
    pcap_bytes,
    tcp_frame,
    timed,
    udp_fragments,
    udp_frame,
    write_jsonl,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.detect.reassembly import TcpLimits, TcpReassembler
from sandbox.detect.destinations import HostIndex, client_hello_sni
from sandbox.detect.payloads import Payload, SourceLimits, SourceStats
from sandbox.detect.pcap_source import pcap_payloads
from sandbox.detect.sources import iter_payloads

MSG = b"POST /up HTTP/1.1\r\nHost: collector.example\r\nContent-Length: 27\r\n\r\ntell=+15405550123&imei=0042"


def payloads(frames: list[bytes], **kw: object) -> tuple[list[Payload], SourceStats]:
    stats = SourceStats()
    out = list(pcap_payloads(pcap_bytes(timed(frames)), DEVICE, stats=stats, **kw))  # type: ignore[arg-type]
    return out, stats


def only_tcp(ps: list[Payload]) -> list[Payload]:
    return [p for p in ps if p.channel in ("http", "https", "tcp")]


def client_hello(name: str) -> bytes:
    sni_name = name.encode()
    entry = b"\x00" + struct.pack("!H", len(sni_name)) + sni_name
    ext = struct.pack("!HH", 0, len(entry) + 2) + struct.pack("!H", len(entry)) + entry
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + struct.pack("!H", len(ext)) + ext
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


# -- TCP reassembly ------------------------------------------------------------


def test_in_order_stream_is_one_http_payload_named_by_its_host_header() -> None:
    c = Conversation(40000, FAKENET, 80).stream(MSG, segment=10)
    (p,), stats = payloads(c.frames)
    assert p.data == MSG and p.channel == "http" and p.base_offset == 0
    assert (p.host, p.host_source, p.ip, p.port, p.client) == (
        "collector.example", "http-host", FAKENET, 80, f"{DEVICE}:40000")
    assert p.artifact == "pcap" and "10.88.0.3:40000->10.88.0.2:80" in p.locator
    assert p.connect_ts == 1_700_000_000.0  # the SYN
    assert p.ts_at(0) < p.ts_at(len(MSG) - 1)  # later segments, later times
    assert stats.tcp.streams == 1 and stats.capture_error is None


def test_out_of_order_segments_are_put_back_in_sequence() -> None:
    c = Conversation(40001, FAKENET, 80).syn()
    pieces = [(off, MSG[off:off + 9]) for off in range(0, len(MSG), 9)]
    random.Random(3).shuffle(pieces)
    for off, piece in pieces:
        c.send(off, piece)
    c.fin(len(MSG))
    (p,), _ = payloads(c.frames)
    assert p.data == MSG


def test_retransmissions_and_overlaps_with_equal_bytes_change_nothing() -> None:
    c = Conversation(40002, FAKENET, 80).syn()
    c.send(0, MSG[:30]).send(0, MSG[:30]).send(20, MSG[20:50]).send(10, MSG[10:40]).send(50, MSG[50:])
    c.send(45, MSG[45:60]).fin(len(MSG)).send(0, MSG[:5])  # and a retransmission after the FIN
    ps, stats = payloads(c.frames)
    assert [p.data for p in only_tcp(ps)] == [MSG]
    assert stats.tcp.conflicting_streams == 0


def test_conflicting_overlap_keeps_first_copy_and_reports_the_alternative() -> None:
    c = Conversation(40003, FAKENET, 4444).syn()
    c.send(0, b"number=+1540").send(12, b"5550123;").send(12, b"XXXXXXX;").fin(20)
    ps, stats = payloads(c.frames)
    main = [p for p in ps if "alternate" not in p.locator]
    alt = [p for p in ps if "alternate" in p.locator]
    assert [p.data for p in main] == [b"number=+15405550123;"]
    assert [p.data for p in alt] == [b"number=+1540XXXXXXX;"]
    assert stats.tcp.conflicting_streams == 1


def test_a_hole_splits_the_stream_without_inventing_bytes() -> None:
    c = Conversation(40004, FAKENET, 4444).syn()
    c.send(0, b"first part|").send(20, b"|second part").fin(32)
    ps, _ = payloads(c.frames)
    assert [(p.base_offset, p.data) for p in ps] == [(0, b"first part|"), (20, b"|second part")]


def test_capture_without_the_syn_starts_at_the_lowest_sequence_number() -> None:
    data = random.Random(1).randbytes(700)
    c = Conversation(40005, FAKENET, 443, isn=4_294_967_000)  # and the sequence numbers wrap
    c.send(300, data[300:]).send(0, data[:300])
    ps, _ = payloads(c.frames)
    assert [p.data for p in ps] == [data] and ps[0].connect_ts == ps[0].ts_at(300)
    assert ps[0].channel == "https"  # no start seen: port 443 decides


def test_late_syn_reanchors_the_stream() -> None:
    c = Conversation(40006, FAKENET, 4444)
    c.send(5, b"world").syn().send(0, b"hello")
    (p,), _ = payloads(c.frames)
    assert (p.base_offset, p.data) == (0, b"helloworld")


def test_answers_to_the_device_are_never_payloads() -> None:
    c = Conversation(40007, FAKENET, 80).syn().send(0, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
    c.answer(b"HTTP/1.1 200 OK\r\n\r\nsecret-from-server").fin(35)
    frames = c.frames + [udp_frame(FAKENET, 9999, DEVICE, 5000, b"udp-from-server")]
    ps, _ = payloads(frames)
    assert all(b"from-server" not in p.data for p in ps)
    assert all(p.client is not None and p.client.startswith(DEVICE) for p in ps)


def test_port_reuse_with_a_new_isn_is_a_new_connection() -> None:
    a = Conversation(40008, FAKENET, 4444, isn=100).stream(b"first connection")
    b = Conversation(40008, FAKENET, 4444, isn=90_000).stream(b"second connection")
    ps, stats = payloads(a.frames + b.frames)
    assert [p.data for p in ps] == [b"first connection", b"second connection"]
    assert "connection #2" in ps[1].locator and stats.tcp.streams == 2


def test_rst_ends_a_stream() -> None:
    c = Conversation(40009, FAKENET, 4444).syn().send(0, b"payload before reset")
    c.frames.append(tcp_frame(DEVICE, 40009, FAKENET, 4444, 1001 + 20, RST | ACK))
    (p,), _ = payloads(c.frames)
    assert p.data == b"payload before reset"


def test_tls_stream_is_https_named_by_sni() -> None:
    hello = client_hello("api.tracker.example")
    assert client_hello_sni(hello) == "api.tracker.example"
    assert client_hello_sni(hello[:20]) is None and client_hello_sni(b"\x16\x03") is None
    c = Conversation(40010, FAKENET, 8443).stream(hello + bytes(range(256)) * 4)
    (p,), _ = payloads(c.frames)
    assert (p.channel, p.host, p.host_source) == ("https", "api.tracker.example", "sni")


def test_raw_tcp_to_a_resolved_name_gets_the_dns_guess_and_literal_ips_none() -> None:
    frames = [
        udp_frame(DEVICE, 5353, FAKENET, 53, dns_query("c2.evil.example")),
        udp_frame(FAKENET, 53, DEVICE, 5353, dns_answer("c2.evil.example", FAKENET)),
    ]
    frames += Conversation(40011, FAKENET, 4444).stream(b"\x01\x02binary beacon").frames
    frames += Conversation(40012, "198.51.100.7", 4444).stream(b"\x01\x02literal beacon").frames
    ps, _ = payloads(frames)
    by_ip = {p.ip: p for p in only_tcp(ps)}
    assert (by_ip[FAKENET].host, by_ip[FAKENET].host_source, by_ip[FAKENET].channel) == (
        "c2.evil.example", "dns", "tcp")
    assert by_ip["198.51.100.7"].host is None


def test_stream_size_and_count_limits() -> None:
    limits = SourceLimits(tcp=TcpLimits(max_stream_bytes=1000, max_streams=2, chunk_bytes=4000))
    frames = []
    for i in range(5):
        c = Conversation(41000 + i, FAKENET, 4444).syn().send(0, bytes([65 + i]) * 1500)
        frames += c.frames  # never closed: eviction must emit them
    ps, stats = payloads(frames, limits=limits)
    assert sorted(p.data for p in ps) == [bytes([65 + i]) * 1000 for i in range(5)]
    assert stats.tcp.truncated_bytes == 5 * 500 and stats.tcp.evicted_streams == 3


def test_long_stream_is_chunked_with_overlap_and_stays_complete() -> None:
    data = random.Random(5).randbytes(50_000)
    limits = SourceLimits(tcp=TcpLimits(chunk_bytes=8_000, chunk_overlap=500))
    ps, _ = payloads(Conversation(41010, FAKENET, 4444).stream(data).frames, limits=limits)
    assert len(ps) > 5 and all(len(p.data) <= 8_000 + 1460 for p in ps)
    rebuilt = bytearray(len(data))
    for p in ps:
        rebuilt[p.base_offset:p.base_offset + len(p.data)] = p.data
    assert bytes(rebuilt) == data
    assert all(a.base_offset + len(a.data) - b.base_offset == 500 for a, b in zip(ps, ps[1:]))


def test_memory_pressure_flushes_the_largest_buffer() -> None:
    limits = SourceLimits(tcp=TcpLimits(max_buffered_bytes=3000))
    frames = []
    for i in range(3):
        frames += Conversation(41020 + i, FAKENET, 4444).syn().send(0, bytes([97 + i]) * 1400).frames
    ps, stats = payloads(frames, limits=limits)
    assert sorted(p.data for p in ps) == [bytes([97 + i]) * 1400 for i in range(3)]
    assert stats.tcp.pressure_flushes >= 1


def test_tiny_segment_floods_are_chunked_by_count() -> None:
    data = bytes(range(256)) * 2
    c = Conversation(41030, FAKENET, 4444).syn()
    for off in range(len(data)):
        c.send(off, data[off:off + 1])
    ps, _ = payloads(c.fin(len(data)).frames, limits=SourceLimits(tcp=TcpLimits(max_segments=100, chunk_overlap=10)))
    assert len(ps) >= 5
    rebuilt = bytearray(len(data))
    for p in ps:
        rebuilt[p.base_offset:p.base_offset + len(p.data)] = p.data
    assert bytes(rebuilt) == data


def test_an_evicted_stream_continues_at_its_offset() -> None:
    a, b = Conversation(41040, FAKENET, 4444).syn(), Conversation(41041, FAKENET, 4444).syn()
    for i in range(4):  # interleaved: with room for one stream, each evicts the other
        a.send(i * 4, b"A%03d" % i)
        b.send(i * 4, b"B%03d" % i)
    frames = [f for pair in zip(a.frames, b.frames) for f in pair]
    ps, stats = payloads(frames, limits=SourceLimits(tcp=TcpLimits(max_streams=1)))
    for port, letter in ((41040, b"A"), (41041, b"B")):
        mine = sorted((p.base_offset, p.data) for p in ps if p.client == f"{DEVICE}:{port}")
        assert b"".join(d for _, d in mine) == b"".join(letter + b"%03d" % i for i in range(4))
        assert [o for o, _ in mine] == [0, 4, 8, 12]
    assert stats.tcp.streams == 2 and stats.tcp.evicted_streams >= 6


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=400), cuts=st.lists(st.integers(0, 400), max_size=12),
       seed=st.integers(0, 2**16), dup=st.floats(0, 1), isn=st.integers(0, 2**32 - 1))
def test_any_segmentation_order_and_duplication_reassembles_the_stream(
    data: bytes, cuts: list[int], seed: int, dup: float, isn: int
) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    segs = [(a, data[a:b]) for a, b in zip(bounds, bounds[1:])]
    rng = random.Random(seed)
    segs += [s for s in segs if rng.random() < dup]  # retransmissions
    rng.shuffle(segs)
    r = TcpReassembler()
    key = (DEVICE, 1, FAKENET, 2)
    out = r.add(key, isn, 0x02, b"", 0.0, 1)
    for i, (off, piece) in enumerate(segs):
        out += r.add(key, (isn + 1 + off) % 2**32, 0, piece, float(i), i + 2)
    out += r.flush()
    assert [(c.offset, c.data) for c in out] == [(0, data)]


# -- UDP and DNS -------------------------------------------------------------------


def test_udp_datagrams_and_fragments() -> None:
    big = b"A" * 1000 + b"+15405550123" + b"B" * 1000
    frames = [udp_frame(DEVICE, 6000, "192.0.2.9", 9999, b"small datagram")]
    frames += udp_fragments(DEVICE, 6001, "192.0.2.9", 9999, big, size=504)[::-1]  # out of order too
    ps, stats = payloads(frames)
    assert [(p.channel, p.data, p.ip, p.port) for p in ps] == [
        ("udp", b"small datagram", "192.0.2.9", 9999), ("udp", big, "192.0.2.9", 9999)]
    assert stats.udp_datagrams == 2


def test_dns_query_names_dotted_and_joined() -> None:
    name = "2b313534303535.3530313233.x.evil.example"
    ps, stats = payloads([udp_frame(DEVICE, 7000, FAKENET, 53, dns_query(name, "TXT"))])
    (p,) = ps
    assert (p.channel, p.host, p.host_source, p.ip, p.port) == ("dns", name, "query", FAKENET, 53)
    assert name.encode() in p.data
    assert b"2b3135343035353530313233xevilexample" in p.data  # the split value is whole again
    assert stats.dns_queries == 1


def test_dns_over_tcp_and_non_dns_on_port_53() -> None:
    q = dns_query("abc.tunnel.example")
    frames = Conversation(42000, FAKENET, 53).stream(len(q).to_bytes(2, "big") + q).frames
    frames.append(udp_frame(DEVICE, 7001, FAKENET, 53, b"not a dns message at all, just bytes"))
    ps, _ = payloads(frames)
    assert [(p.channel, p.host) for p in ps] == [("dns", "abc.tunnel.example"), ("udp", None)]


def test_damaged_and_foreign_captures_never_raise() -> None:
    frames = Conversation(42001, FAKENET, 4444).syn().send(0, b"complete stream").frames
    good = pcap_bytes(timed(frames + [tcp_frame(DEVICE, 42001, FAKENET, 4444, 1016, 0x11)])).getvalue()
    last = len(good) - 54 - 16  # where the FIN's record header starts
    for cut, error in ((last + 30, False), (last + 9, True)):  # torn frame / torn record header
        stats = SourceStats()
        ps = list(pcap_payloads(io.BytesIO(good[:cut]), DEVICE, stats=stats))
        assert [p.data for p in ps] == [b"complete stream"]
        assert (stats.capture_error is not None) == error
    stats = SourceStats()
    assert list(pcap_payloads(io.BytesIO(b"this is not a pcap file"), DEVICE, stats=stats)) == []
    assert stats.capture_error is not None
    garbage = [bytes(random.Random(i).randbytes(60)) for i in range(50)]
    ps, stats = payloads(garbage + [tcp_frame(DEVICE, 1, FAKENET, 2, 0, 0x18, b"x")[:40]])
    assert stats.frames == 51


def test_missing_pcap_file_is_a_recorded_error(tmp_path: Path) -> None:
    stats = SourceStats()
    assert list(pcap_payloads(tmp_path / "none.pcap", DEVICE, stats=stats)) == []
    assert stats.capture_error is not None


def test_host_index_picks_the_latest_matching_query() -> None:
    idx = HostIndex()
    idx.add(100.0, DEVICE, "old.example", FAKENET)
    idx.add(110.0, DEVICE, "other-ip.example", "10.9.9.9")
    idx.add(120.0, DEVICE, "new.example", FAKENET)
    idx.add(130.0, DEVICE, "after.example", FAKENET)
    assert idx.lookup(DEVICE, FAKENET, 125.0) == "new.example"
    assert idx.lookup(DEVICE, FAKENET, 115.0) == "old.example"
    assert idx.lookup(DEVICE, "10.9.9.9", 125.0) == "other-ip.example"
    assert idx.lookup(DEVICE, FAKENET, 99.0) is None
    assert idx.lookup("10.88.0.99", FAKENET, 125.0) is None
    assert idx.lookup(DEVICE, FAKENET, 120.0 + 4000) is None  # too old


# -- fakenet logs --------------------------------------------------------------------


def test_flows_give_requests_never_responses(tmp_path: Path) -> None:
    rec = flow_record("f1", 1_700_000_001.0, host="api.tracker.example", path="/v1/upload?x=1",
                      body=b'{"contacts": "abc"}', tls=True, response_body=b"SERVER-ONLY")
    zstd = flow_record("f2", 1_700_000_002.0, host="api.tracker.example", path="/z", body=b"\x28\xb5\x2f\xfd..",
                       headers=[["Content-Encoding", "zstd"]])
    zstd["request_body_decoded_b64"] = b64(b"decoded by the fakenet")
    write_jsonl(tmp_path / "flows.jsonl", [rec, zstd])
    (tmp_path / "flows.jsonl").open("a").write("{torn line\n")
    stats = SourceStats()
    ps = list(iter_payloads(DEVICE, fakenet_dir=tmp_path, stats=stats))
    assert [p.locator for p in ps] == ["f1", "f2", "f2 (body, zstd undone)"]
    first = ps[0]
    assert first.data.startswith(b"POST /v1/upload?x=1 HTTP/1.1\r\nHost: api.tracker.example\r\n")
    assert first.data.endswith(b'\r\n\r\n{"contacts": "abc"}')
    assert all(b"SERVER-ONLY" not in p.data for p in ps)
    assert (first.channel, first.host, first.host_source, first.ip, first.port) == (
        "https", "api.tracker.example", "http-host", FAKENET, 443)
    assert ps[2].pre_chain == ("zstd",) and ps[2].data == b"decoded by the fakenet"
    assert stats.flows == 2 and stats.malformed_records == 1


def test_iter_payloads_joins_every_source(tmp_path: Path) -> None:
    fk = tmp_path / "fakenet"
    t0 = 1_700_000_000.0
    write_jsonl(fk / "flows.jsonl", [flow_record("f1", t0 + 0.5, host="collector.example", path="/t",
                                                 client=f"{DEVICE}:40000", conn="c1")])
    write_jsonl(fk / "connections.jsonl", [{"ts": t0 + 0.1, "id": "c1", "client": f"{DEVICE}:40000",
                                            "orig_dst": f"{FAKENET}:80", "kind": "http"}])
    write_jsonl(fk / "dns.jsonl", [{"ts": t0, "client": f"{DEVICE}:5353", "name": "raw.example", "type": "A",
                                    "proto": "udp", "id": 1}])
    write_jsonl(fk / "tcp.jsonl", [{"ts": t0 + 1, "id": "r1", "client": f"{DEVICE}:40001",
                                    "orig_dst": f"{FAKENET}:4444", "bytes": 4, "sha256": "",
                                    "head_b64": b64(b"RAW!"), "head_truncated": False}])
    write_jsonl(fk / "udp.jsonl", [{"ts": t0 + 2, "client": f"{DEVICE}:6000", "orig_dst": None, "bytes": 3,
                                    "sha256": "", "head_b64": b64(b"UDP")}])
    (fk / "ready").write_text(json.dumps({"ip": FAKENET, "answer_ip": FAKENET}))
    frames = [udp_frame(DEVICE, 5353, FAKENET, 53, dns_query("raw.example"))]
    frames += Conversation(40000, FAKENET, 80).stream(b"GET /t HTTP/1.1\r\n\r\n").frames  # no Host header
    frames += [udp_frame(DEVICE, 6000, "192.0.2.9", 9999, b"UDP")]
    pcap = tmp_path / "bridge.pcap"
    pcap.write_bytes(pcap_bytes(timed(frames, start=t0, step=0.5)).getvalue())
    ps = list(iter_payloads(DEVICE, pcap=pcap, fakenet_dir=fk))
    got = {(p.artifact, p.channel): p for p in ps}
    assert set(got) == {("flows", "http"), ("pcap", "dns"), ("pcap", "http"), ("pcap", "udp"),
                        ("dns", "dns"), ("tcp", "tcp"), ("udp", "udp")}
    assert got["flows", "http"].connect_ts == t0 + 0.1
    assert (got["pcap", "http"].host, got["pcap", "http"].host_source) == ("collector.example", "flow")
    assert (got["tcp", "tcp"].host, got["tcp", "tcp"].host_source) == ("raw.example", "dns")
    assert (got["udp", "udp"].ip, got["udp", "udp"].port) == ("192.0.2.9", 9999)  # recovered from the pcap
    assert (got["dns", "dns"].ip, got["dns", "dns"].host) == (FAKENET, "raw.example")


@pytest.mark.parametrize("linktype", [113, 101])
def test_other_link_types(linktype: int) -> None:
    import dpkt

    frame = Conversation(43000, FAKENET, 4444).stream(b"over another link").frames
    out = io.BytesIO()
    w = dpkt.pcap.Writer(out, linktype=linktype)
    for i, f in enumerate(frame):
        ip = f[14:]
        w.writepkt((b"\x00\x00\x00\x01\x00\x06" + bytes(8) + b"\x08\x00" + ip) if linktype == 113 else ip, ts=i)
    out.seek(0)
    (p,) = list(pcap_payloads(out, DEVICE))
    assert p.data == b"over another link"


def test_pcapng_ipv6_and_empty_captures() -> None:
    import dpkt

    v6 = socket.inet_pton(socket.AF_INET6, "fd00::3"), socket.inet_pton(socket.AF_INET6, "2001:db8::9")
    udp = struct.pack("!HHHH", 5000, 9999, 8 + 5, 0) + b"hello"
    ip6 = b"\x60\x00\x00\x00" + struct.pack("!HBB", len(udp), 17, 64) + v6[0] + v6[1] + udp
    eth = b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + ip6
    out = io.BytesIO()
    w = dpkt.pcapng.Writer(out, linktype=dpkt.pcap.DLT_EN10MB)
    w.writepkt(eth, ts=1.0)
    out.seek(0)
    (p,) = list(pcap_payloads(out, "fd00::3"))
    assert (p.channel, p.data, p.ip, p.port) == ("udp", b"hello", "2001:db8::9", 9999)
    stats = SourceStats()
    assert list(pcap_payloads(io.BytesIO(b""), DEVICE, stats=stats)) == [] and stats.capture_error
