"""Pure logic of the fakenet daemon (runs on the host, no container, no root).

SO_ORIGINAL_DST / IP_ORIGDSTADDR parsing, protocol sniffing and ClientHello
SNI extraction (against a real ClientHello made by Python's ssl), the DNS
resolver's answers and log records, the CONNECT the catch-all sends, the
catch-all's peek, and the iptables rules the fakenet installs in its netns.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, DNSRecord
from hypothesis import given
from hypothesis import strategies as st

FAKENET_DIR = Path(__file__).resolve().parents[3] / "emulator_images" / "fakenet"
if str(FAKENET_DIR) not in sys.path:
    sys.path.insert(0, str(FAKENET_DIR))

from fakenetd import catchall, firewall, origdst, sniff, udpsink  # noqa: E402
from fakenetd.config import Config  # noqa: E402
from fakenetd.dns import CatchAllResolver  # noqa: E402


# -- SO_ORIGINAL_DST -------------------------------------------------------------


def sockaddr_in(ip: str, port: int) -> bytes:
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(ip) + b"\0" * 8


def test_parse_sockaddr_in() -> None:
    assert origdst.parse_sockaddr_in(sockaddr_in("203.0.113.7", 4444)) == ("203.0.113.7", 4444)
    assert origdst.parse_sockaddr_in(sockaddr_in("192.0.2.1", 65535)) == ("192.0.2.1", 65535)


def test_parse_sockaddr_in_rejects_other_families_and_short_input() -> None:
    raw = struct.pack("=H", socket.AF_INET6) + b"\0" * 14
    with pytest.raises(ValueError):
        origdst.parse_sockaddr_in(raw)
    with pytest.raises(ValueError):
        origdst.parse_sockaddr_in(b"\x02\x00")


def test_udp_orig_dst_from_ancillary() -> None:
    anc = [(socket.SOL_SOCKET, 1, b"x"), (socket.SOL_IP, udpsink.IP_ORIGDSTADDR, sockaddr_in("192.0.2.9", 9999))]
    assert udpsink.orig_dst_from_ancillary(anc) == ("192.0.2.9", 9999)
    assert udpsink.orig_dst_from_ancillary([]) is None


def test_datagram_record() -> None:
    rec = udpsink.datagram_record(b"x" * 2000, ("10.0.0.3", 5000), 1024, ("192.0.2.9", 9999))
    assert rec["client"] == "10.0.0.3:5000" and rec["orig_dst"] == "192.0.2.9:9999"
    assert rec["bytes"] == 2000 and len(rec["head_b64"]) == 1368  # 1024 bytes, base64


# -- sniffing ------------------------------------------------------------------------


def client_hello(server_name: str | None) -> bytes:
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_classify() -> None:
    hello = client_hello("api.example.com")
    assert sniff.classify(hello) == "tls"
    assert sniff.classify(b"GET / HTTP/1.1\r\n") == "http"
    assert sniff.classify(b"POST /x HTTP/1.1\r\n") == "http"
    assert sniff.classify(b"PRI * HTTP/2.0\r\n") == "http"
    assert sniff.classify(b"\x00\x01raw") == "tcp"
    assert sniff.classify(b"SSH-2.0-OpenSSH\r\n") == "tcp"
    assert sniff.classify(b"GETX / HTTP/1.1") == "tcp"


def test_classify_waits_for_ambiguous_prefixes() -> None:
    assert sniff.classify(b"") is None
    assert sniff.classify(b"\x16") is None
    assert sniff.classify(b"GE") is None
    assert sniff.classify(b"PROP") is None
    assert sniff.classify(b"\x16\x01") == "tcp"


def test_client_hello_sni() -> None:
    assert sniff.client_hello_sni(client_hello("pinned.example")) == "pinned.example"
    assert sniff.client_hello_sni(client_hello(None)) is None


@given(st.binary(max_size=600))
def test_sniffing_garbage_never_raises(data: bytes) -> None:
    sniff.classify(data)
    sniff.client_hello_sni(b"\x16\x03\x01" + data)


def test_client_hello_sni_truncated() -> None:
    hello = client_hello("api.example.com")
    for cut in range(0, len(hello), 7):
        sniff.client_hello_sni(hello[:cut])  # never raises


# -- DNS ------------------------------------------------------------------------------


class FakeHandler:
    client_address = ("10.213.0.3", 40000)
    protocol = "udp"


def make_resolver() -> tuple[CatchAllResolver, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    return CatchAllResolver("10.213.0.2", "honeyphone-fakenet", 60, records.append), records


def test_dns_a_points_at_fakenet() -> None:
    r, _ = make_resolver()
    reply = r.answer(DNSRecord.question("tracker.example", "A"))
    assert reply.header.rcode == 0
    assert [str(rr.rdata) for rr in reply.rr] == ["10.213.0.2"]


def test_dns_aaaa_is_empty_noerror() -> None:
    r, _ = make_resolver()
    reply = r.answer(DNSRecord.question("tracker.example", "AAAA"))
    assert reply.header.rcode == 0 and reply.rr == []


def test_dns_txt_answers_fixed_text() -> None:
    r, _ = make_resolver()
    reply = r.answer(DNSRecord.question("leak.example", "TXT"))
    assert reply.rr[0].rtype == QTYPE.TXT
    assert b"".join(reply.rr[0].rdata.data) == b"honeyphone-fakenet"


def test_dns_long_txt_is_split_into_strings() -> None:
    r = CatchAllResolver("10.213.0.2", "x" * 600, 60, lambda _r: None)
    reply = DNSRecord.parse(r.answer(DNSRecord.question("leak.example", "TXT")).pack())
    assert [len(c) for c in reply.rr[0].rdata.data] == [255, 255, 90]


@pytest.mark.parametrize("qtype", ["MX", "SRV", "PTR", "NS", "CNAME"])
def test_dns_other_types_are_empty_noerror(qtype: str) -> None:
    r, _ = make_resolver()
    reply = r.answer(DNSRecord.question("x.example", qtype))
    assert reply.header.rcode == 0 and reply.rr == []


def test_dns_resolve_logs_each_query() -> None:
    r, records = make_resolver()
    q = DNSRecord.question("IMEI-123.Exfil.example", "TXT")
    reply = r.resolve(q, FakeHandler())
    assert reply.header.id == q.header.id
    assert records[0]["client"] == "10.213.0.3:40000"
    assert records[0]["name"] == "IMEI-123.Exfil.example"
    assert records[0]["type"] == "TXT" and records[0]["proto"] == "udp"
    assert isinstance(records[0]["ts"], float)


# -- catch-all -----------------------------------------------------------------------


def test_connect_request() -> None:
    raw = catchall.connect_request(("203.0.113.5", 8443), "10.213.0.3:41000", "abc")
    assert raw.startswith(b"CONNECT 203.0.113.5:8443 HTTP/1.1\r\nHost: 203.0.113.5:8443\r\n")
    assert b"X-Honeyphone-Client: 10.213.0.3:41000\r\n" in raw
    assert raw.endswith(b"X-Honeyphone-Conn: abc\r\n\r\n")


def run_peek(chunks: list[bytes], eof: bool, timeout: float = 0.2) -> tuple[bytes, str]:
    async def go() -> tuple[bytes, str]:
        reader = asyncio.StreamReader()

        async def feed() -> None:
            for c in chunks:
                reader.feed_data(c)
                await asyncio.sleep(0.01)
            if eof:
                reader.feed_eof()

        task = asyncio.ensure_future(feed())
        result = await catchall.peek(reader, timeout)
        await task
        return result

    return asyncio.run(go())


def test_peek_http_split_across_chunks() -> None:
    assert run_peek([b"PO", b"ST /a HTTP/1.1\r\n"], eof=False) == (b"POST /a HTTP/1.1\r\n", "http")


def test_peek_server_first_client_times_out_as_tcp() -> None:
    assert run_peek([], eof=False, timeout=0.05) == (b"", "tcp")


def test_peek_eof_and_raw() -> None:
    assert run_peek([b"GE"], eof=True) == (b"GE", "tcp")
    assert run_peek([b"\x00\x01\x02"], eof=False) == (b"\x00\x01\x02", "tcp")


# -- iptables in the fakenet ------------------------------------------------------------


def test_fakenet_nat_rules_redirect_everything_from_the_device() -> None:
    ports = firewall.Ports(dns=5353, catchall=15000, udp_sink=15001)
    rules = firewall.nat_rules("eth0", ports, udp_redirect=False)
    assert all(r[:4] == ["-A", "PREROUTING", "-i", "eth0"] for r in rules)
    dns = [r for r in rules if "53" in r]
    assert {r[r.index("-p") + 1] for r in dns} == {"udp", "tcp"}
    assert all(r[-2:] == ["--to-ports", "5353"] for r in dns)
    # DNS first, then all TCP (no --dport: any port, any address) to the catch-all.
    assert rules[-1] == ["-A", "PREROUTING", "-i", "eth0", "-p", "tcp", "-j", "REDIRECT", "--to-ports", "15000"]
    assert len(firewall.nat_rules("eth0", ports, udp_redirect=True)) == 4


def test_fakenet_tproxy_rule_skips_dns() -> None:
    (rule,) = firewall.tproxy_rules("eth0", firewall.Ports(5353, 15000, 15001))
    assert rule[rule.index("!") + 1:rule.index("!") + 3] == ["--dport", "53"]
    assert rule[rule.index("--on-port") + 1] == "15001"


def test_fakenet_never_initiates() -> None:
    assert firewall.filter_rules("eth0") == [
        ["-A", "OUTPUT", "-o", "eth0", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]
    ]


def test_config_from_env() -> None:
    cfg = Config.from_env({"HONEYPHONE_FAKENET_ANSWER_IP": "10.9.9.2", "HONEYPHONE_FAKENET_HTTP_BODY": "OK",
                           "HONEYPHONE_FAKENET_PEEK_TIMEOUT": "0.5"})
    assert cfg.answer_ip == "10.9.9.2" and cfg.http_body == "OK" and cfg.peek_timeout_s == 0.5
    assert Config.from_env({}).answer_ip is None
