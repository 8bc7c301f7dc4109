"""The example firmware bundles under examples/firmware: they load, and they behave.

Every bundle is loaded with the real loader.  Each service of the example
bundles that support a dry run is then started on the host, outside any
container, from the loader's staged copy, with the knobs documented in its
main.py:

* ``HONEYPHONE_DEVICE_ROOT``: a temporary twin root whose provider databases
  were created by ``twinrt.providers.init_databases()`` and filled with
  canaries through the providers (the same values ``sandbox.core.planting``
  binds), plus the twin's build.prop and a ``ro.serialno``;
* ``HONEYPHONE_EXAMPLE_BASE_URL`` / ``_DNS_SERVER`` / ``_TCP_TARGET``:
  recording HTTP, DNS and TCP servers on 127.0.0.1 (nothing leaves loopback);
* ``HONEYPHONE_EXAMPLE_FAST=1`` with ``HONEYPHONE_EXAMPLE_HOUR_SECONDS``: a
  device hour lasts HOUR real seconds; ``HONEYPHONE_EXAMPLE_HOURS`` makes
  the service exit after that many hours, having run everything due before.

The assertions check what each example is for: Adups 5.3 sends planted
numbers in clear and uppercase MD5s of planted SMS bodies (and only from
hour 72), Adups 5.4 and the benign updater send no planted value at all,
and each kitchen-sink style leaks in its own encoding.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from sandbox.bundle import Bundle, Service, load_bundle
from sandbox.settings import BundleLimits

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "firmware"
TWIN_DIR = REPO / "emulator_images" / "twin"
BUNDLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if (p / "firmware.toml").is_file())

HOUR = 0.01  # real seconds per device hour in the dry runs
RUN_TIMEOUT = 60.0

# Bundles whose services have the dry-run knobs, and the services each must
# have; a new example must add itself here (and a behaviour test) to pass.
DRY_RUN_SERVICES = {
    "adups-5.3": {"sysoper"},
    "adups-5.4": {"sysoper"},
    "benign-updater": {"updater"},
    "leaky-kitchen-sink": {"http-query", "gzip-json", "md5-b64", "dns-labels", "raw-tcp", "benign-config"},
}
NOT_DRY_RUN = {"hello"}  # writes to /data/local/tmp and runs forever; covered by the device tests

# Every host name and literal address the examples may contact.
ALLOWED_HOSTS = {
    "bigdata.adups.com",
    "fota5p.adups.com",
    "tracker.example.net",
    "api.example.org",
}
DOCUMENTATION_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]

# -- canaries --------------------------------------------------------------------------

SERIAL = "HPTWINSERIAL0042"
CONTACTS = [  # (display name, E.164 number)
    ("Quillon Vantreese Abernathy", "+15405550117"),
    ("Marisol Ketteridge Oyelaran", "+15405550142"),
    ("Zoë Brannigan-Ilić", "+15405550163"),
    ("Thaddeus Wrenfield Okonkwo", "+15405550171"),
]
SMS = [  # (address, body, date ms, type)
    ("+15405550117", "Gate code for Thursday is 4417. token QZX-canary-7731", 1_734_900_000_000, 1),
    ("+15405550142", "Running late, meet me at the lab. token KPV-canary-2208", 1_734_900_100_000, 2),
    ("+15405550188", "Your verification code is 839201 token MRT-canary-5546", 1_734_900_200_000, 1),
]
CALLS = [  # (number, date ms, duration s, type)
    ("+15405550199", 1_734_900_300_000, 73, 1),
    ("+15405550117", 1_734_900_400_000, 12, 2),
    ("+15405550124", 1_734_900_500_000, 0, 3),
]


def planted_needles() -> dict[str, str]:
    """Every planted value, and the common renderings of it, that must not leave a clean device."""
    needles: dict[str, str] = {"serial": SERIAL}
    numbers = {c[1] for c in CONTACTS} | {s[0] for s in SMS} | {c[0] for c in CALLS}
    for number in numbers:
        needles[f"number {number}"] = number
        needles[f"digits {number}"] = number.lstrip("+")
        needles[f"national {number}"] = number[-10:]
        needles[f"md5 {number}"] = hashlib.md5(number.encode()).hexdigest()
    for name, _ in CONTACTS:
        needles[f"name {name}"] = name
        needles[f"family name {name}"] = name.split()[-1]
        needles[f"b64 name {name}"] = base64.b64encode(name.encode()).decode()
        needles[f"hex name {name}"] = name.encode().hex()
    for _, body, _, _ in SMS:
        needles[f"body {body}"] = body
        needles[f"token {body}"] = body.split("token ")[1]
        needles[f"md5 body {body}"] = hashlib.md5(body.encode()).hexdigest()
        needles[f"b64 body {body}"] = base64.b64encode(body.encode()).decode()
    return needles


def find_leaks(blob: str) -> list[str]:
    low = blob.lower()
    return sorted(what for what, value in planted_needles().items() if value.lower() in low)


# -- the twin root -----------------------------------------------------------------------


def _plant(root: Path) -> None:
    """Provider databases with the AOSP schemas, filled through the twin's providers."""
    if str(TWIN_DIR) not in sys.path:
        sys.path.insert(0, str(TWIN_DIR))
    saved = os.environ.get("TWIN_ROOT")
    os.environ["TWIN_ROOT"] = str(root)
    try:
        from twinrt import props, providers
        from twinrt.providers import parse_uri

        providers.init_databases()
        contacts = providers.ContactsProvider()
        for index, (name, number) in enumerate(CONTACTS):
            uri = contacts.insert(parse_uri("content://com.android.contacts/raw_contacts"),
                                  {"account_name": "", "account_type": "", "sourceid": f"canary-{index}"})
            assert uri is not None
            raw_id = int(uri.rsplit("/", 1)[1])
            data = parse_uri("content://com.android.contacts/data")
            contacts.insert(data, {"raw_contact_id": raw_id, "mimetype": providers.MIME_NAME, "data1": name,
                                   "data2": name.split()[0], "data3": name.split()[-1]})
            contacts.insert(data, {"raw_contact_id": raw_id, "mimetype": providers.MIME_PHONE,
                                   "data1": number, "data2": 2})
        contacts.close()
        sms = providers.SmsProvider()
        for address, body, date, kind in SMS:
            sms.insert(parse_uri("content://sms/inbox" if kind == 1 else "content://sms/sent"),
                       {"address": address, "body": body, "date": date, "read": 1, "seen": 1, "type": kind})
        sms.close()
        calls = providers.CallLogProvider()
        for number, date, duration, kind in CALLS:
            calls.insert(parse_uri("content://call_log/calls"),
                         {"number": number, "date": date, "duration": duration, "type": kind, "new": 1})
        calls.close()
        (root / "system").mkdir(parents=True, exist_ok=True)
        shutil.copy(TWIN_DIR / "system" / "build.prop", root / "system" / "build.prop")
        props.set_prop("ro.serialno", SERIAL)
    finally:
        if saved is None:
            os.environ.pop("TWIN_ROOT", None)
        else:
            os.environ["TWIN_ROOT"] = saved


