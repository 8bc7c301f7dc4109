"""Summary tests: process tree, attribution answers, flow lookup, properties."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.monitor.events import Comm, Connect, Event, Exec, Exit, Fork, Open, Send
from sandbox.monitor.summary import (
    Summary,
    SummaryBuilder,
    summarize,
    summarize_lines,
)

CONTACTS = "/data/user/0/com.android.providers.contacts/databases/contacts2.db"
CALLLOG = "/data/user/0/com.android.providers.contacts/databases/calllog.db"


def tcp(pid: int, ts: float, addr: str, port: int, *, ok: bool = True,
        in_progress: bool = False, fd: int = 5) -> Connect:
    return Connect(pid, ts, "AF_INET6" if ":" in addr else "AF_INET", addr, port, ok,
                   in_progress, fd, "TCP")


def send(pid: int, ts: float, addr: str | None, port: int | None, n: int,
         syscall: str = "write") -> Send:
    return Send(pid, ts, 5, "AF_INET", addr, port, n, syscall, "TCP")


def sysoper_tree() -> list[Event]:
    return [
        Comm(100, 1.0, "sysoper"),
        Exec(100, 1.0, "/system/bin/sysoper", ("sysoper", "--daemon")),
        Fork(100, 101, 2.0),
        Comm(101, 2.1, "sysoper"),
        Exec(101, 2.1, "/bin/sh", ("sh", "-c", "content query --uri content://call_log/calls")),
        Comm(101, 2.2, "sh"),
        Fork(101, 102, 2.3),
        Exec(102, 2.4, "/system/bin/content",
             ("content", "query", "--uri", "content://call_log/calls"),
             content_command=True, canary_store="call_log"),
        Comm(102, 2.5, "content"),
        Exec(102, 2.6, "/usr/bin/python3",
             ("python3", "-m", "twinrt.content", "query", "--uri", "content://call_log/calls"),
             content_command=True, canary_store="call_log"),
        Open(102, 2.7, CALLLOG, "O_RDONLY", True, "call_log", CALLLOG),
        Exit(102, 2.8, code=0),
        Exit(101, 2.9, code=0),
        Open(100, 3.0, CONTACTS, "O_RDONLY|O_CLOEXEC", True, "contacts", CONTACTS),
        Open(100, 3.1, CONTACTS + "-journal", "O_RDONLY", True, "contacts"),
        tcp(100, 4.0, "203.0.113.9", 443),
        send(100, 4.1, "203.0.113.9", 443, 1000),
        send(100, 4.2, "203.0.113.9", 443, 24),
    ]


def test_process_tree_ancestry_and_names() -> None:
    s = summarize(sysoper_tree())
    root, sh, content = (s.process(p) for p in (100, 101, 102))
    assert root is not None and sh is not None and content is not None
    assert (root.exe, root.argv, root.comm, root.parent, root.start_ts) == (
        "/system/bin/sysoper", ("sysoper", "--daemon"), "sysoper", None, 1.0)
    assert (sh.parent, sh.exe, sh.comm, sh.exit_code, sh.start_ts) == (100, "/bin/sh", "sh", 0, 2.0)
    assert content.exe == "/usr/bin/python3"  # last exec wins
    assert [a.pid for a in content.ancestry] == [101, 100]
    assert [a.name for a in content.ancestry] == ["sh", "sysoper"]
    assert content.describe() == "content (pid 102), child of sh (pid 101) < sysoper (pid 100)"
    assert root.describe() == "sysoper (pid 100)"


def test_store_readers_first_ts_and_the_content_commands_parent() -> None:
    """The process that runs `content query` gets its rows: sh (101) reads
    call_log through its child; nothing is inherited further up (100)."""
    s = summarize(sysoper_tree())
    rows = [(r.process.pid, r.store, r.first_ts) for r in s.store_readers()]
    assert rows == [(101, "call_log", 2.4), (102, "call_log", 2.4), (100, "contacts", 3.0)]
    content = s.process(102)
    assert content is not None
    vias = {(a.via, a.count) for a in content.stores}
    assert vias == {("content", 2), ("open", 1)}
    sh = s.process(101)
    assert sh is not None and [(a.store, a.via) for a in sh.stores] == [("call_log", "content")]
    root = s.process(100)
    assert root is not None
    assert [(a.store, a.count, a.detail) for a in root.stores] == [("contacts", 2, CONTACTS)]


def test_connections_answer() -> None:
    s = summarize(sysoper_tree())
    assert [(r.process.pid, r.address, r.port, r.first_ts, r.bytes_sent)
            for r in s.connections()] == [(100, "203.0.113.9", 443, 4.0, 1024)]


def test_forked_child_inherits_image_not_findings() -> None:
    s = summarize([
        Comm(1, 0.5, "svc"),
        Exec(1, 0.5, "/system/bin/svc", ("svc",)),
        Open(1, 1.0, CONTACTS, "O_RDONLY", True, "contacts"),
        tcp(1, 1.5, "10.0.0.1", 80),
        Fork(1, 2, 2.0),
        send(2, 3.0, "10.0.0.1", 80, 5),  # inherited socket, but its own bytes
    ])
    child = s.process(2)
    assert child is not None
    assert (child.exe, child.argv, child.comm, child.exec_seen) == (
        "/system/bin/svc", ("svc",), "svc", False)
    assert child.stores == ()
    assert [(d.address, d.connects, d.bytes_sent) for d in child.destinations] == [
        ("10.0.0.1", 0, 5)]
    assert child.describe() == "svc (pid 2), child of svc (pid 1)"


def test_threads_fold_into_their_process() -> None:
    s = summarize([
        Exec(10, 1.0, "/system/bin/app", ("app",)),
        # the thread's syscalls can be printed before the clone line returns
        tcp(12, 1.9, "198.51.100.7", 443),
        Open(12, 1.95, CONTACTS, "O_RDONLY", True, "contacts"),
        Fork(10, 11, 2.0, thread=True),
        Fork(10, 12, 1.8, thread=True),
        send(11, 2.5, "198.51.100.7", 443, 300),
        send(12, 2.6, "198.51.100.7", 443, 200),
        Comm(11, 2.6, "OkHttp Dispatch"),
        Exit(11, 3.0, code=0),
        Exit(12, 3.0, code=0),
        send(10, 3.5, "198.51.100.7", 443, 100),
    ])
    assert [p.pid for p in s.processes] == [10]
    (app,) = s.processes
    assert app.threads == (11, 12)
    assert app.comm is None  # thread names are not the process name
    assert app.exit_ts is None  # threads ending is not the process ending
    (dest,) = app.destinations
    assert (dest.connects, dest.bytes_sent, dest.sends) == (1, 600, 3)
    assert [r.store for r in s.store_readers()] == ["contacts"]
    assert s.process(12) is app


def test_child_seen_before_its_fork_line_is_adopted() -> None:
    s = summarize([
        Exec(200, 1.0, "/system/bin/svc", ("svc",)),
        Exec(201, 2.1, "/system/bin/content", ("content", "query"), content_command=True,
             canary_store="unknown"),
        Fork(200, 201, 2.0),
        Exit(201, 2.5, code=0),
    ])
    child = s.process(201)
    assert child is not None
    assert (child.parent, child.exe, child.exec_seen, child.start_ts) == (
        200, "/system/bin/content", True, 2.0)
    assert len(s.processes) == 2
    assert [(r.process.pid, r.store) for r in s.store_readers()] == [(201, "unknown")]


def test_pid_reuse_makes_a_new_process() -> None:
    s = summarize([
        Exec(1, 0.0, "/init", ("init",)),
        Fork(1, 300, 1.0),
        Exec(300, 1.1, "/bin/a", ("a",)),
        Open(300, 1.2, CONTACTS, "O_RDONLY", True, "contacts"),
        Exit(300, 1.3, code=0),
        Fork(1, 300, 5.0),
        Exec(300, 5.1, "/bin/b", ("b",)),
        tcp(300, 5.2, "192.0.2.1", 25),
    ])
    procs = [p for p in s.processes if p.pid == 300]
    assert [p.exe for p in procs] == ["/bin/a", "/bin/b"]
    latest = s.process(300)
    assert latest is not None and latest.exe == "/bin/b"
    assert [(r.process.exe, r.store) for r in s.store_readers()] == [("/bin/a", "contacts")]
    assert [(r.process.exe, r.port) for r in s.connections()] == [("/bin/b", 25)]


def test_connect_outcomes_local_and_unattributed() -> None:
    s = summarize([
        tcp(1, 1.0, "203.0.113.5", 443, ok=False, in_progress=True),
        tcp(1, 1.1, "203.0.113.5", 443),
        Connect(1, 1.2, "AF_INET", "203.0.113.5", 443, False, False, 6, "TCP", False, "ECONNREFUSED"),
        Connect(1, 1.3, "AF_UNIX", "/dev/socket/logdw", None, True, False, 7, "UNIX-DGRAM", True),
        Send(1, 1.4, 8, "AF_INET", "10.0.0.53", 53, 40, "sendto", "UDP"),
        Send(1, 1.5, 9, "AF_INET", None, None, 77, "write", "TCP"),
        tcp(1, 1.6, "127.0.0.1", 5037),
    ])
    (p,) = s.processes
    d = {(x.address, x.port): x for x in p.destinations}
    web = d[("203.0.113.5", 443)]
    assert (web.connects, web.connects_ok, web.connects_in_progress, web.connects_failed) == (3, 1, 1, 1)
    assert not web.local and not web.loopback
    dns = d[("10.0.0.53", 53)]
    assert (dns.connects, dns.sends, dns.bytes_sent, dns.protocols) == (0, 1, 40, ("UDP",))
    assert d[("/dev/socket/logdw", None)].local
    assert d[("127.0.0.1", 5037)].loopback
    assert p.unattributed_bytes == 77
    assert [r.address for r in s.connections()] == ["203.0.113.5", "10.0.0.53", "127.0.0.1"]
    assert "/dev/socket/logdw" in [r.address for r in s.connections(include_local=True)]


def test_failed_store_opens_are_not_reads() -> None:
    s = summarize([
        Open(5, 1.0, CONTACTS, "O_RDONLY", False, "contacts", None, "EACCES"),
        Open(5, 2.0, CONTACTS, "O_RDONLY", False, "contacts", None, "EACCES"),
    ])
    assert s.store_readers() == []
    (p,) = s.processes
    assert [(a.store, a.first_ts, a.count) for a in p.failed_store_opens] == [("contacts", 1.0, 2)]


# --------------------------------------------------------------------------
# Flow -> process.


def flows() -> Summary:
    return summarize([
        Exec(1, 0.0, "/system/bin/updater", ("updater",)),
        Exec(2, 0.0, "/system/bin/sysoper", ("sysoper",)),
        Exec(3, 0.0, "/system/bin/chatty", ("chatty",)),
        tcp(1, 10.0, "203.0.113.9", 443),
        tcp(2, 20.0, "203.0.113.9", 443),
        tcp(2, 21.0, "203.0.113.9", 8443),
        tcp(1, 30.0, "2001:DB8:0::1", 443),  # the summary normalises too
        # chatty keeps writing on an old connection through t=40..50
        *[send(3, 40.0 + i * 0.5, "198.51.100.1", 443, 10) for i in range(21)],
        tcp(2, 45.2, "198.51.100.1", 443),
    ])


@pytest.mark.parametrize(
    ("address", "port", "ts", "window", "pid"),
    [
        ("203.0.113.9", 443, 10.3, 2.0, 1),
        ("203.0.113.9", 443, 19.5, 2.0, 2),
        ("203.0.113.9", 443, 15.0, 2.0, None),  # nobody within the window
        ("203.0.113.9", 443, 15.0, 5.0, 1),  # full tie (distance, connects, start): lower pid
        ("203.0.113.9", 8443, 20.0, 2.0, 2),
        ("203.0.113.9", None, 21.1, 0.5, 2),
        ("2001:db8::1", 443, 30.0, 1.0, 1),
        ("2001:DB8:0::1", 443, 30.0, 1.0, 1),  # normalised query
        ("::ffff:203.0.113.9", 443, 10.0, 1.0, 1),  # v4-mapped query
        ("198.51.100.1", 443, 45.0, 1.0, 2),  # a connect beats ongoing writes
        ("198.51.100.1", 443, 42.0, 1.0, 3),  # otherwise the writer
        ("192.0.2.200", 443, 10.0, 100.0, None),
    ],
)
def test_who_connected(address: str, port: int | None, ts: float, window: float,
                       pid: int | None) -> None:
    got = flows().who_connected(address, port, ts, window)
    assert (got.pid if got is not None else None) == pid


FAKENET = "10.213.0.2"
DEVICE = "10.213.0.3"


def tls(pid: int, ts: float, local_port: int, *, fd: int = 5, n: int = 517) -> list[Event]:
    """A connect to the fakenet's :443 and the ClientHello from ``local_port``."""
    return [
        Connect(pid, ts, "AF_INET", FAKENET, 443, True, False, fd, "TCP"),
        Send(pid, ts + 0.001, fd, "AF_INET", FAKENET, 443, n, "write", "TCP", DEVICE, local_port),
    ]


