"""The one typed settings object.

Every component takes a ``Settings`` explicitly; there are no module globals.
``Settings.from_env()`` is the only place that reads the process environment,
and it is called by entry points (CLI, worker), never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import __version__


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "honeyphone"


@dataclass(frozen=True)
class BundleLimits:
    """Bounds that keep a hostile bundle from exhausting the host."""

    max_files: int = 10_000
    max_file_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_manifest_bytes: int = 64 * 1024
    max_depth: int = 32
    max_services: int = 64
    max_apps: int = 64


@dataclass(frozen=True)
class DeviceLimits:
    """Resource caps applied to every device container."""

    memory_bytes: int = 1024 * 1024 * 1024
    nano_cpus: int = 1_000_000_000
    pids: int = 512
    # Storage.  overlay2 on ext4 cannot cap a container's root file system
    # (``--storage-opt size`` needs xfs with pquota), so what firmware can
    # write goes to size-limited tmpfs mounts (counted in memory_bytes too):
    # /data (apps' data, /data/local/tmp), /data/honeyphone (traces and
    # service logs, apart so a full /data cannot blind the tracer) and /tmp.
    # Writes elsewhere (root services only) are polled by the pipeline's
    # watchdog, which stops the analysis past rootfs_write_bytes.
    data_bytes: int = 384 * 1024 * 1024
    trace_bytes: int = 128 * 1024 * 1024
    tmp_bytes: int = 64 * 1024 * 1024
    rootfs_write_bytes: int = 1024 * 1024 * 1024
    # The host's pcap of the analysis bridge is stopped (cleanly) past this size.
    capture_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True)
class ClockSettings:
    """The twin's event-driven device clock (emulator_images/twin/twinrt/clockd.py).

    Device time runs at the real rate while the device is busy (a thread
    runnable, a network exchange in flight, an adb command) and jumps to the
    next deadline while it is idle, so firmware keeps its ordinary network
    timeouts.  The fallback is for devices that are never idle for long."""

    # Device seconds per real second while the fallback runs (busy loops,
    # pollers waking every second); never while an exchange is in flight.
    fallback_rate: float = 14400.0
    # The fallback starts after this much of the device's CPU time (exchanges
    # not counted) in which idle jumps advanced the clock by less than
    # fallback_floor device seconds per CPU second; it stops when they do again.
    fallback_after_s: float = 10.0
    fallback_floor: float = 1000.0
    # An exchange counts as in flight for at most this long (a peer that
    # never answers cannot hold the clock), and a UDP wait for this long.
    inflight_cap_s: float = 30.0
    udp_cap_s: float = 5.0
    # An upper bound on device seconds per real second, for idle jumps and the
    # fallback alike (None: jumps are instant).  For watching a run, or for
    # tests that need fast-forward to last a while of real time.
    max_rate: float | None = None

    def manifest_entry(self) -> dict[str, float | None]:
        return {"fallback_rate": self.fallback_rate, "fallback_after_s": self.fallback_after_s,
                "fallback_floor": self.fallback_floor, "inflight_cap_s": self.inflight_cap_s,
                "udp_cap_s": self.udp_cap_s, "max_rate": self.max_rate}


@dataclass(frozen=True)
class FleetSettings:
    """The orchestrator, its workers and their clients (``honeyphone serve/worker/submit``)."""

    listen: str = "127.0.0.1:50551"  # serve's default and the clients' default server
    lease_seconds: int = 30  # a lease not heartbeaten for this long is re-queued
    max_attempts: int = 3  # leases an analysis may use up before it fails
    max_firmware_bytes: int = 1024 * 1024 * 1024
    max_artifact_bytes: int = 1024 * 1024 * 1024
    max_report_bytes: int = 16 * 1024 * 1024
    server_threads: int = 256  # one per open WatchAnalysis stream, plus unary calls
    # Request streams (uploads): cut off with DEADLINE_EXCEEDED after this long
    # without a chunk, and at most this many at once (never more than half of
    # server_threads), so clients that trickle cannot hold every server thread.
    upload_idle_timeout_s: float = 60.0
    max_concurrent_uploads: int = 32
    slot_memory_bytes: int = 1024 * 1024 * 1024  # a worker refuses slots beyond these
    slot_cpus: float = 0.5
    # Where the orchestrator keeps its state (HONEYPHONE_STORE, serve --store):
    # "" is the embedded SQLite under the data dir; "postgresql://user@host/db"
    # is a PostgreSQL database that several orchestrators may share.
    store: str = ""
    store_pool_size: int = 16  # PostgreSQL connections per orchestrator
    store_connect_timeout_s: float = 5.0


@dataclass(frozen=True)
class Settings:
    """Everything a Honeyphone process may be configured with."""

    data_dir: Path = field(default_factory=_default_data_dir)
    images_dir: Path | None = None  # None: emulator_images/ of this checkout
    docker_url: str | None = None  # None: the Docker SDK's from_env() default
    adb_path: str = "adb"
    adb_server_port: int = 5037
    label_prefix: str = "dev.honeyphone"
    twin_image: str = "honeyphone/twin:latest"
    fakenet_image: str = "honeyphone/fakenet:latest"
    # The farm's own images (deploy/images/, ``honeyphone images build orchestrator worker postgres``),
    # tagged with the package version so a farm runs one release throughout.
    orchestrator_image: str = f"honeyphone/orchestrator:{__version__}"
    worker_image: str = f"honeyphone/worker:{__version__}"
    postgres_image: str = f"honeyphone/postgres:{__version__}"
    base_image: str = "debian:bookworm-slim"
    local_base_image: str = "honeyphone/debian-base:bookworm"
    debian_suite: str = "bookworm"
    boot_timeout_s: float = 60.0
    # The Android emulator profile (emulator_images/android/): images are
    # tagged <repo>:<api>; ``android_image`` (HONEYPHONE_ANDROID_IMAGE) pins one.
    android_image_repo: str = "honeyphone/android"
    android_api: int = 34
    android_image: str | None = None
    android_boot_timeout_s: float = 600.0
    android_memory_bytes: int = 4 * 1024 * 1024 * 1024  # 3 GiB guest RAM + the emulator itself
    android_nano_cpus: int = 2_000_000_000
    clock: ClockSettings = field(default_factory=ClockSettings)
    command_timeout_s: float = 120.0
    subnet_pool: str = "10.213.0.0/16"
    subnet_prefix: int = 28
    bundle_limits: BundleLimits = field(default_factory=BundleLimits)
    device_limits: DeviceLimits = field(default_factory=DeviceLimits)
    fleet: FleetSettings = field(default_factory=FleetSettings)

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Build settings from ``HONEYPHONE_*`` variables, then explicit overrides."""
        env = os.environ
        kwargs: dict[str, object] = {}
        if "HONEYPHONE_DATA_DIR" in env:
            kwargs["data_dir"] = Path(env["HONEYPHONE_DATA_DIR"])
        if "DOCKER_HOST" in env:
            kwargs["docker_url"] = env["DOCKER_HOST"]
        if "HONEYPHONE_ADB" in env:
            kwargs["adb_path"] = env["HONEYPHONE_ADB"]
        if "ANDROID_ADB_SERVER_PORT" in env:
            kwargs["adb_server_port"] = int(env["ANDROID_ADB_SERVER_PORT"])
        if "HONEYPHONE_IMAGES_DIR" in env:
            kwargs["images_dir"] = Path(env["HONEYPHONE_IMAGES_DIR"])
        if env.get("HONEYPHONE_ANDROID_IMAGE"):
            kwargs["android_image"] = env["HONEYPHONE_ANDROID_IMAGE"]
        # Image tags: lets two checkouts on one engine keep their own builds.
        if env.get("HONEYPHONE_TWIN_IMAGE"):
            kwargs["twin_image"] = env["HONEYPHONE_TWIN_IMAGE"]
        if env.get("HONEYPHONE_FAKENET_IMAGE"):
            kwargs["fakenet_image"] = env["HONEYPHONE_FAKENET_IMAGE"]
        for name in ("orchestrator", "worker", "postgres"):
            if env.get(f"HONEYPHONE_{name.upper()}_IMAGE"):
                kwargs[f"{name}_image"] = env[f"HONEYPHONE_{name.upper()}_IMAGE"]
        if "HONEYPHONE_SUBNET_POOL" in env:
            kwargs["subnet_pool"] = env["HONEYPHONE_SUBNET_POOL"]
        if env.get("HONEYPHONE_STORE"):
            kwargs["fleet"] = replace(FleetSettings(), store=env["HONEYPHONE_STORE"])
        kwargs.update(overrides)
        return replace(cls(), **kwargs)  # type: ignore[arg-type]

    @property
    def label_analysis(self) -> str:
        """Docker label key carrying the analysis id on every resource we create."""
        return f"{self.label_prefix}.analysis"

    def android_image_tag(self, api: int | None = None) -> str:
        """``honeyphone/android:<api>``, or the pinned ``android_image`` when no api is asked for."""
        if api is None and self.android_image:
            return self.android_image
        return f"{self.android_image_repo}:{api if api is not None else self.android_api}"

    @property
    def label_role(self) -> str:
        return f"{self.label_prefix}.role"