@pytest.fixture(scope="module")
def twin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("twin")
    _plant(root)
    return root


def test_planted_twin_root_has_the_canaries(twin_root: Path) -> None:
    import sqlite3

    db = twin_root / "data/user/0/com.android.providers.telephony/databases/mmssms.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert sorted(conn.execute("SELECT address, body, date, type FROM sms").fetchall()) == sorted(SMS)
    conn.close()


# -- recording servers on loopback -------------------------------------------------------


@dataclass
class HttpHit:
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_body: bytes
    body: bytes  # gunzipped when Content-Encoding: gzip
    at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        """Everything the request carried, for leak searches."""
        headers = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {unquote(self.path)}\n{headers}\n\n{self.body.decode('utf-8', 'replace')}"


@dataclass
class Capture:
    http: list[HttpHit] = field(default_factory=list)
    dns: list[tuple[str, float]] = field(default_factory=list)
    tcp: list[tuple[bytes, float]] = field(default_factory=list)
    base_url: str = ""
    dns_server: str = ""
    tcp_target: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits(self, host: str, path: str | None = None) -> list[HttpHit]:
        with self.lock:
            return [h for h in self.http if h.host == host and (path is None or urlsplit(h.path).path == path)]


def _http_server(capture: Capture) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            hit = HttpHit(self.command, self.headers.get("Host", ""), self.path,
                          parse_qs(urlsplit(self.path).query), dict(self.headers.items()), raw, body,
                          time.monotonic())
            with capture.lock:
                capture.http.append(hit)
            reply = b'{"status":"ok","update":false}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = _record
        do_POST = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def _qname(packet: bytes) -> str:
    labels, offset = [], 12
    while offset < len(packet) and packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1:offset + 1 + length].decode("ascii"))
        offset += 1 + length
    return ".".join(labels)