def timeouts_firmware() -> Summary:
    """The real case: a 15-minute poller and a 72 h uploader wake together."""
    return summarize([
        Exec(10, 0.0, "/system/priv-app/timeouts/poller.py", ("poller.py",)),
        Exec(20, 0.0, "/system/priv-app/timeouts/uploader.py", ("uploader.py",)),
        *tls(10, 100.0, 40000),
        *tls(10, 1000.0, 40001),
        # hour 72: both at the same instant; the poller even connects first
        *tls(10, 5000.0, 40002),
        *tls(20, 5000.0, 40003),
        # much later the uploader's port is reused by the poller
        *tls(10, 9000.0, 40003),
    ])


@pytest.mark.parametrize(
    ("ts", "local_port", "pid"),
    [
        (5000.0, 40002, 10),
        (5000.0, 40003, 20),  # without the port this would be the poller
        (5000.5, 40003, 20),  # data a little later on the same socket
        (9000.0, 40003, 10),  # the port reused later: by time
        (100.0, 40000, 10),
        (5000.0, None, 10),  # no local port: today's behaviour (tie -> lower pid)
        (5000.0, 49999, 10),  # unknown port: fall back to time
        (7000.0, 40003, None),  # the port, but nobody near that time
    ],
)
def test_who_connected_by_local_port(ts: float, local_port: int | None, pid: int | None) -> None:
    got = timeouts_firmware().who_connected(FAKENET, 443, ts, 2.0, local_port=local_port)
    assert (got.pid if got is not None else None) == pid


