"""TCP stream reassembly and IPv4 defragmentation for the leak detector.

Why our own: a canary value split across two segments, sent out of order,
or retransmitted with different bytes must still be found, and a hostile
firmware must not be able to exhaust the host's memory with a capture.  So
every buffer here is bounded and every decision is documented:

* One direction only.  The caller feeds the device's segments (client to
  server); answers to the device never count as leaks.
* Offsets.  A stream's offset 0 is the byte after the SYN (ISN + 1).  A
  stream whose SYN was not captured starts at the lowest sequence number
  seen before its first chunk is emitted.  Sequence numbers are compared
  with 32-bit signed differences, which is exact because a stream never
  keeps more than ``max_stream_bytes`` (< 2 GiB).
* Overlaps and retransmissions.  The primary assembly keeps, for every
  byte, the copy that arrived *first* (what a Linux receiver delivers for
  data it already queued).  If any overlapping copy differed, a second
  assembly keeping the *last* copy is emitted as well (``variant="alt"``),
  so an evasion by conflicting retransmissions shows both versions.
* Holes.  Bytes are never invented: a missing range splits the stream into
  separate chunks, each with its true stream offset.
* Bounds.  A stream keeps at most ``max_stream_bytes`` (the rest is counted
  as truncated).  Its buffer is emitted as a chunk whenever it spans more
  than ``chunk_bytes``; the last ``chunk_overlap`` bytes are repeated at the
  start of the next chunk so values on the boundary are still whole.  At
  most ``max_streams`` streams are buffered (the least recently active is
  flushed beyond that) and at most ``max_buffered_bytes`` in total, counting
  ``SEGMENT_COST`` bytes of bookkeeping per segment so a flood of tiny
  segments is bounded too (the costliest buffer is flushed); a stream
  holding ``max_segments`` segments is emitted as a chunk.  A retransmission of bytes already emitted is
  dropped, and so is a late segment filling a hole that was already
  emitted: the price of bounded memory, paid only by streams far apart
  from their holes.
* End.  A stream is emitted when it has data up to its FIN, on RST, when a
  new SYN with another ISN reuses its 4-tuple (a new ``generation``), when
  evicted, and at the end of the capture.  A closed stream's end offset is
  remembered (bounded LRU) so retransmissions after the close are dropped
  rather than reported as a new stream.

Pure logic: no pcap reading here (see ``sources.py``).
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["Defragmenter", "StreamChunk", "StreamKey", "TcpReassembler", "TcpLimits", "TcpStats"]

StreamKey = tuple[str, int, str, int]
"""(source ip, source port, destination ip, destination port)."""

_SEQ_MOD = 1 << 32
_SEQ_HALF = 1 << 31
_HEAD_BYTES = 4096
_RUNS = re.compile(rb"\x01+")
SEGMENT_COST = 128  # bytes of Python bookkeeping charged per buffered segment
FIN, SYN, RST = 0x01, 0x02, 0x04


def _sdiff(a: int, b: int) -> int:
    """``a - b`` in 32-bit sequence space, signed."""
    d = (a - b) % _SEQ_MOD
    return d - _SEQ_MOD if d >= _SEQ_HALF else d


@dataclass(frozen=True)
class TcpLimits:
    """Memory bounds; see the module docstring for what each one costs."""

    max_stream_bytes: int = 64 << 20
    chunk_bytes: int = 4 << 20
    chunk_overlap: int = 64 << 10
    max_streams: int = 4096
    max_buffered_bytes: int = 256 << 20
    max_segments: int = 65536
    max_closed_memo: int = 65536


@dataclass
class TcpStats:
    """Counters for the report: what was dropped and why (mutable accumulator)."""

    segments: int = 0
    streams: int = 0
    chunks: int = 0
    stale_bytes: int = 0  # at offsets already emitted: retransmissions, late hole fills
    truncated_bytes: int = 0  # beyond max_stream_bytes
    conflicting_streams: int = 0
    evicted_streams: int = 0
    pressure_flushes: int = 0


@dataclass(frozen=True)
class StreamChunk:
    """Contiguous bytes of one stream.

    ``offset`` is the stream offset of ``data[0]``; ``times`` maps offsets
    within ``data`` to the capture time of the first segment carrying them
    (sorted; the time of byte ``i`` is that of the last entry at or before
    ``i``).  ``head`` is the first bytes of the stream (for protocol
    sniffing) and ``syn_ts`` the time of its SYN when captured.
    """

    key: StreamKey
    generation: int
    offset: int
    data: bytes
    times: tuple[tuple[int, float], ...]
    head: bytes
    first_frame: int
    first_ts: float
    syn_ts: float | None
    variant: str = ""


@dataclass
class _Stream:
    key: StreamKey
    generation: int
    anchor: int | None  # sequence number of buffer offset 0 (stream offset = buffer offset - origin)
    syn_ts: float | None
    first_frame: int
    first_ts: float
    origin: int | None = None  # offset that becomes stream offset 0 (fixed at first emission)
    floor: int | None = None  # bytes below this offset were emitted (or precede the stream)
    segs: list[tuple[int, int, bytes, float]] = field(default_factory=list)
    lo: int = 0
    hi: int = 0
    buffered: int = 0  # data bytes held
    cost: int = 0  # data bytes + SEGMENT_COST per segment, for the global budget
    fin_at: int | None = None
    head: bytes = b""
    arrivals: int = 0


@dataclass(frozen=True)
class _Closed:
    generation: int
    anchor: int
    origin: int
    end: int
    head: bytes
    first_frame: int
    first_ts: float
    syn_ts: float | None


class TcpReassembler:
    """Feed segments with :meth:`add`; collect :class:`StreamChunk` from its
    return value and from :meth:`flush` at the end of the capture."""

    def __init__(self, limits: TcpLimits | None = None) -> None:
        self.limits = limits or TcpLimits()
        self.stats = TcpStats()
        self._streams: OrderedDict[StreamKey, _Stream] = OrderedDict()
        self._closed: OrderedDict[StreamKey, _Closed] = OrderedDict()
        self._buffered = 0

    # -- input ---------------------------------------------------------------

    def add(
        self, key: StreamKey, seq: int, flags: int, data: bytes, ts: float, frame: int
    ) -> list[StreamChunk]:
        """One captured segment of ``key``'s direction; returns chunks ready now."""
        self.stats.segments += 1
        out: list[StreamChunk] = []
        st = self._streams.get(key)
        if flags & SYN:
            st = self._on_syn(key, st, seq, ts, frame, out)
            seq = (seq + 1) % _SEQ_MOD
        if st is None:
            if not data and not flags & (FIN | RST):
                return out
            st = self._reopen(key, ts, frame)
        self._streams.move_to_end(key)
        if st.anchor is None:
            st.anchor = seq
        off = _sdiff(seq, st.anchor)
        if data:
            out.extend(self._make_room(st, off, off + len(data)))
            self._insert(st, off, data, ts)
        if flags & FIN:
            end = off + len(data)
            st.fin_at = end if st.fin_at is None else max(st.fin_at, end)
        if flags & RST or (st.fin_at is not None and self._complete_to(st, st.fin_at)):
            out.extend(self._close(key))
        out.extend(self._enforce_bounds())
        return out

    def flush(self) -> list[StreamChunk]:
        """Emit every buffered stream (end of capture)."""
        out: list[StreamChunk] = []
        for key in list(self._streams):
            out.extend(self._close(key))
        return out

    # -- stream lifecycle ------------------------------------------------------

    def _on_syn(
        self, key: StreamKey, st: _Stream | None, seq: int, ts: float, frame: int, out: list[StreamChunk]
    ) -> _Stream:
        anchor = (seq + 1) % _SEQ_MOD
        if st is not None and st.anchor == anchor:
            if st.syn_ts is None:
                st.syn_ts = ts
            return st  # retransmitted SYN
        closed = self._closed.get(key)
        if st is None and closed is not None and closed.anchor == anchor:
            return self._reopen(key, ts, frame)  # retransmitted SYN after the close
        if st is not None and st.origin is None and self._adopt_syn(st, anchor, ts):
            return st  # the SYN of a stream whose data was captured first
        generation = 1
        if st is not None:
            generation = st.generation + 1
            out.extend(self._close(key))
        elif closed is not None:
            generation = closed.generation + 1
        self._closed.pop(key, None)
        st = _Stream(key, generation, anchor, ts, frame, ts, origin=0, floor=0)
        self._streams[key] = st
        self.stats.streams += 1
        return st

    def _adopt_syn(self, st: _Stream, anchor: int, ts: float) -> bool:
        """Re-anchor a not-yet-emitted stream on a late SYN when its data fits after it."""
        if st.anchor is None or not st.segs:
            st.anchor, st.syn_ts, st.origin, st.floor = anchor, ts, 0, 0
            st.segs, st.buffered, st.cost = [], 0, 0
            return True
        delta = _sdiff(st.anchor, anchor)
        if st.lo + delta < 0 or st.hi + delta > self.limits.max_stream_bytes:
            return False
        st.segs = [(o + delta, i, d, t) for o, i, d, t in st.segs]
        st.lo, st.hi = st.lo + delta, st.hi + delta
        if st.fin_at is not None:
            st.fin_at += delta
        st.anchor, st.syn_ts, st.origin, st.floor = anchor, ts, 0, 0
        return True

    def _reopen(self, key: StreamKey, ts: float, frame: int) -> _Stream:
        """A stream for a segment without state: a continuation of a closed or
        evicted stream when its 4-tuple is remembered, else a capture that
        started mid-stream."""
        closed = self._closed.pop(key, None)
        if closed is not None:
            st = _Stream(key, closed.generation, closed.anchor, closed.syn_ts, closed.first_frame,
                         closed.first_ts, origin=closed.origin, floor=closed.end, head=closed.head)
        else:
            st = _Stream(key, 1, None, None, frame, ts)
            self.stats.streams += 1
        self._streams[key] = st
        return st

    def _close(self, key: StreamKey) -> list[StreamChunk]:
        st = self._streams.pop(key)
        out = self._emit(st, final=True)
        if st.anchor is not None and st.origin is not None and st.floor is not None:
            self._closed[key] = _Closed(st.generation, st.anchor, st.origin, st.floor, st.head,
                                        st.first_frame, st.first_ts, st.syn_ts)
            self._closed.move_to_end(key)
            while len(self._closed) > self.limits.max_closed_memo:
                self._closed.popitem(last=False)
        return out

    def _enforce_bounds(self) -> list[StreamChunk]:
        out: list[StreamChunk] = []
        while len(self._streams) > self.limits.max_streams:
            key = next(iter(self._streams))
            self.stats.evicted_streams += 1
            out.extend(self._close(key))
        while self._buffered > self.limits.max_buffered_bytes and self._streams:
            st = max(self._streams.values(), key=lambda s: s.cost)
            if not st.cost:
                break
            self.stats.pressure_flushes += 1
            out.extend(self._emit(st, final=False, keep_tail=False))
        return out

    # -- buffering ---------------------------------------------------------------

    def _make_room(self, st: _Stream, off: int, end: int) -> list[StreamChunk]:
        """Emit the buffer before it would span more than ``chunk_bytes`` or
        hold more than ``max_segments`` segments."""
        out: list[StreamChunk] = []
        limit, most = self.limits.chunk_bytes, self.limits.max_segments
        if st.segs and (max(st.hi, end) - min(st.lo, off) > limit or len(st.segs) >= most):
            out.extend(self._emit(st, final=False))
            if st.segs and (max(st.hi, end) - min(st.lo, off) > limit or len(st.segs) >= most):
                out.extend(self._emit(st, final=False, keep_tail=False))
        return out

    def _insert(self, st: _Stream, off: int, data: bytes, ts: float) -> None:
        if st.floor is not None and off < st.floor:
            cut = st.floor - off
            if cut >= len(data):
                self.stats.stale_bytes += len(data)
                return
            self.stats.stale_bytes += cut
            off, data = st.floor, data[cut:]
        origin = st.origin if st.origin is not None else (min(st.lo, off) if st.segs else off)
        room = self.limits.max_stream_bytes - (off + len(data) - origin)
        if room < 0:
            keep = max(0, len(data) + room)
            self.stats.truncated_bytes += len(data) - keep
            data = data[:keep]
            if not data:
                return
        if not st.segs:
            st.lo, st.hi = off, off + len(data)
        else:
            st.lo, st.hi = min(st.lo, off), max(st.hi, off + len(data))
        st.segs.append((off, st.arrivals, data, ts))
        st.arrivals += 1
        st.buffered += len(data)
        st.cost += len(data) + SEGMENT_COST
        self._buffered += len(data) + SEGMENT_COST

    @staticmethod
    def _complete_to(st: _Stream, end: int) -> bool:
        """True when the buffer holds every byte from its start up to ``end``."""
        pos = st.floor if st.floor is not None else st.lo
        for off, _, data, _ in sorted(st.segs):
            if off > pos:
                return False
            pos = max(pos, off + len(data))
        return pos >= end

    # -- emission ------------------------------------------------------------------

    def _emit(self, st: _Stream, *, final: bool, keep_tail: bool = True) -> list[StreamChunk]:
        if not st.segs:
            return []
        if st.origin is None:
            st.origin = st.lo
        lo, hi = st.lo, st.hi
        first = _paint(st.segs, lo, hi, first_wins=True)
        chunks = self._chunks(st, first, lo, "")
        if st.buffered > first[1].count(1):  # some bytes arrived more than once
            last = _paint(st.segs, lo, hi, first_wins=False)
            if last[0] != first[0]:
                self.stats.conflicting_streams += 1
                chunks.extend(self._chunks(st, last, lo, "alt"))
        self.stats.chunks += len(chunks)
        self._buffered -= st.cost
        tail: list[tuple[int, int, bytes, float]] = []
        if not final and keep_tail and self.limits.chunk_overlap > 0:
            buf, cov = first
            start = max(0, len(buf) - self.limits.chunk_overlap)
            m = re.search(rb"\x01+\Z", cov[start:])
            if m is not None:
                t0 = lo + start + m.start()
                tail = [(t0, 0, bytes(buf[t0 - lo:]), _time_at(st.segs, t0))]
        st.floor = hi if st.floor is None else max(st.floor, hi)
        st.segs, st.arrivals = tail, len(tail)
        st.buffered = sum(len(s[2]) for s in tail)
        st.cost = st.buffered + SEGMENT_COST * len(tail)
        self._buffered += st.cost
        if tail:
            st.lo, st.hi = tail[0][0], hi
        return chunks

    def _chunks(
        self, st: _Stream, painted: tuple[bytearray, bytearray], lo: int, variant: str
    ) -> list[StreamChunk]:
        buf, cov = painted
        assert st.origin is not None
        if not st.head and st.origin == lo and cov[:1] == b"\x01":
            m = _RUNS.match(cov)
            st.head = bytes(buf[: min(m.end() if m else 0, _HEAD_BYTES)])
        starts = sorted((off, ts) for off, _, _, ts in st.segs)
        offsets = [off for off, _ in starts]
        out = []
        for m in _RUNS.finditer(cov):
            a, z = lo + m.start(), lo + m.end()
            out.append(StreamChunk(
                key=st.key, generation=st.generation, offset=a - st.origin,
                data=bytes(buf[m.start():m.end()]), times=_times_in(starts, offsets, a, z), head=st.head,
                first_frame=st.first_frame, first_ts=st.first_ts, syn_ts=st.syn_ts, variant=variant,
            ))
        return out


