"""The analysis verdict: ``leak``, ``suspicious`` or ``clean``, with reasons.

* ``leak``: at least one finding.  A canary in the traffic is proof.
* ``suspicious``: no finding, but a process that read a canary store later
  sent data the fakenet could not read.  A process counts as a reader when
  it, or one of its ancestors, opened a store or ran ``content query`` on
  one (the parent of a ``content`` command gets its rows).  Exactly two kinds of sending count,
  each attributed to a process by the syscall summary -- by the device
  socket's port (``who_owned``; the client port the fakenet or the capture
  saw, so two processes reaching the one fakenet address at the same moment
  are told apart) at the time given below and then at the failure's or
  data's own time, else by time alone (``who_connected``) at the time given
  below -- and counted only at or after that process' first read of a store:

  1. a TLS connection whose handshake with the fakenet failed
     (``tls_failures.jsonl``), looked up at the handshake's start (the
     failure's time less ``handshake_ms``; the failure's time when unknown).  The reason
     says "rejected the certificate" only when the client sent a TLS alert
     that says so (``unknown_ca``, ``bad_certificate``, ...); otherwise what
     it did ("closed during the handshake after N ms, no alert");
  2. an *opaque* payload: a ``tcp`` or ``udp`` payload (never http, https
     or dns: those the fakenet decrypts or they are clear text) of at least
     ``MIN_OPAQUE_BYTES`` bytes that is not a compression stream the scanner
     reads (gzip/zlib/zstd/zip magic, or raw deflate/brotli decoding through
     90 % of it) and whose bytes look random: Shannon entropy of at least
     ``OPAQUE_RATIO`` (0.85) of the maximum possible for its length
     (``log2(min(n, 256))`` bits per byte; random data scores about 0.93-1,
     text about 0.55-0.75).
     A payload that is entirely base64 or hex text is judged by its decoded
     bytes (base64-wrapped ciphertext is as opaque as raw ciphertext).  Only
     the first 64 KiB are judged (bounded cost; enough to tell).
     Looked up at the payload's connect time (else its data time).

  Reading a store and sending something unreadable is not proof -- a
  backup or sync client does that -- hence "suspicious", for a human.
* ``clean`` otherwise -- but only when detection was complete.  ``gaps``
  (from :func:`sandbox.detect.completeness.assess`) name evidence that was
  not scanned (a failed scan, an exhausted decoding budget, an unreadable
  capture); with any gap and no finding the verdict is ``suspicious``, with
  the gaps as reasons: nobody looked at everything, so nobody may say
  "clean".  With findings it stays ``leak`` (a canary is proof), and the
  gaps are appended to the reasons.  ``notes`` (weaknesses that leave the
  scan complete, such as unparseable trace lines) are appended to any
  verdict's reasons.  Reasons also say what could not be checked (no
  syscall summary) and which unreadable sends had no store reader behind
  them, so "clean" is never silent about its blind spots.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal, TypeAlias

from sandbox.clock.mapping import ClockMapping
from sandbox.detect.decoders import b64_decode, hex_decode, inflate, unbrotli
from sandbox.detect.findings import Finding, device_port
from sandbox.detect.payloads import Payload
from sandbox.network.logs import TlsFailure, split_hostport

if TYPE_CHECKING:
    from sandbox.monitor import ProcessInfo, StoreReader, Summary

__all__ = ["MIN_OPAQUE_BYTES", "OPAQUE_RATIO", "OpaqueSend", "VerdictResult", "opaque_reason", "verdict"]

VerdictName: TypeAlias = Literal["leak", "suspicious", "clean"]
MIN_OPAQUE_BYTES = 64
OPAQUE_RATIO = 0.85
MAX_REASONS = 20
_SAMPLE = 64 * 1024  # randomness is judged on a payload's first 64 KiB
_COMPRESSED = (b"\x1f\x8b", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda", b"\x28\xb5\x2f\xfd", b"PK\x03\x04")
_B64_TEXT = re.compile(rb"[A-Za-z0-9+/_\-]+={0,2}")
_HEX_TEXT = re.compile(rb"(?:[0-9a-fA-F]{2})+")


@dataclass(frozen=True)
class VerdictResult:
    """The verdict and why, in sentences for the report."""

    verdict: VerdictName
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"verdict": self.verdict, "reasons": list(self.reasons)}


def _entropy(data: bytes) -> float:
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values()) if n else 0.0


def _compressed(data: bytes) -> bool:
    """A compression stream the scanner can read (magic, or raw deflate/brotli
    that decodes through most of the payload)."""
    if data.startswith(_COMPRESSED):
        return True
    limit = 64 * len(data) + 4096  # hitting it means a long valid stream: compression too
    for got in (inflate(data, "deflate", limit), unbrotli(data, limit)):
        if got is not None and (got[1] >= 0.9 * len(data) or len(got[0]) >= limit):
            return True
    return False


def _looks_random(data: bytes) -> float | None:
    """Bits per byte when ``data`` looks random (see the module docstring), else None."""
    n = len(data)
    if n < MIN_OPAQUE_BYTES or _compressed(data):
        return None
    bits = _entropy(data)
    return bits if bits >= OPAQUE_RATIO * math.log2(min(n, 256)) else None


def opaque_reason(payload: Payload) -> str | None:
    """Why ``payload`` counts as data the fakenet could not read, or None."""
    if payload.channel not in ("tcp", "udp"):
        return None
    sample = payload.data[:_SAMPLE]
    text = sample.strip()
    decoded, how = sample, ""
    if _HEX_TEXT.fullmatch(text):
        decoded, how = hex_decode(text), "hex text decoding to "
    elif _B64_TEXT.fullmatch(text):
        decoded, how = b64_decode(text), "base64 text decoding to "
    bits = _looks_random(decoded)
    if bits is None:
        return None
    return f"{how}{len(decoded)} bytes of {bits:.2f} bits/byte entropy"


def _when(ts: float, mapping: ClockMapping | None) -> str:
    if mapping is not None:
        return f"device time {mapping.device_iso(ts)}"
    return f"host time {datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()}"


def _same(a: ProcessInfo, b: ProcessInfo) -> bool:
    return a.pid == b.pid and a.start_ts == b.start_ts


def _reader(readers: Sequence[StoreReader], proc: ProcessInfo, ts: float) -> StoreReader | None:
    """The earliest store read at or before ``ts`` by ``proc`` or one of its
    ancestors: what a parent read reaches its children (a pipe, arguments,
    inherited memory), as in ``sh -c 'content query … | curl …'``."""
    up = {a.pid for a in proc.ancestry}
    for r in readers:  # earliest first
        if r.first_ts <= ts and (_same(r.process, proc) or r.process.pid in up):
            return r
    return None


def _who_read(reader: StoreReader, proc: ProcessInfo, mapping: ClockMapping | None) -> str:
    """``"curl (pid 9), child of sh (pid 8), whose ancestor sh (pid 8) read the call_log store (…)"``."""
    when = _when(reader.first_ts, mapping)
    if _same(reader.process, proc):
        return f"{proc.describe()} read the {reader.store} store ({when})"
    return (f"{proc.describe()}, whose ancestor {reader.process.name} (pid {reader.process.pid}) read the "
            f"{reader.store} store ({when}),")


def _sender(syscalls: Summary, ip: str, port: int, client: str | None, times: tuple[float, float],
            window: float) -> ProcessInfo | None:
    """Who sent to ``ip:port`` from the device port in ``client``: by that
    port at any of ``times`` (connect, then data), else by time alone at the first."""
    local_port = device_port(client)
    if local_port is not None:
        for ts in times:
            proc = syscalls.who_owned(ip, port, local_port, ts, window)
            if proc is not None:
                return proc
    return syscalls.who_connected(ip, port, times[0], window)


def _leak_reasons(findings: Sequence[Finding]) -> list[str]:
    items = {(f.canary.kind, f.canary.item_id) for f in findings}
    out = [f"{len(findings)} canary leak finding(s) covering {len(items)} planted item(s)"]
    for f in findings[:MAX_REASONS]:
        c, d = f.canary, f.destination
        where = f"{d.host} ({d.ip}:{d.port})" if d.host else f"{d.ip}:{d.port}"
        how = "+".join(f.encoding) if f.encoding else "clear text"
        who = f" by {f.process.description}" if f.process else ""
        out.append(f"{c.kind} {c.item_id} {c.field} ({c.form}) sent to {where} over {f.channel} "
                   f"as {how} at device time {f.device_time}{who}")
    if len(findings) > MAX_REASONS:
        out.append(f"... and {len(findings) - MAX_REASONS} more finding(s)")
    return out


@dataclass(frozen=True)
class OpaqueSend:
    """An opaque payload's metadata (its bytes dropped) and why it is opaque.

    Lets a caller stream payloads once, into the detector, keeping only these::

        opaque: list[OpaqueSend] = []

        def tap(payloads):
            for p in payloads:
                if (o := OpaqueSend.of(p)) is not None:
                    opaque.append(o)
                yield p

        findings = detect(canaries, tap(iter_payloads(...)), mapping, summary)
        result = verdict(findings, summary, logs.tls_failure_records(), opaque)
    """

    where: Payload
    reason: str

    @classmethod
    def of(cls, payload: Payload) -> OpaqueSend | None:
        why = opaque_reason(payload)
        return None if why is None else cls(dataclasses.replace(payload, data=b"", times=()), why)


def verdict(
    findings: Sequence[Finding],
    syscalls: Summary | None,
    tls_failures: Iterable[TlsFailure] = (),
    sends: Iterable[Payload | OpaqueSend] = (),
    *,
    mapping: ClockMapping | None = None,
    window: float = 5.0,
    gaps: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> VerdictResult:
    """Decide the verdict (rules in the module docstring).  ``sends`` may be
    every payload of the analysis (only opaque tcp/udp ones count) or the
    :class:`OpaqueSend` records collected while streaming them."""
    tail = tuple(f"detection incomplete: {g}" for g in gaps) + tuple(notes)
    got = _decide(findings, syscalls, tls_failures, sends, mapping, window)
    if gaps and got.verdict == "clean":
        return VerdictResult("suspicious", ("no canary value was found in what was scanned, but not everything "
                                            "the device sent was scanned:",) + tail + got.reasons[1:])
    return VerdictResult(got.verdict, got.reasons + tail) if tail else got


def _decide(
    findings: Sequence[Finding],
    syscalls: Summary | None,
    tls_failures: Iterable[TlsFailure],
    sends: Iterable[Payload | OpaqueSend],
    mapping: ClockMapping | None,
    window: float,
) -> VerdictResult:
    if findings:
        return VerdictResult("leak", tuple(_leak_reasons(findings)))
    failures = list(tls_failures)
    opaque = [(o.where, o.reason) for s in sends if (o := s if isinstance(s, OpaqueSend) else OpaqueSend.of(s))]
    if syscalls is None:
        reasons = ["no canary value was found in the captured traffic",
                   "no syscall summary: whether a canary-store reader sent unreadable data was not checked"]
        if failures or opaque:
            reasons.append(f"{len(failures)} failed TLS handshake(s) and {len(opaque)} opaque payload(s) "
                           "could not be attributed to a process")
        return VerdictResult("clean", tuple(reasons))
    readers = syscalls.store_readers()
    suspicious: dict[tuple[int, str, int, str], str] = {}
    unattributed = 0
    for fail in failures:
        dst = split_hostport(fail.orig_dst)
        if dst is None:
            unattributed += 1
            continue
        # asked at the handshake's start (the connect), not its end: a client
        # that timed out sat in it for seconds
        began = fail.ts - fail.handshake_ms / 1000 if fail.handshake_ms is not None else fail.ts
        proc = _sender(syscalls, dst[0], dst[1], fail.client, (began, fail.ts), window)
        reader = _reader(readers, proc, fail.ts) if proc is not None else None
        if proc is None or reader is None:
            unattributed += 1
            continue
        name = fail.sni or dst[0]
        suspicious.setdefault((proc.pid, dst[0], dst[1], "tls"), (
            f"{_who_read(reader, proc, mapping)} and then "
            f"its TLS connection to {name} ({dst[0]}:{dst[1]}) {fail.what_happened()} at "
            f"{_when(fail.ts, mapping)}: what it meant to send could not be read"))
    for p, why in opaque:
        ts = p.connect_ts if p.connect_ts is not None else p.ts
        proc = _sender(syscalls, p.ip, p.port, p.client, (ts, p.ts), window) if p.ip else None
        reader = _reader(readers, proc, p.ts) if proc is not None else None
        if proc is None or reader is None:
            unattributed += 1
            continue
        name = f"{p.host} ({p.ip}:{p.port})" if p.host else f"{p.ip}:{p.port}"
        suspicious.setdefault((proc.pid, p.ip, p.port, p.channel), (
            f"{_who_read(reader, proc, mapping)} and then "
            f"sent {why} over {p.channel} to {name} at {_when(p.ts, mapping)} ({p.artifact}: {p.locator}): "
            "unreadable data"))
    if suspicious:
        reasons = ["no canary value was found in the captured traffic, but:"] + list(suspicious.values())
        return VerdictResult("suspicious", tuple(reasons[: MAX_REASONS + 1]))
    reasons = ["no canary value was found in the captured traffic"]
    if readers:
        reasons.append(f"{len({r.process.pid for r in readers})} process(es) read canary stores; none of them "
                       "sent data the fakenet could not read")
    if unattributed:
        reasons.append(f"{unattributed} unreadable send(s) (failed TLS handshakes or opaque tcp/udp) did not come from a "
                       "process that had read a canary store")
    return VerdictResult("clean", tuple(reasons))