def test_who_owned_is_the_exact_half() -> None:
    s = timeouts_firmware()
    owner = s.who_owned(FAKENET, 443, 40003, 5000.0)
    assert owner is not None and owner.pid == 20
    assert s.who_owned(FAKENET, None, 40003, 9000.0) is not None
    assert s.who_owned(FAKENET, 443, 49999, 5000.0) is None  # no fallback to time
    assert s.who_owned(FAKENET, 80, 40003, 5000.0) is None
    assert s.who_owned(FAKENET, 443, 40003, 5010.0, window=2.0) is None
    late = s.who_owned(FAKENET, 443, 40003, 5010.0, window=20.0)
    assert late is not None and late.pid == 20


def test_local_ports_are_recorded_per_destination() -> None:
    s = timeouts_firmware()
    poller = s.process(10)
    assert poller is not None
    (dest,) = poller.destinations
    assert [port for port, _ in dest.local_ports] == [40000, 40001, 40002, 40003]
    assert dest.port_spans(40000) == ((100.001, 100.001),)
    assert dest.port_spans(40003) == ((9000.001, 9000.001),)
    assert dest.port_spans(12345) == ()
    d = json.loads(json.dumps(s.to_dict()))
    assert d["processes"][0]["destinations"][0]["local_ports"][0] == [40000, [[100.001, 100.001]]]
    assert d["processes"][0]["destinations"][0]["local_ports_dropped"] == 0