def _dns_loop(sock: socket.socket, capture: Capture, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            packet, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        except OSError:
            return
        with capture.lock:
            capture.dns.append((_qname(packet), time.monotonic()))
        # Same id and question, QR=1 RD=1 RA=1, NXDOMAIN.
        sock.sendto(packet[:2] + b"\x81\x83" + packet[4:], peer)


def _tcp_loop(server: socket.socket, capture: Capture, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        with capture.lock:
            capture.tcp.append((b"".join(chunks), time.monotonic()))


@pytest.fixture()
def capture() -> Iterator[Capture]:
    cap = Capture()
    stop = threading.Event()
    httpd = _http_server(cap)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.1)
    tcp = socket.create_server(("127.0.0.1", 0))
    tcp.settimeout(0.1)
    cap.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    cap.dns_server = f"127.0.0.1:{udp.getsockname()[1]}"
    cap.tcp_target = f"127.0.0.1:{tcp.getsockname()[1]}"
    threads = [
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
        threading.Thread(target=_dns_loop, args=(udp, cap, stop), daemon=True),
        threading.Thread(target=_tcp_loop, args=(tcp, cap, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield cap
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        for thread in threads:
            thread.join(timeout=5)
        udp.close()
        tcp.close()


# -- running services --------------------------------------------------------------------


@pytest.fixture()
def bundles(tmp_path: Path) -> Iterator[dict[str, Bundle]]:
    loaded: dict[str, Bundle] = {}
    try:
        for path in BUNDLE_DIRS:
            workdir = tmp_path / f"work-{path.name}"
            workdir.mkdir()
            loaded[path.name] = load_bundle(path, BundleLimits(), workdir)
        yield loaded
    finally:
        for bundle in loaded.values():
            bundle.cleanup()


def host_argv(bundle: Bundle, service: Service) -> list[str]:
    """The service's argv with the device's python and the bundle's device paths mapped to the staged copy."""
    staged = {entry.device_path: str(entry.host_path) for entry in bundle.files()}
    assert service.exec[0] in ("/usr/bin/python3", "/usr/bin/python3.11"), service.exec
    return [sys.executable, *(staged.get(arg, arg) for arg in service.exec[1:])]


@dataclass
class Run:
    service: str
    returncode: int
    stdout: str
    stderr: str
    started: float  # time.monotonic() just before the process was spawned


def run_services(bundle: Bundle, names: list[str], root: Path, capture: Capture, hours: float,
                 cwd: Path) -> dict[str, Run]:
    """Start the named services together (as the twin would) and wait for them to stop."""
    by_name = {service.name: service for service in bundle.manifest.services}
    procs = []
    for name in names:
        service = by_name[name]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            **dict(service.env),
            "HONEYPHONE_DEVICE_ROOT": str(root),
            "HONEYPHONE_EXAMPLE_BASE_URL": capture.base_url,
            "HONEYPHONE_EXAMPLE_DNS_SERVER": capture.dns_server,
            "HONEYPHONE_EXAMPLE_TCP_TARGET": capture.tcp_target,
            "HONEYPHONE_EXAMPLE_FAST": "1",
            "HONEYPHONE_EXAMPLE_HOUR_SECONDS": str(HOUR),
            "HONEYPHONE_EXAMPLE_HOURS": str(hours),
            "HONEYPHONE_EXAMPLE_TIMEOUT": "10",
        }
        started = time.monotonic()
        proc = subprocess.Popen(host_argv(bundle, service), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append((name, proc, started))
    runs: dict[str, Run] = {}
    for name, proc, started in procs:
        try:
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{name} did not stop after {hours} hours within {RUN_TIMEOUT}s:\n{out}\n{err}")
        runs[name] = Run(name, proc.returncode, out, err, started)
    for run in runs.values():
        assert run.returncode == 0, f"{run.service} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
        assert_device_log(run)
    return runs


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+\[\d+\]: \S")


def assert_device_log(run: Run) -> None:
    lines = run.stdout.splitlines()
    assert lines, f"{run.service} logged nothing"
    bad = [line for line in lines if not LOG_LINE.match(line)]
    assert not bad, f"{run.service}: log lines without a device timestamp: {bad[:3]}"
    assert not run.stderr.strip(), f"{run.service} wrote to stderr:\n{run.stderr}"
    assert not [line for line in lines if "failed" in line], f"{run.service} hit errors:\n{run.stdout}"
    leaked_in_log = find_leaks(run.stdout)
    assert not leaked_in_log, f"{run.service} logs personal data: {leaked_in_log}"


# -- loading and static checks -----------------------------------------------------------


@pytest.mark.parametrize("path", BUNDLE_DIRS, ids=[p.name for p in BUNDLE_DIRS])
def test_bundle_loads_and_its_programs_compile(path: Path, tmp_path: Path) -> None:
    with load_bundle(path, BundleLimits(), tmp_path) as bundle:
        assert bundle.manifest.firmware.profile == "twin"
        assert bundle.manifest.services
        staged = {entry.device_path: entry.host_path for entry in bundle.files()}
        for service in bundle.manifest.services:
            scripts = [arg for arg in service.exec[1:] if arg.endswith(".py")]
            assert scripts and all(s in staged for s in scripts), f"{service.name}: {service.exec}"
        for device_path, host_path in staged.items():
            if device_path.endswith(".py"):
                compile(host_path.read_text(encoding="utf-8"), device_path, "exec")


def test_every_example_service_has_a_dry_run(tmp_path: Path) -> None:
    found = {}
    for path in BUNDLE_DIRS:
        (tmp_path / path.name).mkdir()
        with load_bundle(path, BundleLimits(), tmp_path / path.name) as bundle:
            found[path.name] = {service.name for service in bundle.manifest.services}
    assert set(found) == set(DRY_RUN_SERVICES) | NOT_DRY_RUN
    for name, services in DRY_RUN_SERVICES.items():
        assert found[name] == services


def test_expected_manifests() -> None:
    import tomllib

    def firmware(name: str) -> dict[str, Any]:
        table: dict[str, Any] = tomllib.loads((EXAMPLES / name / "firmware.toml").read_text())["firmware"]
        return table

    assert (firmware("adups-5.3")["name"], firmware("adups-5.3")["version"]) == ("adups-fota", "5.3.0")
    assert (firmware("adups-5.4")["name"], firmware("adups-5.4")["version"]) == ("adups-fota", "5.4.0")
    assert (firmware("leaky-kitchen-sink")["name"], firmware("leaky-kitchen-sink")["version"]) == (
        "kitchen-sink", "1.0.0")
    assert (firmware("benign-updater")["name"], firmware("benign-updater")["version"]) == (
        "benign-updater", "2.0.0")


IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
URL_HOST = re.compile(r"\bhttps?://([A-Za-z0-9.-]+)")


@pytest.mark.parametrize("path", BUNDLE_DIRS, ids=[p.name for p in BUNDLE_DIRS])
def test_examples_only_name_documentation_addresses(path: Path) -> None:
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        text = file.read_text(encoding="utf-8")
        for literal in IPV4.findall(text):
            address = ipaddress.ip_address(literal)
            assert any(address in net for net in DOCUMENTATION_NETS), f"{file}: {literal}"
        for host in URL_HOST.findall(text):
            assert host in ALLOWED_HOSTS, f"{file}: contacts {host}"


# -- Adups 5.3: the leak -----------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def records(hits: list[HttpHit]) -> list[dict[str, Any]]:
    return [record for hit in hits for record in hit.json()["data"]]


def test_adups_53_uploads_identifiers_daily_and_personal_data_from_hour_72(
    bundles: dict[str, Bundle], twin_root: Path, capture: Capture, tmp_path: Path
) -> None:
    run = run_services(bundles["adups-5.3"], ["sysoper"], twin_root, capture, 73, tmp_path)["sysoper"]

    checks = capture.hits("fota5p.adups.com", "/otainter-5.0/fota5/detectSchedule.do")
    infos = capture.hits("bigdata.adups.com", "/fota5/detectSchedule.action")
    sms_hits = capture.hits("bigdata.adups.com", "/fota5/uploadSms.action")
    call_hits = capture.hits("bigdata.adups.com", "/fota5/uploadCallLog.action")
    contact_hits = capture.hits("bigdata.adups.com", "/fota5/uploadContacts.action")
    assert len(capture.http) == len(checks) + len(infos) + len(sms_hits) + len(call_hits) + len(contact_hits)
    assert all(h.method == "POST" for h in capture.http)

    # Hours 0, 24, 48, 72: update check plus identifiers.
    assert len(checks) == 4 and len(infos) == 4
    info = infos[0].json()
    assert info["sn"] == SERIAL
    assert re.fullmatch(r"00\d{13}", info["imei"]) and luhn_ok(info["imei"])
    assert re.fullmatch(r"00101\d{10}", info["imsi"])
    assert checks[0].json()["mid"] == info["imei"]
    assert all(h.json()["imei"] == info["imei"] for h in infos)  # stable per device

    # Personal data: once, at hour 72 (not at start), after that hour's check.
    assert len(sms_hits) == len(call_hits) == len(contact_hits) == 1
    uploads = sms_hits + call_hits + contact_hits
    assert min(h.at for h in uploads) >= run.started + 72 * HOUR
    assert min(h.at for h in uploads) >= max(h.at for h in infos)

    sms = records(sms_hits)
    assert len(sms) == len(SMS)
    for address, body, date, kind in SMS:
        raw = body.encode()
        match = [r for r in sms if r["tell"] == address and r["msg_date"] == str(date)]
        assert len(match) == 1, (address, sms)
        record = match[0]
        assert set(record) == {"dc_date", "dc_type", "keyword", "md5", "msg_date", "msg_type", "tell"}
        assert record["md5"] == hashlib.md5(raw).hexdigest().upper()
        assert record["msg_type"] == str(kind) and record["dc_type"] == "1"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["dc_date"])
        keyword = base64.b64decode(record["keyword"], validate=True)
        assert len(keyword) == len(raw) and keyword != raw
    body_text = sms_hits[0].body.decode()
    for address, body, _, _ in SMS:
        assert address in body_text  # the number in clear ...
        assert hashlib.md5(body.encode()).hexdigest().upper() in body_text  # ... and the MD5 of the body
        assert body not in body_text  # the body itself only obfuscated

    calls = records(call_hits)
    assert sorted((c["number"], c["date"], c["duration"], c["type"]) for c in calls) == sorted(CALLS)
    contacts = records(contact_hits)
    assert sorted((c["name"], c["number"]) for c in contacts) == sorted(CONTACTS)
    assert all(h.json()["mid"] == info["imei"] for h in uploads)


# -- Adups 5.4 and the benign updater: clean -----------------------------------------------


def test_adups_54_sends_only_the_update_check(
    bundles: dict[str, Bundle], twin_root: Path, capture: Capture, tmp_path: Path
) -> None:
    run_services(bundles["adups-5.4"], ["sysoper"], twin_root, capture, 73, tmp_path)
    checks = capture.hits("fota5p.adups.com", "/otainter-5.0/fota5/detectSchedule.do")
    assert len(checks) == 4 and len(capture.http) == 4  # hours 0, 24, 48, 72 and nothing else
    for hit in checks:
        assert hit.method == "POST"
        payload = hit.json()
        assert set(payload) == {"models", "fingerprint", "version", "clientVersion"}
        assert payload["models"] == "Honeyphone Twin" and payload["clientVersion"] == "5.4.0"
        assert payload["fingerprint"].startswith("honeyphone/")
    for hit in capture.http:
        assert find_leaks(hit.text()) == []
        assert not re.search(r"\b00\d{13}\b", hit.text())  # no IMEI/IMSI either
    assert capture.dns == [] and capture.tcp == []


def test_benign_updater_sends_only_model_and_build(
    bundles: dict[str, Bundle], twin_root: Path, capture: Capture, tmp_path: Path
) -> None:
    run_services(bundles["benign-updater"], ["updater"], twin_root, capture, 49, tmp_path)
    checks = capture.hits("api.example.org", "/v1/ota/check")
    assert len(checks) == 3 and len(capture.http) == 3  # hours 0, 24, 48
    for hit in checks:
        assert hit.method == "GET" and hit.body == b""
        assert set(hit.query) == {"model", "build", "sdk", "client"}
        assert hit.query["model"] == ["Honeyphone Twin"]
    for hit in capture.http:
        assert find_leaks(hit.text()) == []
    assert capture.dns == [] and capture.tcp == []


# -- the kitchen sink: one leak per style ---------------------------------------------------


def test_kitchen_sink_leaks_in_every_style(
    bundles: dict[str, Bundle], twin_root: Path, capture: Capture, tmp_path: Path
) -> None:
    names = sorted(DRY_RUN_SERVICES["leaky-kitchen-sink"])
    runs = run_services(bundles["leaky-kitchen-sink"], names, twin_root, capture, 49, tmp_path)
    hours = {"http-query": 1, "gzip-json": 2, "md5-b64": 3, "dns-labels": 4, "raw-tcp": 5, "benign-config": 6}

    def fired_at(style: str, times: list[float], per_firing: int) -> None:
        assert len(times) == 2 * per_firing, (style, len(times))
        first, second = sorted(times)[:per_firing], sorted(times)[per_firing:]
        assert min(first) >= runs[style].started + hours[style] * HOUR
        assert min(second) >= runs[style].started + 48 * HOUR

    # (a) plain HTTP GET, numbers and names URL-encoded in the query string.
    tracker = capture.hits("tracker.example.net", "/collect")
    fired_at("http-query", [h.at for h in tracker], len(CONTACTS))
    assert all(h.method == "GET" for h in tracker)
    assert sorted((h.query["name"][0], h.query["phone"][0]) for h in tracker) == sorted(CONTACTS * 2)
    assert all("%2B1540555" in h.path for h in tracker)

    # (b) gzip'd JSON over HTTPS with the SMS bodies.
    sync = capture.hits("api.example.org", "/v2/sync")
    fired_at("gzip-json", [h.at for h in sync], 1)
    for hit in sync:
        assert hit.headers["Content-Encoding"] == "gzip" and hit.raw_body[:2] == b"\x1f\x8b"
        messages = hit.json()["messages"]
        assert sorted((m["from"], m["body"], m["ts"], m["box"]) for m in messages) == sorted(SMS)
        assert SMS[0][1].encode() not in hit.raw_body

    # (c) Adups-style fields: uppercase MD5 hex and base64.
    stats = capture.hits("api.example.org", "/v2/stats")
    fired_at("md5-b64", [h.at for h in stats], 1)
    for hit in stats:
        payload = hit.json()
        events = {e["md5"]: e for e in payload["events"]}
        for address, body, date, _ in SMS:
            event = events[hashlib.md5(body.encode()).hexdigest().upper()]
            assert base64.b64decode(event["keyword"]).decode() == body
            assert base64.b64decode(event["tell"]).decode() == address
            assert event["msg_date"] == str(date)
        hashed = {c["hash"]: base64.b64decode(c["n"]).decode() for c in payload["contacts"]}
        assert hashed == {hashlib.md5(number.encode()).hexdigest().upper(): name for name, number in CONTACTS}
        assert not any(number in hit.text() for _, number in CONTACTS)

    # (d) DNS labels: <hex(number)>.<hex(name)>.x.exfil.example.com for the first three contacts.
    fired_at("dns-labels", [at for _, at in capture.dns], 3)
    expected = [f"{number.encode().hex()}.{name.encode().hex()}.x.exfil.example.com"
                for name, number in CONTACTS[:3]]
    assert [qname for qname, _ in capture.dns] == expected * 2

    # (e) raw TCP, XOR 0x5A.
    fired_at("raw-tcp", [at for _, at in capture.tcp], 1)
    for data, _ in capture.tcp:
        plain = bytes(b ^ 0x5A for b in data).decode("utf-8")
        assert plain == "".join(f"{number}\t{name}\n" for name, number in CONTACTS[:3])
        assert CONTACTS[0][1].encode() not in data

    # (f) the control sends nothing personal.
    config = capture.hits("api.example.org", "/v2/config")
    fired_at("benign-config", [h.at for h in config], 1)
    for hit in config:
        assert set(hit.query) == {"model", "sdk"} and find_leaks(hit.text()) == []

    assert len(capture.http) == len(tracker) + len(sync) + len(stats) + len(config)


def test_kitchen_sink_dns_names_stay_within_dns_limits(bundles: dict[str, Bundle], tmp_path: Path) -> None:
    """A long contact name is cut so the query name stays a valid DNS name."""
    staged = {e.device_path: e.host_path for e in bundles["leaky-kitchen-sink"].files()}
    script = staged["/system/priv-app/com.example.kitchensink/main.py"]
    code = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('ks', sys.argv[1])\n"
        "ks = importlib.util.module_from_spec(spec); spec.loader.exec_module(ks)\n"
        "print(json.dumps([ks.exfil_name('+15405550117', n) for n in ('', 'A', 'Ü' * 200)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(script), "dns-labels"], capture_output=True,
                         text=True, check=True, env={"PATH": os.environ.get("PATH", ""),
                                                     "HONEYPHONE_DEVICE_ROOT": str(tmp_path)})
    empty, short, long = json.loads(out.stdout)
    assert empty == "2b3135343035353530313137.x.exfil.example.com"
    assert short == "2b3135343035353530313137.41.x.exfil.example.com"
    assert len(long) <= 253 and long.endswith(".x.exfil.example.com")
    assert all(0 < len(label) <= 63 for label in long.split("."))
    assert bytes.fromhex("".join(long.split(".")[1:-4])).decode("utf-8", "ignore").startswith("Ü" * 10)
