"""The shared memory the clock controller and ``libhpclock.so`` agree on.

Mirrors ``emulator_images/twin/hpclock/hpclock.h``.  Two files, so that only
the controller (root) can move the clock while every firmware uid can
register its waits:

* ``hpclock.clock`` (0644): magic, version, seqlock, the wake-up futex word,
  skip, wall offset and the fallback rate;
* ``hpclock.slots`` (0666): the doorbell futex the controller sleeps on and
  one slot per thread blocked in a timed wait.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from . import paths

CLOCK_FILE = "/run/honeyphone/hpclock.clock"
SLOTS_FILE = "/run/honeyphone/hpclock.slots"
LIBRARY = "/opt/honeyphone/lib/libhpclock.so"

MAGIC = 0x4B4C4348
VERSION = 1
NSLOTS = 1024
HP_SIGNAL_FROM_MAX = 2  # SIGRTMAX - 2

CLOCK_FMT = "=IIIIqqdqq"  # magic version seq gen skip wall fb_rate fb_since start_real
CLOCK_SIZE = 4096
SLOTS_HEADER = "=IIII"  # doorbell seq nslots ctl_waiting
SLOT_FMT = "=iiiiqq"  # tid pid kind flags deadline since
SLOT_SIZE = struct.calcsize(SLOT_FMT)
SLOTS_SIZE = struct.calcsize(SLOTS_HEADER) + NSLOTS * SLOT_SIZE

KIND_SLEEP, KIND_POLL, KIND_SEM, KIND_COND = 1, 2, 3, 4
FLAG_TCP, FLAG_UDP = 1, 2

_OFF_SEQ, _OFF_GEN, _OFF_SKIP, _OFF_WALL, _OFF_RATE, _OFF_SINCE = 8, 12, 16, 24, 32, 40
_OFF_DOORBELL, _OFF_SLOTS_SEQ, _OFF_CTL_WAITING = 0, 4, 12

SYS_futex = 202  # x86_64
SYS_tgkill = 234
FUTEX_WAIT, FUTEX_WAKE = 0, 1

_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


@dataclass(frozen=True)
class Slot:
    tid: int
    pid: int
    kind: int
    flags: int
    deadline_ns: int  # device CLOCK_MONOTONIC
    since_real_ns: int


def futex_wake(addr: int, n: int = 0x7FFFFFFF) -> None:
    _libc.syscall(SYS_futex, ctypes.c_void_p(addr), FUTEX_WAKE, n, None, None, 0)


def futex_wait(addr: int, expected: int, timeout_s: float) -> None:
    ts = _Timespec(int(timeout_s), int((timeout_s % 1) * 1e9))
    _libc.syscall(SYS_futex, ctypes.c_void_p(addr), FUTEX_WAIT, ctypes.c_uint32(expected), ctypes.byref(ts), None, 0)


def tgkill(pid: int, tid: int, sig: int) -> bool:
    return bool(_libc.syscall(SYS_tgkill, pid, tid, sig) == 0)


def wake_signal() -> int:
    import signal

    return int(signal.SIGRTMAX) - HP_SIGNAL_FROM_MAX


def _map(path: Path, size: int, mode: int, create: bool) -> mmap.mmap:
    flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
    fd = os.open(path, flags, mode)
    try:
        if create:
            os.ftruncate(fd, size)
            os.fchmod(fd, mode)
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


class ClockPage:
    """The controller's (single writer's) view of the clock page."""

    def __init__(self, mm: mmap.mmap) -> None:
        self._mm = mm
        self._gen = ctypes.c_uint32.from_buffer(mm, _OFF_GEN)
        self.gen_addr = ctypes.addressof(self._gen)

    @classmethod
    def create(cls, start_real_ns: int, wall_offset_ns: int) -> "ClockPage":
        path = paths.under(CLOCK_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        mm = _map(path, CLOCK_SIZE, 0o644, create=True)
        mm[: struct.calcsize(CLOCK_FMT)] = struct.pack(CLOCK_FMT, MAGIC, VERSION, 0, 0, 0, wall_offset_ns, 1.0,
                                                       start_real_ns, start_real_ns)
        return cls(mm)

    def read(self) -> tuple[int, int, float, int]:
        """(skip, wall offset, fallback rate, fallback since)."""
        _m, _v, _seq, _gen, skip, wall, rate, since, _start = struct.unpack_from(CLOCK_FMT, self._mm, 0)
        return int(skip), int(wall), float(rate), int(since)

    def write(self, skip: int, wall: int, rate: float, since: int) -> None:
        seq = struct.unpack_from("=I", self._mm, _OFF_SEQ)[0]
        struct.pack_into("=I", self._mm, _OFF_SEQ, (seq + 1) & 0xFFFFFFFF)  # odd: readers retry
        struct.pack_into("=qqdq", self._mm, _OFF_SKIP, skip, wall, rate, since)
        struct.pack_into("=I", self._mm, _OFF_SEQ, (seq + 2) & 0xFFFFFFFF)
        self._gen.value = (self._gen.value + 1) & 0xFFFFFFFF
        futex_wake(self.gen_addr)


class SlotTable:
    def __init__(self, mm: mmap.mmap) -> None:
        self._mm = mm
        self._doorbell = ctypes.c_uint32.from_buffer(mm, _OFF_DOORBELL)
        self.doorbell_addr = ctypes.addressof(self._doorbell)
        self._header = struct.calcsize(SLOTS_HEADER)

    @classmethod
    def create(cls) -> "SlotTable":
        path = paths.under(SLOTS_FILE)
        mm = _map(path, SLOTS_SIZE, 0o666, create=True)
        struct.pack_into(SLOTS_HEADER, mm, 0, 0, 0, NSLOTS, 0)
        return cls(mm)

    @classmethod
    def open(cls) -> "SlotTable":
        return cls(_map(paths.under(SLOTS_FILE), SLOTS_SIZE, 0o666, create=False))

    @property
    def seq(self) -> int:
        return int(struct.unpack_from("=I", self._mm, _OFF_SLOTS_SEQ)[0])

    @property
    def doorbell(self) -> int:
        return int(self._doorbell.value)

    def ring(self) -> None:
        self._doorbell.value = (self._doorbell.value + 1) & 0xFFFFFFFF
        futex_wake(self.doorbell_addr)

    def wait_doorbell(self, seen: int, timeout_s: float) -> None:
        struct.pack_into("=I", self._mm, _OFF_CTL_WAITING, 1)
        try:
            if self.doorbell == seen:
                futex_wait(self.doorbell_addr, seen, timeout_s)
        finally:
            struct.pack_into("=I", self._mm, _OFF_CTL_WAITING, 0)

    def busy_slots(self) -> list[tuple[int, Slot]]:
        """Registered waits as (index, slot); a slot being filled (tid -1) is skipped."""
        out: list[tuple[int, Slot]] = []
        raw = self._mm[self._header:self._header + NSLOTS * SLOT_SIZE]
        for i, (tid, pid, kind, flags, deadline, since) in enumerate(struct.iter_unpack(SLOT_FMT, raw)):
            if tid > 0:
                out.append((i, Slot(tid, pid, kind, flags, deadline, since)))
        return out

    def clear(self, index: int, tid: int) -> None:
        """Free a dead thread's slot (only if it still holds it)."""
        off = self._header + index * SLOT_SIZE
        if struct.unpack_from("=i", self._mm, off)[0] == tid:
            struct.pack_into("=i", self._mm, off, 0)


__all__ = ["CLOCK_FILE", "SLOTS_FILE", "LIBRARY", "ClockPage", "SlotTable", "Slot", "tgkill", "wake_signal"]