def test_udp_connect_with_a_bound_port_counts() -> None:
    s = summarize([
        Connect(1, 5.0, "AF_INET", FAKENET, 53, True, False, 3, "UDP", False, None, "0.0.0.0", 5353),
        Connect(2, 5.0, "AF_INET", FAKENET, 53, True, False, 3, "UDP", False, None, "0.0.0.0", 5354),
    ])
    got = s.who_connected(FAKENET, 53, 5.0, local_port=5354)
    assert got is not None and got.pid == 2
    failed = summarize([
        Connect(1, 5.0, "AF_INET", FAKENET, 53, False, False, 3, "UDP", False, "ECONNREFUSED",
                "0.0.0.0", 5353),
    ])
    assert failed.processes[0].destinations[0].local_ports == ()


def test_local_ports_are_bounded_least_recently_used_first() -> None:
    events: list[Event] = [Exec(1, 0.0, "/system/bin/spray", ("spray",))]
    for i in range(5000):
        events += tls(1, float(i), 30000 + i)
    events.append(Send(1, 6000.0, 5, "AF_INET", FAKENET, 443, 1, "write", "TCP", DEVICE, 30000))
    s = SummaryBuilder(max_local_ports=64).add_all(events).build()
    (dest,) = s.processes[0].destinations
    assert len(dest.local_ports) == 64
    assert dest.local_ports_dropped == 5000 - 64 + 1  # 30000 came back after being dropped
    kept = {port for port, _ in dest.local_ports}
    assert 30000 in kept and 34999 in kept and 30001 not in kept
    # dropped: not matched by port, but time still finds the process
    got = s.who_connected(FAKENET, 443, 10.0, 2.0, local_port=30010)
    assert got is not None and got.pid == 1


