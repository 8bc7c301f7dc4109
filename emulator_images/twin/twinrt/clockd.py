"""The twin's device clock controller: real time while the device is busy,
a jump to the next deadline while it is idle.

Every firmware process carries ``libhpclock.so`` (LD_PRELOAD, set up by
``hpctl``): its clock reads add the advance published in the clock page,
and its timed waits register a device deadline in the slot table.  This
controller watches the device and decides:

* **busy** while any firmware thread is runnable or in uninterruptible
  sleep (strace tracers included, they run on the firmware's behalf), an
  adb command from the host runs, or a network exchange is in flight
  (:mod:`netdiag`, plus poll-type waits that the library flagged as waiting
  on a TCP answer or a UDP socket);
* **idle** when every firmware thread is blocked, in a registered timed wait
  or in an untimed one.  Device time then jumps to the earliest registered
  deadline (never past the horizon) and the waiters there are woken at once.

A device that is never idle for long (a busy loop, a poller waking every
second) would crawl at real time, so after ``fallback_after_s`` seconds of
the device's CPU time (not counting exchanges in flight) in which idle jumps
gave less than ``fallback_floor`` device seconds per CPU second, the
**fallback** runs the clock at ``fallback_rate`` while no exchange is in
flight, and stops when idle jumps make progress again.  CPU time, not real
time: on a loaded host a 2 s computation takes many real seconds.  It is recorded in
the state and the segment log.

Everything the host needs is in two files: ``clock_jumps.jsonl`` (one line
per segment: real time, device time and rate from then on; the host builds
its host->device mapping from it) and ``clock.state`` (progress, counters,
processes the library does not cover, the fallback).
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from . import clocklayout as cl
from . import paths
from .netdiag import NetDiag

CLOCK_ENV = "/run/honeyphone/clock.env"
CLOCK_JSON = "/run/honeyphone/clock.json"
# On the container's own file system, not the /run tmpfs: the host reads
# these two through the engine (get_archive), which starts no process in the
# device (a host adb command would count as busy and hold the clock).
CLOCK_JUMPS = "/var/lib/honeyphone/clock_jumps.jsonl"
CLOCK_STATE = "/var/lib/honeyphone/clock.state"
CLOCK_REQUESTS = "/run/honeyphone/clock.requests"
CLOCK_ARMED = "/run/honeyphone/clock.armed"  # hpctl: every service has been started
ADBD_PID = "/run/honeyphone/adbd.pid"
ADBD_PORT = 5555
NS = 1_000_000_000
PACE_TICK_S = 0.02  # with max_rate, idle time is crossed in steps of this much real time
SYS_clock_gettime = 228  # x86_64 (kept for callers that want a raw real-time read)


_KIND_NAMES = {cl.KIND_SLEEP: "sleep", cl.KIND_POLL: "poll", cl.KIND_SEM: "semaphore wait", cl.KIND_COND: "condition wait"}


def real_time() -> float:
    """Real wall time.  The controller itself never loads the clock library."""
    return time.clock_gettime(time.CLOCK_REALTIME)


def mono_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


@dataclass(frozen=True)
class Config:
    start_epoch: float
    horizon_s: float | None = None  # device seconds after the start; None: no horizon
    fallback_rate: float = 14400.0
    fallback_after_s: float = 10.0
    fallback_floor: float = 1000.0
    inflight_cap_s: float = 30.0
    udp_cap_s: float = 5.0
    max_rate: float | None = None  # device s per real s at most (idle jumps and fallback); None: no bound

    @property
    def effective_fallback_rate(self) -> float:
        return self.fallback_rate if self.max_rate is None else max(1.0, min(self.fallback_rate, self.max_rate))

    @classmethod
    def from_manifest(cls, raw: dict[str, object]) -> "Config":
        def num(key: str, default: float | None) -> float | None:
            v = raw.get(key, default)
            return None if v is None else float(v)  # type: ignore[arg-type]

        base = cls(start_epoch=float(raw["start_epoch"]))  # type: ignore[arg-type]
        return cls(
            start_epoch=base.start_epoch,
            horizon_s=num("horizon_s", None),
            fallback_rate=num("fallback_rate", base.fallback_rate) or base.fallback_rate,
            fallback_after_s=num("fallback_after_s", base.fallback_after_s) or base.fallback_after_s,
            fallback_floor=num("fallback_floor", base.fallback_floor) or base.fallback_floor,
            inflight_cap_s=num("inflight_cap_s", base.inflight_cap_s) or base.inflight_cap_s,
            udp_cap_s=num("udp_cap_s", base.udp_cap_s) or base.udp_cap_s,
            max_rate=num("max_rate", None),
        )


@dataclass
class Proc:
    pid: int
    ppid: int
    comm: str
    role: str  # "firmware", "infra", "adb"


@dataclass
class Observation:
    busy: list[str] = field(default_factory=list)
    exchange: bool = False  # an exchange in flight (the fallback pauses)
    deadline: int | None = None  # earliest registered device deadline (device CLOCK_MONOTONIC ns)
    waiters: list[cl.Slot] = field(default_factory=list)
    seq: int = 0


CGROUP_V1_USAGE = "/sys/fs/cgroup/cpuacct/cpuacct.usage"  # ns
CGROUP_V2_STAT = "/sys/fs/cgroup/cpu.stat"  # usage_usec


def device_cpu_ns() -> int | None:
    """CPU the device's processes used (its cgroup), less this controller's
    own, in ns; None when the cgroup cannot be read.  The fallback measures
    crawling in CPU time, not real time: on a loaded host a 2 s computation
    takes many real seconds, and must not pass for a busy loop."""
    own = time.process_time_ns()
    text = _read(CGROUP_V1_USAGE)
    if text is not None and text.strip().isdigit():
        return int(text) - own
    text = _read(CGROUP_V2_STAT)
    if text is not None:
        for line in text.splitlines():
            key, _, val = line.partition(" ")
            if key == "usage_usec" and val.strip().isdigit():
                return int(val) * 1000 - own
    return None


def has_interp(exe: str) -> bool | None:
    """Whether the ELF file names a program interpreter (PT_INTERP: it is
    dynamically linked, so LD_PRELOAD applies); None when unreadable."""
    try:
        with open(exe, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only (x86_64)
                return None
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return None
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(len(table) // max(phentsize, 1)))


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


STATE_BLOCK = 4096


def _fixed_size(text: str) -> str:
    """``text`` padded with spaces to a multiple of :data:`STATE_BLOCK` bytes.

    Why: the host reads the state through the engine (``get_archive``),
    which stats the file and then streams it.  When the state is replaced in
    between (it is rewritten up to 10 times a second), the tar header carries
    the old size and the body the new file: cut short or padded, unreadable.
    Under load that happened on every read for 10 s and failed an analysis
    (CI, 2026-12-08).  States of one size make such a read whole: it gets
    one complete state, old or new.  JSON ignores the trailing spaces.
    """
    n = len(text.encode("utf-8"))
    return text + " " * (-n % STATE_BLOCK)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


class Controller:
    def __init__(self, config: Config) -> None:
        self.cfg = config
        self.start_mono = mono_ns()
        wall_offset = int(config.start_epoch * NS) - time.clock_gettime_ns(time.CLOCK_REALTIME)
        self.page = cl.ClockPage.create(self.start_mono, wall_offset)
        self.slots = cl.SlotTable.create()
        self.skip, self.wall, self.rate, self.since = 0, wall_offset, 1.0, self.start_mono
        self.net = NetDiag(frozenset({ADBD_PORT}), cap_s=config.inflight_cap_s)
        self.me = os.getpid()
        self.starts: dict[int, str] = {}  # pid -> start time, to tell a reused pid
        self.covered: dict[tuple[int, str, str], bool] = {}
        self.uncovered: dict[int, dict[str, object]] = {}
        self.jumps = 0
        self.jumped_s = 0.0
        self.fallback_on = False
        self.episodes = 0
        self.fallback: dict[str, object] | None = None
        self.fallback_s = 0.0
        self.reached = False
        self.stalled: set[str] = set()
        self.errors: list[str] = []
        self.idle = False  # the last look found the device idle (confirmed)
        self.exchange = False  # the last look found an exchange in flight
        self.busy_why = ""
        self.window: deque[tuple[int, int]] = deque()  # (real ns, device advance ns) of quiet ticks
        self.quiet_real = 0
        self.last_state = 0.0
        self.signals = 0
        self.armed = False
        paths.under(CLOCK_ARMED).unlink(missing_ok=True)
        self.sig = cl.wake_signal()
        self.segments = paths.under(CLOCK_JUMPS)
        self.segments.unlink(missing_ok=True)
        self._segment("start")

    # -- the clock ---------------------------------------------------------------

    def advance(self, mono: int | None = None) -> int:
        m = mono_ns() if mono is None else mono
        a = self.skip
        if self.rate > 1.0 and m > self.since:
            a += int((self.rate - 1.0) * (m - self.since))
        return a

    def device_mono(self) -> int:
        m = mono_ns()
        return m + self.advance(m)

    def device_wall(self) -> float:
        m = mono_ns()
        return (time.clock_gettime_ns(time.CLOCK_REALTIME) + self.wall + self.advance(m)) / NS

    def horizon_mono(self) -> int | None:
        if self.cfg.horizon_s is None:
            return None
        return self.start_mono + int(self.cfg.horizon_s * NS)

    def _segment(self, kind: str, why: str | None = None) -> None:
        rec: dict[str, object] = {"real": real_time(), "device": self.device_wall(), "rate": max(self.rate, 1.0),
                                  "kind": kind}
        if why:
            rec["why"] = why  # which wait the jump went to: for whoever audits a timeline
        with open(self.segments, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    def _publish(self) -> None:
        self.page.write(self.skip, self.wall, self.rate, self.since)

    def _fold(self) -> None:
        """Fold the running fallback into skip (rate back to 1)."""
        m = mono_ns()
        self.skip = self.advance(m)
        self.since = m

    def set_rate(self, rate: float, kind: str) -> None:
        self._fold()
        self.rate = rate
        self._publish()
        self._segment(kind)
        self._wake_all()

    def jump(self, delta_ns: int, kind: str = "idle", why: str | None = None) -> None:
        self._fold()
        self.skip += delta_ns
        self._publish()
        self._segment(kind, why)

    def set_wall(self, target_epoch: float) -> float:
        delta = target_epoch - self.device_wall()
        self.wall += int(delta * NS)
        self._publish()
        self._segment("wall")
        return delta

    def _armed(self) -> bool:
        if not self.armed:
            self.armed = paths.under(CLOCK_ARMED).exists()
        return self.armed

    # -- waking ------------------------------------------------------------------

    def _wake(self, waiters: list[cl.Slot], upto: int | None) -> None:
        for s in waiters:
            if s.kind in (cl.KIND_POLL, cl.KIND_SEM) and (upto is None or s.deadline_ns <= upto):
                if cl.tgkill(s.pid, s.tid, self.sig):
                    self.signals += 1

    def _wake_all(self) -> None:
        self._wake([s for _, s in self.slots.busy_slots()], None)

    # -- watching ----------------------------------------------------------------

    def _adbd_pid(self) -> int | None:
        text = _read(paths.under(ADBD_PID).as_posix())
        try:
            return int(text) if text else None
        except ValueError:
            return None

    def scan(self) -> list[Proc]:
        """Every process but init and this controller, with its role: ``adb``
        for what adbd runs for the host, ``infra`` for adbd itself and for
        ``docker exec`` (the host's hpctl status/stop), else ``firmware``."""
        adbd = self._adbd_pid()
        live: dict[int, Proc] = {}
        starts: dict[int, str] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid in (1, self.me):
                continue
            stat = _read(f"/proc/{pid}/stat")
            if not stat or ") " not in stat:
                continue
            comm = stat[stat.index("(") + 1: stat.rindex(")")]
            rest = stat[stat.rindex(")") + 2:].split()
            live[pid] = Proc(pid, int(rest[1]), comm, "firmware")
            starts[pid] = rest[19]
        for proc in live.values():
            p: Proc | None = proc
            hops = 0
            while p is not None and hops < 64:
                if p.pid == adbd:
                    proc.role = "infra" if p is proc else "adb"
                    break
                if p.ppid == 0:
                    proc.role = "infra"
                    break
                if p.ppid == 1:
                    break
                p, hops = live.get(p.ppid), hops + 1
        self.starts = starts
        return list(live.values())

    def _check_coverage(self, proc: Proc) -> None:
        key = (proc.pid, self.starts.get(proc.pid, ""), proc.comm)
        if key in self.covered:
            return
        maps = _read(f"/proc/{proc.pid}/maps")
        if maps is None:
            return
        if not maps.strip():
            return  # a kernel thread, or gone
        if "ld-linux" in maps and "libc.so" not in maps:
            return  # the dynamic loader is still mapping its libraries: look again later
        ok = "libhpclock.so" in maps or proc.comm == "strace"
        static = False
        if not ok:
            interp = has_interp(f"/proc/{proc.pid}/exe")
            if interp is None:
                return  # gone, or mid-exec: look again later
            if interp and "libc.so" not in maps:
                return  # dynamically linked, the loader is not done yet
            static = not interp
        self.covered[key] = ok
        if not ok and len(self.uncovered) < 64:
            exe = ""
            try:
                exe = os.readlink(f"/proc/{proc.pid}/exe")
            except OSError:
                pass
            self.uncovered[proc.pid] = {"pid": proc.pid, "comm": proc.comm, "exe": exe,
                                        "why": "statically linked" if static else "LD_PRELOAD dropped"}

    def observe(self) -> Observation:
        ob = Observation(seq=self.slots.seq)
        procs = self.scan()
        tids: set[int] = set()
        slots = self.slots.busy_slots()
        registered = {s.tid for _, s in slots}
        for proc in procs:
            if proc.role == "infra":
                continue
            if proc.role == "adb":
                ob.busy.append(f"adb command {proc.comm}")
                continue
            self._check_coverage(proc)
            try:
                tasks = os.listdir(f"/proc/{proc.pid}/task")
            except OSError:
                continue
            for t in tasks:
                tid = int(t)
                tids.add(tid)
                stat = _read(f"/proc/{proc.pid}/task/{t}/stat")
                if not stat or ") " not in stat:
                    continue
                st = stat[stat.rindex(")") + 2]
                if st in "SZXIT" or (tid in registered and st in "Rt"):
                    continue
                ob.busy.append(f"{proc.comm}[{tid}] {'runnable' if st == 'R' else st}")
        now = mono_ns()
        dev_now = now + self.advance(now)
        for idx, s in slots:
            if s.tid not in tids and not os.path.exists(f"/proc/{s.pid}/task/{s.tid}"):
                self.slots.clear(idx, s.tid)  # the thread died inside its wait
                continue
            ob.waiters.append(s)
            age = (now - s.since_real_ns) / NS
            # TCP: the kernel's socket table (netdiag), looked at afresh each
            # time, says whether an answer is on its way; the library's flag
            # only makes the wait itself time out in real time.
            if s.flags & cl.FLAG_UDP and age < self.cfg.udp_cap_s:
                ob.busy.append(f"udp exchange of [{s.tid}]")
                ob.exchange = True
            if s.flags and s.deadline_ns <= dev_now:
                continue  # a network wait past its device deadline runs out in real time: no deadline to jump to
            if ob.deadline is None or s.deadline_ns < ob.deadline:
                ob.deadline = s.deadline_ns
        try:
            net = self.net.in_flight()
        except OSError as exc:
            if len(self.errors) < 10:
                self.errors.append(f"sock_diag: {exc}")
            net = None
        if net is not None:
            if net.busy:
                ob.busy += net.reasons
                ob.exchange = True
            self.stalled.update(net.stalled[:16])
        if self.slots.seq != ob.seq:
            ob.busy.append("waits changed during the look")
        return ob

    # -- the loop ------------------------------------------------------------------

    def _crawling(self, ob: Observation, dt: int, jumped: int) -> bool | None:
        """Whether the device crawls: over the last ``fallback_after_s``
        seconds of the device's CPU time spent quiet (no exchange in flight,
        no adb command), idle jumps gave less than ``fallback_floor`` device
        seconds per CPU second.  Advance the fallback itself produced never counts as
        progress, so a device that starts idling again turns it off.  None
        when this tick does not count or the window is not full yet."""
        if ob.exchange or any(b.startswith("adb command") for b in ob.busy):
            return None
        self.window.append((dt, jumped))
        self.quiet_real += dt
        span = int(self.cfg.fallback_after_s * NS)
        total = sum(d for d, _ in self.window)
        while self.window and total - self.window[0][0] >= span:
            total -= self.window.popleft()[0]
        if self.quiet_real < span or total < span:
            return None
        progress = (total + sum(a for _, a in self.window)) / max(total, 1)
        return progress < self.cfg.fallback_floor

    def _fallback(self, on: bool, dev_now: int, why: str) -> None:
        """Start or end a fallback episode (the rate follows in the loop)."""
        if on == self.fallback_on:
            return
        self.fallback_on = on
        if on:
            self.episodes += 1
            if self.fallback is None:
                self.fallback = {"started_device_s": (dev_now - self.start_mono) / NS,
                                 "why": f"the device was not idle for {self.cfg.fallback_after_s:g} s "
                                        f"(last: {why})"}
            self.fallback["episodes"] = self.episodes
        elif self.rate > 1.0:
            self.set_rate(1.0, "fallback-off")

    def _handle_requests(self) -> None:
        d = paths.under(CLOCK_REQUESTS)
        try:
            names = os.listdir(d)
        except OSError:
            return
        for name in names:
            if not name.endswith(".req"):
                continue
            p = d / name
            try:
                req = json.loads(p.read_text(encoding="utf-8"))
                p.unlink()
                delta = self.set_wall(float(req["set_wall"]))
                self._wake_all()
                _write_atomic(d / (name[:-4] + ".ack"), json.dumps({"delta": delta}))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _write_atomic(d / (name[:-4] + ".ack"), json.dumps({"error": str(exc)}))

    def write_state(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_state < 0.1:
            return
        self.last_state = now
        dev_elapsed = (self.device_mono() - self.start_mono) / NS
        state = {
            "real": real_time(), "device": self.device_wall(), "elapsed_s": dev_elapsed,
            "horizon_s": self.cfg.horizon_s, "reached": self.reached,
            "jumps": self.jumps, "jumped_s": self.jumped_s, "signals": self.signals,
            "fallback": self.fallback, "fallback_s": self.fallback_s,
            "fallback_rate": self.cfg.effective_fallback_rate, "rate": max(self.rate, 1.0),
            "idle": self.idle, "exchange": self.exchange, "busy": self.busy_why,
            "uncovered": list(self.uncovered.values()), "stalled": sorted(self.stalled)[:32],
            "errors": self.errors,
        }
        _write_atomic(paths.under(CLOCK_STATE), _fixed_size(json.dumps(state)))

    def run(self) -> None:
        prev_idle: tuple[int, int | None] | None = None
        interval = 0.001
        last = mono_ns()
        last_cpu = device_cpu_ns()

        def quiet_dt(now: int) -> int:
            """Time this tick adds to the fallback's window: device CPU, else real."""
            nonlocal last_cpu
            cpu = device_cpu_ns()
            dt = (cpu - last_cpu) if (cpu is not None and last_cpu is not None) else now - last
            last_cpu = cpu
            return max(dt, 0)
        while True:
            bell = self.slots.doorbell
            self._handle_requests()
            ob = self.observe()
            now = mono_ns()
            adv = self.advance(now)
            dev_now = now + adv
            horizon = self.horizon_mono()
            if horizon is not None and dev_now >= horizon and not self.reached:
                self.reached = True
                if self.rate > 1.0:
                    self.set_rate(1.0, "horizon")
                self.write_state(force=True)
            self.exchange = ob.exchange
            if ob.busy:
                prev_idle = None
                self.idle, self.busy_why = False, ob.busy[0][:200]
                crawling = self._crawling(ob, quiet_dt(now), 0)
                if crawling is not None and not self.reached:
                    self._fallback(crawling, dev_now, ob.busy[0])
                want = self.cfg.effective_fallback_rate if (self.fallback_on and not ob.exchange and not self.reached) else 1.0
                if want != max(self.rate, 1.0):
                    self.set_rate(want, "fallback" if want > 1.0 else "exchange")
                if self.rate > 1.0:
                    self.fallback_s += (now - last) / NS
                    if horizon is not None:  # the fallback stops at the horizon
                        left = (horizon - dev_now) / self.rate / NS
                        interval = min(interval, max(left, 0.0005))
                last = now
                self.write_state()
                self.slots.wait_doorbell(bell, interval)
                interval = min(interval * 2, 0.01)
                continue
            # Idle: confirm once (same waits, same earliest deadline), then jump.
            key = (ob.seq, ob.deadline)
            if prev_idle != key:
                prev_idle = key
                last = now
                time.sleep(0.0003)
                continue
            prev_idle = None
            interval = 0.001
            self.busy_why = ""
            goal = ob.deadline
            if goal is None and horizon is not None and self._armed():
                # Nothing waits on time (every service ended, or waits on
                # nothing in flight): the rest of the run is idle.
                goal = horizon
            if goal is not None and not self.reached:
                self.idle = False  # the waiters it wakes are about to run
                target = goal if horizon is None else min(goal, horizon)
                if self.cfg.max_rate is not None:  # paced: at most max_rate x the real time since the last look
                    target = min(target, dev_now + int(self.cfg.max_rate * PACE_TICK_S * NS))
                delta = target - dev_now
                if delta > 0:
                    first = min(ob.waiters, key=lambda w: w.deadline_ns, default=None)
                    why = ("the horizon" if first is None or target < first.deadline_ns else
                           f"{_KIND_NAMES.get(first.kind, '?')} of pid {first.pid} tid {first.tid}"
                           f"{' (network)' if first.flags else ''}")
                    self.jump(delta, why=why)
                    self.jumps += 1
                    self.jumped_s += delta / NS
                self._wake(ob.waiters, target)
                if self._crawling(ob, quiet_dt(now), max(delta, 0)) is False:
                    self._fallback(False, dev_now, "")
                last = mono_ns()
                self.write_state()
                if self.cfg.max_rate is not None and target < goal:
                    self.slots.wait_doorbell(self.slots.doorbell, PACE_TICK_S)
                continue
            last = now
            self.idle = True  # idle, nothing to jump to (or the horizon reached)
            self.write_state()
            # Only a new wait (which rings) can make a jump possible: look seldom.
            self.slots.wait_doorbell(bell, 0.1)


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: python3 -m twinrt.clockd CONFIG_JSON", file=sys.stderr)
        return 2
    cfg = Config.from_manifest(json.loads(sys.argv[1]))
    ctl = Controller(cfg)
    env_lines = [f"LD_PRELOAD={cl.LIBRARY}", "TZ=UTC"]
    _write_atomic(paths.under(CLOCK_JSON), json.dumps({"start_epoch": cfg.start_epoch, "pid": os.getpid()}))
    _write_atomic(paths.under(CLOCK_ENV), "\n".join(env_lines) + "\n")
    paths.under(CLOCK_REQUESTS).mkdir(parents=True, exist_ok=True)
    os.chmod(paths.under(CLOCK_REQUESTS), 0o700)
    ctl.write_state(force=True)

    def stop(signum: int, frame: object) -> None:
        ctl.write_state(force=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        ctl.run()
    except Exception as exc:  # recorded for the report, never silent
        ctl.errors.append(f"controller crashed: {exc!r}")
        ctl.write_state(force=True)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