def _paint(
    segs: list[tuple[int, int, bytes, float]], lo: int, hi: int, *, first_wins: bool
) -> tuple[bytearray, bytearray]:
    """Write segments into a buffer spanning ``[lo, hi)``; with ``first_wins``
    the earliest arrival is written last so its bytes prevail."""
    buf = bytearray(hi - lo)
    cov = bytearray(hi - lo)
    for off, _, data, _ in sorted(segs, key=lambda s: s[1], reverse=first_wins):
        a = off - lo
        buf[a:a + len(data)] = data
        cov[a:a + len(data)] = b"\x01" * len(data)
    return buf, cov


def _times_in(
    starts: list[tuple[int, float]], offsets: list[int], a: int, z: int
) -> tuple[tuple[int, float], ...]:
    """Earliest capture time per segment start inside ``[a, z)``, as offsets
    relative to ``a`` (``starts`` sorted, ``offsets`` its first column);
    offset 0 always has an entry (else the segment started before ``a``)."""
    i, j = bisect.bisect_left(offsets, a), bisect.bisect_left(offsets, z)
    earliest: dict[int, float] = {}
    for off, ts in starts[i:j]:
        earliest[off - a] = min(ts, earliest.get(off - a, ts))
    if 0 not in earliest:
        earliest[0] = starts[i - 1][1] if i > 0 else min(earliest.values(), default=0.0)
    return tuple(sorted(earliest.items()))