def test_port_spans_stay_few_when_one_process_reuses_a_port() -> None:
    events: list[Event] = [Exec(1, 0.0, "/system/bin/poll", ("poll",))]
    for i in range(100):
        events += tls(1, i * 900.0, 40000)
    (dest,) = summarize(events).processes[0].destinations
    spans = dest.port_spans(40000)
    assert 1 <= len(spans) <= 4
    assert spans[0][0] == 0.001 and spans[-1][1] == 99 * 900.0 + 0.001
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(40000, 40008), st.integers(0, 200)),
                min_size=1, max_size=30))
def test_the_port_owner_is_found_whatever_the_timing(uses: list[tuple[int, int, int]]) -> None:
    """Connections at coarse times (many at the same instant, ports reused
    later by others): asked with its port and time, each maps to its process."""
    held: dict[tuple[int, int], int] = {}
    for pid, port, slot in uses:
        held.setdefault((port, slot), pid)  # one socket per port at a time
    events: list[Event] = [Exec(pid, 0.0, f"/bin/p{pid}", (f"p{pid}",)) for pid in range(1, 7)]
    for (port, slot), pid in held.items():
        events += tls(pid, 100.0 + slot * 10.0, port)
    s = summarize(events)
    for (port, slot), pid in held.items():
        got = s.who_connected(FAKENET, 443, 100.0 + slot * 10.0, 2.0, local_port=port)
        assert got is not None and got.pid == pid


def test_threads_merge_their_ports() -> None:
    """A thread seen before its clone line keeps its ports when folded in."""
    events: list[Event] = [
        Exec(1, 0.0, "/system/bin/app", ("app",)),
        *tls(2, 1.0, 41000),
        Fork(1, 2, 0.5, thread=True),
        *tls(1, 2.0, 41001),
    ]
    s = summarize(events)
    (proc,) = s.processes
    (dest,) = proc.destinations
    assert [port for port, _ in dest.local_ports] == [41000, 41001]


# --------------------------------------------------------------------------
# Pruning, serialisation, builder API.


def test_idle_exited_processes_are_pruned_past_the_cap() -> None:
    events: list[Event] = [Exec(1, 0.0, "/system/bin/svc", ("svc",))]
    for i in range(10):
        child = 100 + i
        events += [Fork(1, child, float(i)), Exec(child, i + 0.1, "/system/bin/getprop", ("getprop",)),
                   Exit(child, i + 0.2, code=0)]
    events += [Fork(1, 500, 20.0), Fork(500, 501, 20.1),
               Open(501, 20.2, CONTACTS, "O_RDONLY", True, "contacts"),
               Exit(501, 20.3, code=0), Exit(500, 20.4, code=0)]
    s = SummaryBuilder(max_idle_processes=3).add_all(events).build()
    assert s.pruned_processes == 7
    getprops = [p.pid for p in s.processes if p.exe == "/system/bin/getprop"]
    assert getprops == [107, 108, 109]
    reader = s.process(501)
    assert reader is not None and [a.pid for a in reader.ancestry] == [500, 1]
    assert s.process(500) is not None  # has a child: never idle


