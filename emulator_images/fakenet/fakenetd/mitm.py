"""Running mitmdump: the TLS/HTTP decrypting half of the fakenet.

mitmdump listens on loopback only, in regular (explicit proxy) mode: the
catch-all opens each tunnel with a CONNECT naming the device's original
destination.  ``upstream_cert=false`` and ``connection_strategy=lazy`` make
mitmproxy forge certificates from the SNI/CONNECT target alone and never
dial upstream; the addon answers every request itself.  Its confdir is a
fresh directory per container, so every analysis gets its own CA, and it
lives outside the data directory so the CA's private key never ends up in
the analysis artifacts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from .config import Config

ADDON = Path(__file__).with_name("addon.py")
CA_CERT_NAME = "mitmproxy-ca-cert.pem"


def mitmdump_argv(cfg: Config) -> list[str]:
    confdir = cfg.run_dir / "mitmproxy"
    return [
        "mitmdump",
        "--mode", "regular",
        "--listen-host", "127.0.0.1",
        "--listen-port", str(cfg.mitm_port),
        "--set", f"confdir={confdir}",
        "--set", "upstream_cert=false",
        "--set", "connection_strategy=lazy",
        "--set", "ssl_insecure=true",
        "--set", "block_global=false",
        "--set", "tls_version_client_min=UNBOUNDED",
        "--set", "flow_detail=0",
        "--set", "termlog_verbosity=warn",
        "-s", str(ADDON),
        "-w", str(cfg.data_dir / "flows.mitm"),
    ]


def ca_cert_path(cfg: Config) -> Path:
    return cfg.run_dir / "mitmproxy" / CA_CERT_NAME


def start(cfg: Config) -> subprocess.Popen[bytes]:
    confdir = cfg.run_dir / "mitmproxy"
    confdir.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.run_dir, 0o700)
    log = open(cfg.data_dir / "mitmdump.log", "ab")
    env = dict(os.environ, HOME=str(cfg.run_dir))
    return subprocess.Popen(mitmdump_argv(cfg), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)


def wait_ready(cfg: Config, proc: subprocess.Popen[bytes]) -> None:
    """Block until the CA exists and the proxy port accepts connections."""
    deadline = time.monotonic() + cfg.mitm_start_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mitmdump exited with {proc.returncode} during startup (see mitmdump.log)")
        if ca_cert_path(cfg).is_file():
            try:
                with socket.create_connection(("127.0.0.1", cfg.mitm_port), timeout=0.5):
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"mitmdump not ready after {cfg.mitm_start_timeout_s:.0f}s (see mitmdump.log)")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM so mitmdump closes its flow file cleanly; SIGKILL only if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)