def _time_at(segs: list[tuple[int, int, bytes, float]], off: int) -> float:
    covering = [ts for o, _, d, ts in segs if o <= off < o + len(d)]
    return min(covering) if covering else min(s[3] for s in segs)


# ---------------------------------------------------------------------------
# IPv4 fragments


@dataclass
class _Pending:
    parts: dict[int, bytes]
    total: int | None
    size: int
    ts: float
    frame: int


class Defragmenter:
    """Reassemble fragmented IPv4 datagrams (a UDP payload larger than the
    MTU arrives in pieces; without this a value across a fragment boundary
    is lost).  At most ``max_datagrams`` incomplete datagrams and
    ``max_bytes`` of fragments (plus ``SEGMENT_COST`` per fragment) are
    held; the oldest are dropped beyond."""

    MAX_DATAGRAM = 65535

    def __init__(self, max_datagrams: int = 1024, max_bytes: int = 16 << 20) -> None:
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.dropped = 0
        self._pending: OrderedDict[tuple[str, str, int, int], _Pending] = OrderedDict()
        self._bytes = 0

    def add(
        self, key: tuple[str, str, int, int], offset: int, more: bool, data: bytes, ts: float, frame: int
    ) -> tuple[bytes, float, int] | None:
        """One fragment; returns ``(payload, first ts, first frame)`` once complete."""
        if offset + len(data) > self.MAX_DATAGRAM:
            self.dropped += 1
            return None
        p = self._pending.get(key)
        if p is None:
            p = self._pending[key] = _Pending({}, None, 0, ts, frame)
        if offset not in p.parts:
            p.parts[offset] = data
            p.size += len(data) + SEGMENT_COST
            self._bytes += len(data) + SEGMENT_COST
        if not more:
            p.total = offset + len(data)
        done = self._complete(p)
        if done is not None:
            del self._pending[key]
            self._bytes -= p.size
            return done, p.ts, p.frame
        while len(self._pending) > self.max_datagrams or self._bytes > self.max_bytes:
            _, old = self._pending.popitem(last=False)
            self._bytes -= old.size
            self.dropped += 1
        return None

    @staticmethod
    def _complete(p: _Pending) -> bytes | None:
        if p.total is None:
            return None
        buf = bytearray(p.total)
        pos = 0
        for off in sorted(p.parts):
            if off > pos:
                return None
            part = p.parts[off]
            buf[off:off + len(part)] = part
            pos = max(pos, off + len(part))
        return bytes(buf[:p.total]) if pos >= p.total else None
