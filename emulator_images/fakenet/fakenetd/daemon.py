"""PID 1 of the fakenet container: bring every part up, say ready, run, stop cleanly.

Order matters for the host: ``/data/fakenet/ready`` is written only once
mitmproxy, DNS, the catch-all, the UDP sink and iptables are all in place,
so a device started after it never talks to a half-built fakenet.  On
SIGTERM open raw TCP streams are closed and recorded and mitmdump is
stopped gracefully, so every log file is complete when the host fetches it.
If mitmproxy dies the daemon exits non-zero: a fakenet that can no longer
decrypt must not look healthy.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
from typing import Any

from . import firewall, mitm
from .catchall import CatchAll, CatchAllConfig, serve
from .config import Config
from .dns import CatchAllResolver, start_dns
from .jsonlog import JsonlWriter
from .udpsink import UdpSink

READY_FILE = "ready"
CA_FILE = "ca.pem"


class Daemon:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self._events = JsonlWriter(cfg.data_dir / "fakenetd.jsonl")
        self.writers: dict[str, JsonlWriter] = {}

    def event(self, kind: str, **fields: Any) -> None:
        record = {"ts": time.time(), "event": kind, **fields}
        self._events.write(record)
        print(f"[fakenetd] {json.dumps(record, default=str)}", file=sys.stderr, flush=True)

    def writer(self, name: str) -> JsonlWriter:
        if name not in self.writers:
            self.writers[name] = JsonlWriter(self.cfg.data_dir / f"{name}.jsonl")
        return self.writers[name]

    async def run(self) -> int:
        cfg = self.cfg
        # Handlers first: PID 1 ignores an unhandled SIGTERM, and a stop may come during startup.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if firewall.ip_forward_enabled():
            raise RuntimeError("net.ipv4.ip_forward is 1 in the fakenet; create the container with it set to 0")
        own_ip = firewall.iface_address(cfg.iface)
        answer_ip = cfg.answer_ip or own_ip
        firewall.drop_default_route()
        proc = mitm.start(cfg)
        try:
            await asyncio.to_thread(mitm.wait_ready, cfg, proc)
            self.event("mitmproxy-ready", pid=proc.pid)
            dns_servers = start_dns(
                CatchAllResolver(answer_ip, cfg.txt_answer, cfg.dns_ttl, self.writer("dns").write), cfg.dns_port
            )
            catchall = CatchAll(
                CatchAllConfig("127.0.0.1", cfg.mitm_port, cfg.peek_timeout_s, cfg.tcp_idle_timeout_s,
                               cfg.tcp_keep_bytes),
                self.writer("connections").write, self.writer("tcp").write, self.writer("errors").write,
            )
            server = await serve(catchall, cfg.catchall_port)
            try:
                sink = UdpSink(self.writer("udp").write, cfg.udp_sink_port, cfg.udp_keep_bytes, transparent=True)
            except OSError:
                sink = UdpSink(self.writer("udp").write, cfg.udp_sink_port, cfg.udp_keep_bytes, transparent=False)
            sink.start()
            ports = firewall.Ports(cfg.dns_port, cfg.catchall_port, cfg.udp_sink_port)
            udp_mode = await asyncio.to_thread(firewall.install, cfg.iface, ports, sink.transparent)
            sink.report_orig_dst = udp_mode == "tproxy"
            shutil.copyfile(mitm.ca_cert_path(cfg), cfg.data_dir / CA_FILE)
            self._write_ready({
                "ts": time.time(), "ip": own_ip, "answer_ip": answer_ip, "udp_mode": udp_mode,
                "ca": CA_FILE, "ports": {"dns": cfg.dns_port, "catchall": cfg.catchall_port,
                                         "udp_sink": cfg.udp_sink_port, "mitm": cfg.mitm_port},
            })
            self.event("ready", ip=own_ip, answer_ip=answer_ip, udp_mode=udp_mode)
            rc = await self._wait(proc, stop)
            self.event("stopping", mitm_alive=proc.poll() is None)
            server.close()
            await catchall.shutdown()
            sink.close()
            for s in dns_servers:
                s.stop()
            return rc
        finally:
            mrc = mitm.stop(proc)
            self.event("stopped", mitmdump_rc=mrc)
            for w in self.writers.values():
                w.close()

    def _write_ready(self, info: dict[str, Any]) -> None:
        tmp = self.cfg.data_dir / f".{READY_FILE}.tmp"
        tmp.write_text(json.dumps(info, sort_keys=True))
        os.replace(tmp, self.cfg.data_dir / READY_FILE)

    async def _wait(self, proc: Any, stop: asyncio.Event) -> int:
        while not stop.is_set():
            if proc.poll() is not None:
                self.event("mitmproxy-died", rc=proc.returncode)
                return 1
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        return 0


def main() -> int:
    daemon = Daemon(Config.from_env())
    try:
        return asyncio.run(daemon.run())
    except Exception as exc:
        daemon.event("fatal", error=repr(exc))
        return 1
