"""Hostile firmware (issue 9, part 2): each case is contained and reported,
with the host and other analyses unaffected.

Every case runs the real pipeline on the real twin, fakenet, tcpdump and
adb, with a bundle under ``fw_*`` next to this file, and checks three
things: the containment held (a limit stopped it; nothing reached the host,
another device or the outside), the report says what happened (its
``health.incidents``, or the outcome's error when the only safe answer is to
stop), and nothing of the analysis is left behind.  The fork bomb and the
memory hog each run beside a benign analysis that must complete clean.

The device clock is paced (``ClockSettings.max_rate``) so fast-forward lasts long enough for the firmware
to do its worst (6-18 s of real time); the device limits are the defaults
except where a smaller one keeps the test fast (disk sizes, capture size).
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import docker
import dpkt
import pytest
from hostnet import host_uplinks, uplink_bpf
from faultlab import (
    EXAMPLES,
    HERE,
    AnalysisRun,
    assert_nothing_left,
    assert_valid_pcap_if_any,
    report_incidents,
    run,
    service_log,
)

from sandbox.containers.cleanup import cleanup
from sandbox.containers.device_container import TWIN_CAPS, TWIN_DATA_MOUNTS
from sandbox.model import ProgressEvent, Stage, Verdict
from sandbox.device import AdbServer
from sandbox.device.twin import TwinHandle, boot_twin, new_analysis_id
from sandbox.network.capture import Capture
from sandbox.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("faults-hostile")]

MIB = 1024 * 1024
DOC_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")
# The escape prober's outside targets (see hostnet.uplink_bpf for the filter).
ESCAPE_TARGETS = ("203.0.113.5", "198.51.100.7", "192.0.2.9")


@pytest.fixture(scope="module")
def hp(hp_settings: Settings, built_images: None) -> Settings:
    return hp_settings


def at_rate(settings: Settings, rate: float, **limits: int) -> Settings:
    """At most ``rate`` device seconds per real second (idle jumps are paced), so fast-forward lasts."""
    return replace(settings, clock=replace(settings.clock, max_rate=rate),
                   device_limits=replace(settings.device_limits, **limits))


def completed(r: AnalysisRun, timeout: float = 300.0) -> dict[str, Any]:
    outcome = r.wait(timeout)
    assert outcome.error is None, outcome.error
    return dict(outcome.report)


def incidents(r: AnalysisRun) -> dict[str, list[dict[str, Any]]]:
    assert r.outcome is not None
    return report_incidents(r.outcome)


def service(report: dict[str, Any], name: str) -> dict[str, Any]:
    return {s["name"]: s for s in report["health"]["services"]}[name]


def run_beside_benign(hostile: AnalysisRun, hp: Settings, client: docker.DockerClient, tmp: Path) -> AnalysisRun:
    """Start a benign analysis once ``hostile`` is fast-forwarding; both run at once."""
    hostile.wait_fast_forward()
    return run(hp, client, EXAMPLES / "benign-updater", tmp / "benign", 26)


def assert_benign_clean(benign: AnalysisRun, hostile: AnalysisRun, client: docker.DockerClient,
                        settings: Settings) -> None:
    report = completed(benign)
    assert benign.outcome is not None and benign.outcome.verdict == Verdict.CLEAN, report["verdict_reasons"]
    assert report["health"]["incidents"] == [], report["health"]["incidents"]
    # it really ran beside the hostile one: its boot began before the hostile fast-forward ended
    assert benign.event_times[0] < hostile.ended_at(Stage.ANALYZING)
    assert_nothing_left(client, settings, benign.aid)


# -- the device's confinement ----------------------------------------------------


def test_device_and_fakenet_are_unprivileged_limited_and_mount_nothing_of_the_host(
        hp: Settings, docker_engine: docker.DockerClient, tmp_path: Path) -> None:
    facts: dict[str, Any] = {}
    r = AnalysisRun(at_rate(hp, 3600), docker_engine, EXAMPLES / "hello", tmp_path / "out", 3)

    def on_event(ev: ProgressEvent) -> None:
        if ev.stage == Stage.FAST_FORWARDING and not facts:
            for role in ("device", "fakenet"):
                c = r.container(role)
                status = c.exec_run(["cat", "/proc/1/status"]).output.decode()
                facts[role] = {
                    "host": c.attrs["HostConfig"], "mounts": c.attrs["Mounts"],
                    "capeff": int(next(ln for ln in status.splitlines() if ln.startswith("CapEff:")).split()[1], 16),
                    "sockets": c.exec_run(["sh", "-c", "ls /var/run/docker.sock /run/docker.sock "
                                           "/run/containerd/containerd.sock 2>/dev/null"]).output.decode(),
                }
            facts["device_df"] = r.container("device").exec_run(["df", "-P", *TWIN_DATA_MOUNTS]).output.decode()

    r.on_event = on_event
    r.start()
    completed(r)
    limits = hp.device_limits
    for role, caps in (("device", TWIN_CAPS), ("fakenet", ["NET_ADMIN"])):
        host, mounts = facts[role]["host"], facts[role]["mounts"]
        assert host["Privileged"] is False and host["CapDrop"] == ["ALL"], role
        assert sorted(c.removeprefix("CAP_") for c in host["CapAdd"]) == sorted(caps), role
        assert "no-new-privileges" in host["SecurityOpt"], role
        assert host["PidsLimit"] and host["Memory"] and host["NanoCpus"], role
        assert host["Memory"] == host["MemorySwap"], role  # no swap beyond the limit
        assert not host.get("Binds") and mounts == [], f"{role} mounts something of the host: {mounts}"
        assert host["NetworkMode"].startswith("hp-"), role
        assert facts[role]["sockets"] == "", f"{role} sees an engine socket"
        assert facts[role]["capeff"] & (1 << 21) == 0, f"{role} has CAP_SYS_ADMIN"
    dev = facts["device"]["host"]
    assert (dev["PidsLimit"], dev["Memory"], dev["NanoCpus"]) == (limits.pids, limits.memory_bytes, limits.nano_cpus)
    assert set(dev["Tmpfs"]) == {"/run", *TWIN_DATA_MOUNTS}
    assert f"size={limits.data_bytes}" in dev["Tmpfs"]["/data"]
    assert all(f" {m}\n" in facts["device_df"] + "\n" for m in TWIN_DATA_MOUNTS), facts["device_df"]
    assert_nothing_left(docker_engine, hp, r.aid)


# -- resource exhaustion ----------------------------------------------------------


def test_fork_bomb_hits_the_pids_limit_and_a_neighbour_stays_clean(
        hp: Settings, docker_engine: docker.DockerClient, tmp_path: Path) -> None:
    settings = at_rate(hp, 1200)
    bomb = run(settings, docker_engine, HERE / "fw_forkbomb", tmp_path / "bomb", 6)
    benign = run_beside_benign(bomb, hp, docker_engine, tmp_path)
    report = completed(bomb)
    found = incidents(bomb)
    assert [i["container"] for i in found.get("pids_limit", [])] == ["device"], found
    pids = report["health"]["device"]["pids"]
    # (the peak may pass the limit by the few processes the engine's exec moves in: it does not fork)
    assert pids["limit"] == hp.device_limits.pids and pids["peak"] >= pids["limit"] and pids["forks_refused"] > 0
    assert service(report, "forkbomb")["forks_refused"] > 0  # the trace agrees: clone() = -1 EAGAIN
    assert report["health"]["device"]["state"]["status"] == "running"  # init and adbd survived
    assert_benign_clean(benign, bomb, docker_engine, hp)
    assert_nothing_left(docker_engine, settings, bomb.aid)


def test_memory_hog_is_oom_killed_not_the_twin_and_a_neighbour_stays_clean(
        hp: Settings, docker_engine: docker.DockerClient, tmp_path: Path) -> None:
    settings = at_rate(hp, 1200)
    hog = run(settings, docker_engine, HERE / "fw_memhog", tmp_path / "hog", 6)
    benign = run_beside_benign(hog, hp, docker_engine, tmp_path)
    report = completed(hog)
    found = incidents(hog)
    assert found.get("oom_kill") and found["oom_kill"][0]["container"] == "device", found
    assert [i["service"] for i in found.get("service_killed", [])] == ["memhog"], found
    svc = service(report, "memhog")
    assert svc["ended"] == "killed by SIGKILL" and svc["root_end"] == "killed by SIGKILL" and not svc["tracer_killed"]
    mem = report["health"]["device"]["memory"]
    assert mem["oom_kills"] >= 1 and mem["peak_bytes"] <= mem["limit_bytes"] == hp.device_limits.memory_bytes
    assert report["health"]["device"]["state"]["status"] == "running"  # the hog died, not the twin
    assert_benign_clean(benign, hog, docker_engine, hp)
    assert_nothing_left(docker_engine, settings, hog.aid)


def test_disk_filler_fills_only_its_own_tmpfs(hp: Settings, docker_engine: docker.DockerClient,
                                              tmp_path: Path) -> None:
    settings = at_rate(hp, 3600, data_bytes=64 * MIB, tmp_bytes=16 * MIB)
    r = run(settings, docker_engine, HERE / "fw_diskfill", tmp_path / "out", 4)
    report = completed(r)
    full = {i["path"] for i in incidents(r).get("disk_full", [])}
    assert full == {"/data", "/tmp"}, incidents(r)
    storage = report["health"]["device"]["storage"]
    assert storage["/data"]["size_bytes"] == 64 * MIB and storage["/data"]["full"]
    assert not storage["/data/honeyphone"]["full"]  # the traces have their own room
    assert report["health"]["device"]["rootfs_written_bytes"] < 8 * MIB  # the host's disk saw nothing of it
    log = service_log(r.outcome, r.out, "diskfill")  # type: ignore[arg-type]
    assert "/data/local/tmp/fill.bin: stopped after 64 MiB: No space left on device" in log, log
    assert_nothing_left(docker_engine, settings, r.aid)


def test_root_disk_filler_on_the_root_file_system_is_stopped(hp: Settings, docker_engine: docker.DockerClient,
                                                             tmp_path: Path) -> None:
    """A root service can write to the container's own layer, which overlay2 on
    ext4 cannot cap: the watchdog stops the analysis past the limit."""
    settings = at_rate(hp, 3600, rootfs_write_bytes=32 * MIB)
    r = run(settings, docker_engine, HERE / "fw_rootfill", tmp_path / "out", 6)
    outcome = r.wait()
    assert outcome.error is not None and outcome.error.startswith(
        "the device container wrote "), outcome.error
    assert "MiB to its root file system during fast-forward, over its 32 MiB limit" in outcome.error
    assert not outcome.retryable  # the firmware would do it again
    assert_nothing_left(docker_engine, settings, r.aid)
    assert_valid_pcap_if_any(r.out / "capture.pcap")


def test_cpu_spinner_is_held_to_its_quota_and_named(hp: Settings, docker_engine: docker.DockerClient,
                                                    tmp_path: Path) -> None:
    r = run(at_rate(hp, 3600), docker_engine, HERE / "fw_cpuspin", tmp_path / "out", 6)
    report = completed(r)
    assert [i["service"] for i in incidents(r).get("cpu_hog", [])] == ["cpuspin"], incidents(r)
    cpu = report["health"]["device"]["cpu"]
    assert cpu["limit_cpus"] == 1.0 and cpu["share_of_limit"] <= 1.1, cpu  # the quota held
    svc_cpu = service(report, "cpuspin")["cpu"]
    assert svc_cpu["processes"] == 2 and svc_cpu["busy_share_of_run"] >= 1.5, svc_cpu  # two spinners
    assert_nothing_left(docker_engine, hp, r.aid)


# -- the tracer and the network ---------------------------------------------------


def test_firmware_that_kills_its_tracer_dies_with_it(hp: Settings, docker_engine: docker.DockerClient,
                                                     tmp_path: Path) -> None:
    """A root service kills its strace after leaving a setsid'd, double-forked
    survivor: kill-on-exit takes every traced process down, nothing runs on
    untraced, and the report names the killed tracer."""
    # 24 device hours paced at 3600x: the kill comes after one device hour
    # (>= 1 s, longer on a loaded host: every survivor wake-up is traced), and
    # the device stays up for >= 23 s after it, while the test looks.
    r = run(at_rate(hp, 3600), docker_engine, HERE / "fw_tracerkill", tmp_path / "out", 24)
    r.wait_fast_forward()
    device = r.container("device")
    log_path = "/data/local/tmp/survivor.txt"
    # Wait on the event, not on a sleep: the service has logged the kill and
    # no process of the firmware is left.
    left: list[str] = ["not looked"]
    ps = ""
    while not r.done.is_set():
        try:
            ps = device.exec_run(["ps", "-eo", "pid,stat,args"]).output.decode()
        except docker.errors.APIError as exc:  # the device went away while the test looked
            raise AssertionError(f"the device stopped before the firmware was seen gone: {exc}\nlast ps:\n{ps}")
        # Firmware processes: the service's python (not its strace, whose
        # argv names the same script), zombies excluded.
        left = [line for line in ps.splitlines()[1:]
                if "priv-app/tracerkill/main.py" in line and " strace " not in f" {line} "
                and line.split()[1][:1] != "Z"]
        if not left and b"killing tracer" in device.exec_run(["cat", "/data/honeyphone/logs/tracerkill.log"]).output:
            break
        time.sleep(0.2)
    assert not r.done.is_set(), f"the analysis ended before the test saw the firmware die (still running: {left})\n{ps}"
    survivor = device.exec_run(["cat", log_path]).output.decode(errors="replace")
    report = completed(r)
    assert left == [], f"a firmware process outlived its tracer:\n{ps}\nsurvivor wrote: {survivor!r}"
    assert [i["service"] for i in incidents(r).get("tracer_killed", [])] == ["tracerkill"], incidents(r)
    svc = service(report, "tracerkill")
    assert svc["tracer_killed"] and svc["ended"] == "killed by SIGKILL" and svc["processes"] >= 3
    log = service_log(r.outcome, r.out, "tracerkill")  # type: ignore[arg-type]
    # Not asserted: that "still alive after killing the tracer" is absent.  On
    # a loaded host the line was written once (CI, 2026-12-07): the kernel let
    # the service's next write through before strace's exit killed it.  What
    # is asserted is that nothing of the firmware is left running.
    assert "killing tracer" in log, log
    assert_nothing_left(docker_engine, hp, r.aid)


def _ip_packets(path: Path) -> list[tuple[str, str, str, str]]:
    """(eth src, eth dst, ip src, ip dst) of every IPv4 packet."""
    out = []
    with open(path, "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(buf)
            if isinstance(eth.data, dpkt.ip.IP):
                out.append((eth.src.hex(":"), eth.dst.hex(":"), socket.inet_ntoa(eth.data.src),
                            socket.inet_ntoa(eth.data.dst)))
    return out


def test_network_flood_is_capped_and_stays_on_the_bridge(hp: Settings, docker_engine: docker.DockerClient,
                                                          tmp_path: Path) -> None:
    settings = at_rate(hp, 3600, capture_bytes=8 * MIB)
    r = run(settings, docker_engine, HERE / "fw_flood", tmp_path / "out", 6)
    report = completed(r, timeout=400)
    found = incidents(r)
    assert found.get("capture_limit") and found.get("network_flood"), found
    cap = report["health"]["capture"]
    assert cap["stopped_at_limit"] and 8 * MIB < cap["bytes"] < 96 * MIB, cap
    # packet counts depend on segment sizes (GRO on the bridge can make 64 KiB
    # frames), so the 8 MiB cap holds anywhere from ~130 to tens of thousands
    assert assert_valid_pcap_if_any(r.out / "capture.pcap") > 100
    assert report["health"]["fakenet"]["state"]["status"] == "running"  # the fakenet took it
    assert report["health"]["device"]["state"]["status"] == "running"
    # the flood is between the device and the fakenet (answering for the documentation
    # addresses) only: nothing of it went through the host (its own IGMP aside)
    net = report["health"]["network"]
    packets = _ip_packets(r.out / "capture.pcap")
    flood = [p for p in packets if p[2].startswith(DOC_NETS) or p[3].startswith(DOC_NETS)]
    device_mac = {p[0] for p in flood if p[2] == net["device_ip"]}
    host_macs = {p[0] for p in packets if p[2] == net["gateway"]}
    assert len(flood) > 100 and len(device_mac) == 1, device_mac
    assert len({p[0] for p in flood} | {p[1] for p in flood}) == 2  # the device's and the fakenet's
    assert not host_macs & ({p[0] for p in flood} | {p[1] for p in flood})
    assert all(net["device_ip"] in (p[2], p[3]) for p in flood)
    assert_nothing_left(docker_engine, settings, r.aid)


# -- escape attempts ----------------------------------------------------------------


@dataclass
class HostListener:
    """TCP and UDP on the analysis' bridge address, port 2375 (as if the host
    exposed the Docker API there), opened once the network exists."""

    client: docker.DockerClient
    settings: Settings
    tcp: socket.socket | None = None
    udp: socket.socket | None = None
    gateway: str = ""
    bridge_mac: str = ""
    hits: list[str] = field(default_factory=list)

    def open_for(self, aid: str) -> None:
        if self.tcp is not None:
            return
        nets = self.client.networks.list(filters={"label": [f"{self.settings.label_analysis}={aid}"]})
        cfg = nets[0].attrs["IPAM"]["Config"][0]
        self.gateway = cfg["Gateway"]
        bridge = nets[0].attrs["Options"]["com.docker.network.bridge.name"]
        self.bridge_mac = Path(f"/sys/class/net/{bridge}/address").read_text().strip()
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((self.gateway, 2375))
        self.tcp.listen(4)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((self.gateway, 2375))

    def poll(self) -> None:
        socks = [s for s in (self.tcp, self.udp) if s is not None]
        if socks:
            ready, _, _ = select.select(socks, [], [], 0)
            self.hits += ["tcp" if s is self.tcp else "udp" for s in ready]

    def close(self) -> None:
        self.poll()
        for s in (self.tcp, self.udp):
            if s is not None:
                s.close()


@pytest.fixture()
def other_device(hp: Settings, docker_engine: docker.DockerClient,
                 tmp_path: Path) -> Iterator[tuple[TwinHandle, Capture]]:
    """A plain twin on a network of its own, with a capture on its bridge."""
    aid = new_analysis_id()
    handle = boot_twin(hp, docker_engine, AdbServer.from_settings(hp), aid)
    capture = Capture(handle.network.bridge, tmp_path / "other.pcap").start()
    try:
        yield handle, capture
    finally:
        capture.stop()
        handle.device.disconnect()
        cleanup(docker_engine, hp, aid)


def test_escape_attempts_end_at_the_fakenet_or_nowhere(
        hp: Settings, docker_engine: docker.DockerClient, tmp_path: Path,
        other_device: tuple[TwinHandle, Capture]) -> None:
    other, other_capture = other_device
    bundle = tmp_path / "fw_escape"
    shutil.copytree(HERE / "fw_escape", bundle)
    (bundle / "files/system/etc/escape/targets.json").write_text(json.dumps({"other_devices": [other.container.ip]}))
    listener = HostListener(docker_engine, hp)
    uplinks = [Capture(i, tmp_path / f"uplink-{i}.pcap", bpf=uplink_bpf(i, hp.subnet_pool, ESCAPE_TARGETS)).start()
               for i in host_uplinks()]
    r = AnalysisRun(at_rate(hp, 1200), docker_engine, bundle, tmp_path / "out", 6)

    def on_event(ev: ProgressEvent) -> None:
        if ev.stage == Stage.BOOTING and "twin" in ev.message:
            listener.open_for(r.aid)
        listener.poll()

    r.on_event = on_event
    try:
        r.start()
        report = completed(r)
    finally:
        listener.close()
        uplink_counts = {c.iface: c.stop().captured for c in uplinks}
    log = service_log(r.outcome, r.out, "escape")  # type: ignore[arg-type]
    results = json.loads(log.split("ESCAPE ", 1)[1].splitlines()[0])
    # the host: nothing answers on its bridge address, nothing arrived at our listener
    assert results["gateway"] == listener.gateway
    for probe in ("host_docker_2375", "host_docker_2376", "host_ssh_22", "host_adb_server_5037"):
        assert results[probe] in ("timeout", "refused"), (probe, results[probe])
    assert listener.hits == [], listener.hits
    # the engine's socket is not there; the twin's own adbd refuses the firmware
    assert results["docker_sock_var_run"] == results["docker_sock_run"] == results["containerd_sock"] == "absent"
    assert results["own_adbd_loopback"] == results["own_adbd_ip"] == "refused", results
    # another device: this analysis' fakenet answers for it, the device itself sees nothing
    assert "CNXN" not in results["other_device_0_adbd"], results
    other_result = other_capture.stop()
    other_packets = _ip_packets(other_result.path)
    assert not [p for p in other_packets if p[2] not in (other.container.ip, other.network.gateway)
                and p[3] == other.container.ip], "the other device received foreign traffic"
    # outside addresses: answered by the fakenet, never on the host's uplinks or through its bridge
    assert results["outside_tcp_203"].startswith("connected") and results["outside_tcp_198"] == "connected:HTTP"
    assert uplink_counts and all(n == 0 for n in uplink_counts.values()), uplink_counts
    doc = [p for p in _ip_packets(r.out / "capture.pcap") if p[2].startswith(DOC_NETS) or p[3].startswith(DOC_NETS)]
    assert doc, "the documentation-range traffic should be in the pcap"
    assert not [p for p in doc if listener.bridge_mac in (p[0], p[1])], "the host routed outside traffic"
    # and the report names the attempts
    found = incidents(r)
    what = " | ".join(i["message"] for i in found.get("escape_attempt", []))
    assert f"the host's bridge address {listener.gateway}:2375" in what, what
    assert "the twin's own adbd at 127.0.0.1:5555" in what, what
    assert f"{other.container.ip}:5555, outside this analysis' network" in what, what
    conns = {(c["address"], c["port"]) for c in report["syscalls"]["connections"]}
    assert {("203.0.113.5", 443), ("198.51.100.7", 80)} <= conns, conns
    assert_nothing_left(docker_engine, hp, r.aid)