def test_to_dict_is_json() -> None:
    s = summarize_lines([
        '7<svc> 1.5 openat(AT_FDCWD, "/data/contacts2.db", O_RDONLY) = 3</data/contacts2.db>',
        '7<svc> 1.6 connect(4<TCP:[1]>, {sa_family=AF_INET, sin_port=htons(443), '
        'sin_addr=inet_addr("203.0.113.1")}, 16) = 0',
        '7<svc> 1.7 write(4<TCP:[10.0.0.2:5->203.0.113.1:443]>, "x", 1) = 1',
        "garbage",
    ])
    d = s.to_dict()
    back = json.loads(json.dumps(d))
    assert back["store_readers"] == [
        {"pid": 7, "name": "svc", "store": "contacts", "first_ts": 1.5, "process": "svc (pid 7)"}]
    assert back["connections"][0]["bytes_sent"] == 1
    assert back["parse_stats"]["unparseable"] == 1
    assert back["processes"][0]["destinations"][0]["connect_activity"] == [[1.6, 1.6, 1]]


def test_builder_add_matches_add_all_and_rejects_bad_config() -> None:
    events = sysoper_tree()
    b = SummaryBuilder()
    for e in events:
        b.add(e)
    assert b.build() == summarize(events)
    with pytest.raises(ValueError):
        SummaryBuilder(activity_gap=0)
    with pytest.raises(ValueError):
        SummaryBuilder(max_intervals=0)


# --------------------------------------------------------------------------
# Properties over random event streams.

_pids = st.integers(1, 12)
_ts = st.floats(0, 100, allow_nan=False)
_addr = st.sampled_from(["203.0.113.1", "203.0.113.2", "::1", "10.0.0.53", None])
_port = st.sampled_from([53, 443, 8080, None])
_store = st.sampled_from(["contacts", "call_log", "sms", None])

_events = st.one_of(
    st.builds(Fork, _pids, _pids, _ts, st.booleans()),
    st.builds(lambda p, t, c: Exit(p, t, code=c), _pids, _ts, st.integers(0, 255)),
    st.builds(lambda p, t, n: Comm(p, t, n), _pids, _ts, st.sampled_from(["a", "b"])),
    st.builds(lambda p, t, s, ok: Open(p, t, "/x/contacts2.db", "O_RDONLY", ok, s),
              _pids, _ts, _store, st.booleans()),
    st.builds(lambda p, t, s: Exec(p, t, "/bin/content", ("content",), True, False, s is not None, s),
              _pids, _ts, _store),
    st.builds(lambda p, t, a, port, ok: Connect(p, t, "AF_INET", a, port, ok),
              _pids, _ts, _addr, _port, st.booleans()),
    st.builds(lambda p, t, a, port, n: Send(p, t, 3, "AF_INET", a, port, n, "write"),
              _pids, _ts, _addr, _port, st.integers(0, 10_000)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_events, max_size=60))
def test_random_streams_conserve_bytes_and_serialise(events: list[Event]) -> None:
    s = SummaryBuilder(max_idle_processes=2).add_all(events).build()
    sent = sum(e.nbytes for e in events if isinstance(e, Send))
    kept = sum(d.bytes_sent for p in s.processes for d in p.destinations)
    kept += sum(p.unattributed_bytes for p in s.processes)
    assert kept == sent  # processes with bytes are never pruned
    json.dumps(s.to_dict())
    for row in s.store_readers():
        assert row.store in {a.store for a in row.process.stores}
    for proc in s.processes:
        assert proc.pid not in [a.pid for a in proc.ancestry] or len(proc.ancestry) < 64
        for a, b in zip(proc.destinations, proc.destinations[1:]):
            assert a.first_ts <= b.first_ts
    stores = {(e.pid, e.canary_store) for e in events if isinstance(e, Open) and e.ok and e.canary_store}
    assert {r.store for r in s.store_readers()} >= {st_ for _, st_ in stores}
