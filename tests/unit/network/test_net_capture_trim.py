"""A pcap cut mid-record (tcpdump killed, or out of disk) is trimmed back to
its last complete record, so every reader opens it (issue 9)."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt

from sandbox.network.capture import trim_pcap


def _pcap(path: Path, n: int, extra: bytes = b"") -> None:
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=65535)
        for i in range(n):
            w.writepkt(b"\x00" * 60 + bytes([i]), ts=1.0 + i)
        f.write(extra)


def _count(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in dpkt.pcap.Reader(f))


def test_torn_header_and_torn_body_are_trimmed(tmp_path: Path) -> None:
    p = tmp_path / "a.pcap"
    _pcap(p, 3, extra=struct.pack("<II", 9, 0))  # half a record header
    whole = p.stat().st_size - 8
    assert trim_pcap(p) == 8 and p.stat().st_size == whole and _count(p) == 3
    _pcap(p, 3, extra=struct.pack("<IIII", 9, 0, 100, 100) + b"\x01" * 40)  # header, 40 of 100 bytes
    assert trim_pcap(p) == 56 and _count(p) == 3


def test_whole_empty_and_foreign_files_are_left_alone(tmp_path: Path) -> None:
    p = tmp_path / "b.pcap"
    _pcap(p, 2)
    size = p.stat().st_size
    assert trim_pcap(p) == 0 and p.stat().st_size == size
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert trim_pcap(empty) == 0
    other = tmp_path / "x.txt"
    other.write_bytes(b"not a pcap at all, not at all")
    assert trim_pcap(other) == 0 and other.read_bytes().startswith(b"not a pcap")
    assert trim_pcap(tmp_path / "missing.pcap") == 0
