"""The twin's adbd, run on the host, driven by the real adb binary and adbutils.

Each test module run (and each xdist worker) gets its own adbd on a free
loopback port and its own private adb server (``adb -P <port>``, with HOME
and TMPDIR in a temp dir so keys and logs stay private); both are stopped
at the end, by handle.  The daemon runs on the system's ``/usr/bin/python3``
(Debian's, like the twin) so a stray non-stdlib import would fail here.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
TWIN_DIR = REPO / "emulator_images" / "twin"
if str(TWIN_DIR) not in sys.path:
    sys.path.insert(0, str(TWIN_DIR))

from twinrt import adb_proto as proto  # noqa: E402

ADB = shutil.which("adb") or "/usr/bin/adb"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TIMEOUT = 120


@dataclass
class Twin:
    port: int
    root: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class AdbServer:
    port: int
    env: dict[str, str]

    def run(self, *args: str, input: bytes | None = None, check: bool = False, timeout: float = TIMEOUT
            ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [ADB, "-P", str(self.port), *args],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=self.env,
            timeout=timeout,
            check=check,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    if not os.path.exists(ADB):
        pytest.skip("adb binary not installed")
    base = tmp_path_factory.mktemp("adbd")
    root = base / "root"
    root.mkdir()
    log = base / "adbd.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(TWIN_DIR),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TWIN_ROOT": str(root),
    }
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [PYTHON, "-m", "twinrt.adbd", "--host", "127.0.0.1", "--port", "0", "-v"],
            cwd=TWIN_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        deadline = time.monotonic() + 20
        port = None
        while port is None:
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
            if match:
                port = int(match.group(1))
            elif proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"adbd did not start:\n{log.read_text(errors='replace')}")
            else:
                time.sleep(0.05)
        yield Twin(port=port, root=root, log=log, proc=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def adb(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdbServer]:
    home = tmp_path_factory.mktemp("adbhome")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANDROID_", "ADB_"))}
    env.update({"HOME": str(home), "TMPDIR": str(home)})
    server = None
    for _attempt in range(5):
        candidate = AdbServer(port=_free_port(), env=env)
        if candidate.run("start-server").returncode == 0:
            server = candidate
            break
    if server is None:
        pytest.fail("could not start a private adb server")
    try:
        out = server.run("connect", twin.serial, check=True).stdout.decode()
        assert "connected to" in out, out
        deadline = time.monotonic() + 30
        while f"{twin.serial}\tdevice" not in server.run("devices").stdout.decode():
            if time.monotonic() > deadline:
                pytest.fail("device never came online:\n" + twin.log_text())
            time.sleep(0.1)
        yield server
    finally:
        server.run("kill-server", timeout=30)


@pytest.fixture()
def remote_dir(twin: Twin, tmp_path: Path) -> Path:
    """A directory the 'device' writes into (sync uses real absolute paths)."""
    path = tmp_path / "device"
    path.mkdir()
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- adb binary --------------------------------------------------------------------


def test_device_is_listed_with_banner(adb: AdbServer, twin: Twin) -> None:
    out = adb.run("devices", "-l").stdout.decode()
    line = next(l for l in out.splitlines() if l.startswith(twin.serial))
    assert re.search(r"\sdevice\s", line)
    assert "product:honeyphone_twin" in line and "model:Honeyphone_Twin" in line and "device:twin" in line
    assert adb.run("-s", twin.serial, "get-state").stdout.decode().strip() == "device"


def test_shell_exit_code(adb: AdbServer, twin: Twin) -> None:
    assert adb.run("-s", twin.serial, "shell", "exit 3").returncode == 3
    assert adb.run("-s", twin.serial, "shell", "kill -9 $$").returncode == 137


def test_shell_separates_stdout_and_stderr(adb: AdbServer, twin: Twin) -> None:
    result = adb.run("-s", twin.serial, "shell", "echo out; echo err >&2")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"out\n", b"err\n")


def test_shell_stdin_and_close_stdin(adb: AdbServer, twin: Twin) -> None:
    result = adb.run("-s", twin.serial, "shell", "cat", input=b"hello\n")
    assert (result.returncode, result.stdout) == (0, b"hello\n")
    data = os.urandom(3 * 1024 * 1024)
    result = adb.run("-s", twin.serial, "shell", "sha256sum", input=data)
    assert result.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_shell_command_string_goes_to_sh_verbatim(adb: AdbServer, twin: Twin) -> None:
    result = adb.run("-s", twin.serial, "shell", "echo \"$((6*7))\" 'a  b' | tr a-z A-Z; echo $0")
    assert result.stdout == b"42 A  B\n/bin/sh\n"


def test_push_pull_50mib_byte_identical(adb: AdbServer, twin: Twin, tmp_path: Path, remote_dir: Path) -> None:
    local = tmp_path / "random.bin"
    local.write_bytes(os.urandom(50 * 1024 * 1024))
    os.utime(local, (1_600_000_000, 1_600_000_000))
    remote = remote_dir / "new" / "sub" / "random.bin"
    push = adb.run("-s", twin.serial, "push", str(local), str(remote))
    assert push.returncode == 0, push.stderr
    st = remote.stat()
    assert st.st_size == local.stat().st_size
    assert stat.S_IMODE(st.st_mode) == 0o666  # adbd copies the user bits to group/other
    assert int(st.st_mtime) == 1_600_000_000
    assert stat.S_IMODE((remote_dir / "new").stat().st_mode) == 0o775
    assert not [p for p in remote.parent.iterdir() if p.name.startswith(".adbd-push-")]
    back = tmp_path / "back.bin"
    pull = adb.run("-s", twin.serial, "pull", str(remote), str(back))
    assert pull.returncode == 0, pull.stderr
    assert sha256(back) == sha256(local)


def test_push_replaces_existing_file_and_symlink(adb: AdbServer, twin: Twin, tmp_path: Path, remote_dir: Path) -> None:
    local = tmp_path / "f.txt"
    local.write_bytes(b"new contents\n")
    remote = remote_dir / "f.txt"
    remote.write_bytes(b"old contents that are longer\n")
    assert adb.run("-s", twin.serial, "push", str(local), str(remote)).returncode == 0
    assert remote.read_bytes() == b"new contents\n"
    # Directory pushes carry symlinks as symlinks (SEND with S_IFLNK mode).
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_bytes(b"f")
    (tree / "l").symlink_to("f")
    (remote_dir / "tree").mkdir()
    (remote_dir / "tree" / "l").write_bytes(b"a regular file the link replaces")
    assert adb.run("-s", twin.serial, "push", str(tree), str(remote_dir)).returncode == 0
    assert os.readlink(remote_dir / "tree" / "l") == "f"
    assert (remote_dir / "tree" / "f").read_bytes() == b"f"


def test_push_errors_are_reported(adb: AdbServer, twin: Twin, tmp_path: Path, remote_dir: Path) -> None:
    local = tmp_path / "x"
    local.write_bytes(b"x")
    (remote_dir / "plainfile").write_bytes(b"")
    result = adb.run("-s", twin.serial, "push", str(local), str(remote_dir / "plainfile" / "child"))
    assert result.returncode != 0
    assert b"Not a directory" in result.stdout + result.stderr
    missing = adb.run("-s", twin.serial, "pull", str(remote_dir / "missing"), str(tmp_path / "m"))
    assert missing.returncode != 0
    # The connection survives failed transfers.
    assert adb.run("-s", twin.serial, "shell", "echo ok").stdout == b"ok\n"


def test_exec_out_and_v1_shell(adb: AdbServer, twin: Twin, remote_dir: Path) -> None:
    blob = os.urandom(1024 * 1024) + b"\r\n\x03\x04\x1a\x7f"
    (remote_dir / "blob.bin").write_bytes(blob)
    (remote_dir / "name-a").write_bytes(b"")
    out = adb.run("-s", twin.serial, "exec-out", f"cat {remote_dir}/blob.bin").stdout
    assert out == blob  # raw PTY: binary safe, no CRLF translation
    listing = adb.run("-s", twin.serial, "exec-out", f"ls -1 {remote_dir}").stdout.decode()
    assert "name-a" in listing.split()
    v1 = adb.run("-s", twin.serial, "shell", "-x", "echo a; echo b >&2; exit 5")
    assert v1.returncode == 0  # v1 has no exit status
    assert v1.stdout == b"a\nb\n"
    assert adb.run("-s", twin.serial, "shell", "-x", "ls", str(remote_dir)).stdout.split().count(b"name-a") == 1


def test_exec_in_delivers_all_stdin(adb: AdbServer, twin: Twin, tmp_path: Path, remote_dir: Path) -> None:
    """``exec-in`` closes the stream right after its last byte; nothing may be lost."""
    data = os.urandom(5 * 1024 * 1024)
    target = remote_dir / "exec-in.bin"
    result = adb.run("-s", twin.serial, "exec-in", f"cat > {target}", input=data)
    assert result.returncode == 0
    deadline = time.monotonic() + 10
    while (not target.exists() or target.stat().st_size < len(data)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_twenty_concurrent_shells(adb: AdbServer, twin: Twin) -> None:
    procs = [
        subprocess.Popen(
            [ADB, "-P", str(adb.port), "-s", twin.serial, "shell", f"echo start-{i}; sleep 0.3; echo end-{i} >&2; exit {i}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=adb.env,
        )
        for i in range(20)
    ]
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=TIMEOUT)
        assert (proc.returncode, out, err) == (i, f"start-{i}\n".encode(), f"end-{i}\n".encode())


def test_concurrent_bulk_transfers(adb: AdbServer, twin: Twin, remote_dir: Path) -> None:
    """Several streams moving data at once must not corrupt or stall each other."""
    blob = os.urandom(8 * 1024 * 1024)
    (remote_dir / "bulk").write_bytes(blob)
    digest = hashlib.sha256(blob).hexdigest()
    procs = [
        subprocess.Popen(
            [ADB, "-P", str(adb.port), "-s", twin.serial, "shell", f"cat {remote_dir}/bulk"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=adb.env,
        )
        for _ in range(4)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert hashlib.sha256(out).hexdigest() == digest


def test_root_unroot_and_unknown_services(adb: AdbServer, twin: Twin) -> None:
    root = adb.run("-s", twin.serial, "root")
    assert (root.returncode, root.stdout) == (0, b"adbd is already running as root\n")
    unroot = adb.run("-s", twin.serial, "unroot")
    assert unroot.returncode == 0 and b"restarting" not in unroot.stdout
    remount = adb.run("-s", twin.serial, "remount")
    assert (remount.returncode, remount.stdout) == (0, b"remount succeeded\n")
    # No /system/bin/reboot on the host: the request is logged and the stream closed.
    assert adb.run("-s", twin.serial, "reboot", "bootloader").returncode == 0
    assert "reboot requested ('bootloader')" in twin.log_text()
    assert adb.run("-s", twin.serial, "shell", "echo still-here").stdout == b"still-here\n"


def test_shell_env_file_is_read_at_each_spawn(adb: AdbServer, twin: Twin) -> None:
    env_file = twin.root / "run" / "honeyphone" / "shell.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        env_file.write_text("FAKETIME=@2020-01-01 00:00:00\nexport HONEY=1\n")
        out = adb.run("-s", twin.serial, "shell", 'echo "$FAKETIME|$HONEY|$HOME|$PATH"').stdout.decode()
        assert out == (
            "@2020-01-01 00:00:00|1|/tmp|"
            "/system/bin:/system/xbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        )
        env_file.write_text("HONEY=2\n")
        assert adb.run("-s", twin.serial, "exec-out", 'echo "$FAKETIME|$HONEY"').stdout == b"|2\n"
    finally:
        env_file.unlink()


def test_forward_to_device_tcp_and_unix_sockets(adb: AdbServer, twin: Twin, tmp_path: Path) -> None:
    """``adb forward`` opens tcp:/localfilesystem:/localabstract: streams."""

    def echo_server(server: socket.socket) -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                try:
                    while data := conn.recv(65536):
                        conn.sendall(data.upper())
                except OSError:
                    pass

    tcp = socket.create_server(("127.0.0.1", 0))
    unix_path = tmp_path / "echo.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(unix_path))
    unix.listen()
    abstract = socket.socket(socket.AF_UNIX)
    abstract_name = f"honeyphone-test-{os.getpid()}-{twin.port}"
    abstract.bind("\0" + abstract_name)
    abstract.listen()
    targets = [
        (tcp, f"tcp:{tcp.getsockname()[1]}"),
        (unix, f"localfilesystem:{unix_path}"),
        (abstract, f"localabstract:{abstract_name}"),
    ]
    for server, remote in targets:
        threading.Thread(target=echo_server, args=(server,), daemon=True).start()
        local = _free_port()
        assert adb.run("-s", twin.serial, "forward", f"tcp:{local}", remote).returncode == 0
        try:
            with socket.create_connection(("127.0.0.1", local), timeout=10) as conn:
                payload = os.urandom(200_000).hex().encode()
                conn.sendall(payload)  # no half-close: ADB streams have none
                got = b""
                while len(got) < len(payload) and (data := conn.recv(65536)):
                    got += data
            assert got == payload.upper()
        finally:
            adb.run("-s", twin.serial, "forward", "--remove", f"tcp:{local}")
    # Nothing listening: the device refuses the stream and the host connection closes.
    local = _free_port()
    assert adb.run("-s", twin.serial, "forward", f"tcp:{local}", f"tcp:{_free_port()}").returncode == 0
    try:
        with socket.create_connection(("127.0.0.1", local), timeout=10) as conn:
            assert conn.recv(10) == b""
    finally:
        adb.run("-s", twin.serial, "forward", "--remove", f"tcp:{local}")


def test_malformed_packets_drop_only_that_connection(adb: AdbServer, twin: Twin) -> None:
    with socket.create_connection(("127.0.0.1", twin.port), timeout=10) as sock:
        sock.sendall(b"\xde\xad\xbe\xef" * 16)
        assert sock.recv(100) == b""  # daemon hung up on us
    with socket.create_connection(("127.0.0.1", twin.port), timeout=10) as sock:
        # Valid magic but a payload larger than any adb would send.
        sock.sendall(proto.HEADER.pack(proto.A_CNXN, proto.A_VERSION, 4096, 1 << 30, 0, proto.A_CNXN ^ 0xFFFFFFFF))
        assert sock.recv(100) == b""
    assert "protocol error" in twin.log_text()
    assert adb.run("-s", twin.serial, "shell", "echo alive").stdout == b"alive\n"


def test_raw_client_handshake(twin: Twin) -> None:
    """Speak the transport protocol directly: CNXN, OPEN, WRTE/OKAY, CLSE."""
    with socket.create_connection(("127.0.0.1", twin.port), timeout=10) as sock:
        parser = proto.PacketParser()
        pending: list[proto.Packet] = []

        def recv_packet() -> proto.Packet:
            while not pending:
                data = sock.recv(65536)
                assert data, "connection closed"
                pending.extend(parser.feed(data))
            return pending.pop(0)

        sock.sendall(proto.encode_packet(proto.A_CNXN, 0x01000000, 4096, b"host::\0", with_checksum=True))
        cnxn = recv_packet()
        assert cnxn.command == proto.A_CNXN and cnxn.arg1 == 4096
        kind, props, features = proto.parse_banner(cnxn.payload)
        assert kind == "device" and "shell_v2" in features and props["ro.product.model"] == "Honeyphone Twin"
        sock.sendall(proto.encode_packet(proto.A_OPEN, 42, 0, b"bogus:\0", with_checksum=True))
        assert recv_packet()[:3] == (proto.A_CLSE, 0, 42)
        sock.sendall(proto.encode_packet(proto.A_OPEN, 43, 0, b"exec:head -c 10000 /dev/zero\0", with_checksum=True))
        okay = recv_packet()
        assert okay.command == proto.A_OKAY and okay.arg1 == 43
        local = okay.arg0
        received = b""
        while True:
            packet = recv_packet()
            if packet.command == proto.A_CLSE:
                break
            assert packet.command == proto.A_WRTE and len(packet.payload) <= 4096
            # Old protocol version: the daemon must fill in checksums.
            header = proto.encode_header(packet.command, packet.arg0, packet.arg1, packet.payload, with_checksum=True)
            assert proto.checksum(packet.payload) == struct.unpack_from("<I", header, 16)[0]
            received += packet.payload
            sock.sendall(proto.encode_packet(proto.A_OKAY, 43, local, with_checksum=True))
        assert received == bytes(10000)


# --- adbutils ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def device(adb: AdbServer, twin: Twin):  # type: ignore[no-untyped-def]
    adbutils = pytest.importorskip("adbutils")
    client = adbutils.AdbClient(host="127.0.0.1", port=adb.port)
    client.connect(twin.serial)
    return client.device(twin.serial)


def test_adbutils_shell(device) -> None:  # type: ignore[no-untyped-def]
    result = device.shell2("echo out; echo err >&2; exit 4", v2=True)
    assert (result.returncode, result.stdout, result.stderr) == (4, "out\n", "err\n")
    legacy = device.shell2("echo legacy; (exit 6)")  # v1 + adbutils' echo-$? trick
    assert (legacy.returncode, legacy.output) == (6, "legacy\n")
    assert device.shell("echo v1") == "v1"
    assert device.shell(["echo", "a b"]) == "a b"


def test_adbutils_sync(device, tmp_path: Path, remote_dir: Path) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(2 * 1024 * 1024 + 17)
    local = tmp_path / "payload.bin"
    local.write_bytes(data)
    target = str(remote_dir / "deep" / "payload.bin")
    assert device.sync.push(str(local), target) == len(data)
    info = device.sync.stat(target)
    assert info.size == len(data) and stat.S_ISREG(info.mode)
    assert device.sync.stat(str(remote_dir / "nope")).mtime is None
    names = {entry.path for entry in device.sync.list(str(remote_dir / "deep"))}
    assert names == {".", "..", "payload.bin"}
    assert device.sync.read_bytes(target) == data
    back = tmp_path / "back.bin"
    device.sync.pull(target, str(back))
    assert back.read_bytes() == data
    assert device.sync.push(b"tiny", str(remote_dir / "tiny.txt")) == 4
    assert (remote_dir / "tiny.txt").read_bytes() == b"tiny"


def _read_shell_packets(conn, until_exit: bool = True) -> tuple[bytes, bytes, int | None]:  # type: ignore[no-untyped-def]
    out, err, code = b"", b"", None
    while True:
        header = conn.read_exact(5)
        ident, length = struct.unpack("<BI", header)
        data = conn.read_exact(length) if length else b""
        if ident == proto.SHELL_STDOUT:
            out += data
        elif ident == proto.SHELL_STDERR:
            err += data
        elif ident == proto.SHELL_EXIT:
            code = data[0]
            if until_exit:
                return out, err, code


def test_interactive_pty_shell_v2(device) -> None:  # type: ignore[no-untyped-def]
    conn = device.open_transport(timeout=30)
    try:
        conn.send_command("shell,v2,TERM=xterm,pty:")
        conn.check_okay()
        conn.send(proto.encode_shell_packet(proto.SHELL_WINDOW_SIZE, b"33x101,0x0\0"))
        script = b"stty size; echo \"term=$TERM\"; tty >/dev/null && echo has-tty; exit 7\n"
        conn.send(proto.encode_shell_packet(proto.SHELL_STDIN, script))
        out, err, code = _read_shell_packets(conn)
    finally:
        conn.close()
    assert code == 7
    text = out.decode(errors="replace")
    assert "33 101" in text and "term=xterm" in text and "has-tty" in text
    assert "\r\n" in text  # a real (cooked) terminal
    assert re.search(r":/ [#$] ", text)  # Android-style prompt, e.g. "twin:/ # "


def test_closing_a_stream_kills_its_child(device) -> None:  # type: ignore[no-untyped-def]
    conn = device.open_transport(timeout=30)
    conn.send_command("shell,v2,raw:echo $$; exec sleep 1000")
    conn.check_okay()
    header = conn.read_exact(5)
    pid = int(conn.read_exact(struct.unpack("<BI", header)[1]))
    os.kill(pid, 0)  # running
    conn.close()
    deadline = time.monotonic() + 15
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "child survived its stream"
        time.sleep(0.05)


def _sync_conn(device):  # type: ignore[no-untyped-def]
    conn = device.open_transport(timeout=30)
    conn.send_command("sync:")
    conn.check_okay()
    return conn


def test_sync_v2_requests(device, remote_dir: Path) -> None:  # type: ignore[no-untyped-def]
    (remote_dir / "file").write_bytes(b"12345")
    (remote_dir / "link").symlink_to("file")
    conn = _sync_conn(device)
    try:
        conn.send(proto.encode_sync_request(proto.ID_STAT_V2, str(remote_dir / "link").encode()))
        fields = proto.SYNC_STAT_V2.unpack(conn.read_exact(proto.SYNC_STAT_V2.size))
        assert fields[0] == b"STA2" and fields[1] == 0 and stat.S_ISREG(fields[4]) and fields[8] == 5
        conn.send(proto.encode_sync_request(proto.ID_LSTAT_V2, str(remote_dir / "link").encode()))
        fields = proto.SYNC_STAT_V2.unpack(conn.read_exact(proto.SYNC_STAT_V2.size))
        assert fields[0] == b"LST2" and stat.S_ISLNK(fields[4])
        conn.send(proto.encode_sync_request(proto.ID_LSTAT_V2, str(remote_dir / "missing").encode()))
        fields = proto.SYNC_STAT_V2.unpack(conn.read_exact(proto.SYNC_STAT_V2.size))
        assert fields[1] == 2  # ENOENT on the wire

        conn.send(proto.encode_sync_request(proto.ID_LIST_V2, str(remote_dir).encode()))
        names = set()
        while True:
            head = conn.read_exact(proto.SYNC_DENT_V2.size)
            dent = proto.SYNC_DENT_V2.unpack(head)
            if dent[0] == b"DONE":
                break
            names.add(conn.read_exact(dent[-1]).decode())
        assert names == {".", "..", "file", "link"}

        # Dry-run send: consumed and acknowledged, nothing written.
        dry = str(remote_dir / "dry").encode()
        conn.send(proto.encode_sync_request(proto.ID_SEND_V2, dry)
                  + proto.SYNC_SEND_V2_SETUP.pack(proto.ID_SEND_V2, 0o100644, proto.SYNC_FLAG_DRY_RUN)
                  + proto.encode_sync_data(b"ignored") + proto.encode_sync_done(1))
        assert conn.read_exact(8) == proto.encode_sync_okay()
        assert not (remote_dir / "dry").exists()

        real = str(remote_dir / "sent").encode()
        conn.send(proto.encode_sync_request(proto.ID_SEND_V2, real)
                  + proto.SYNC_SEND_V2_SETUP.pack(proto.ID_SEND_V2, 0o100600, 0)
                  + proto.encode_sync_data(b"hello ") + proto.encode_sync_data(b"world")
                  + proto.encode_sync_done(1_500_000_000))
        assert conn.read_exact(8) == proto.encode_sync_okay()
        sent = remote_dir / "sent"
        assert sent.read_bytes() == b"hello world" and int(sent.stat().st_mtime) == 1_500_000_000
        assert stat.S_IMODE(sent.stat().st_mode) == 0o666

        conn.send(proto.encode_sync_request(proto.ID_RECV_V2, real) + proto.SYNC_RECV_V2_SETUP.pack(proto.ID_RECV_V2, 0))
        got = b""
        while True:
            ident, size = proto.SYNC_REQUEST.unpack(conn.read_exact(8))
            if ident == proto.ID_DONE:
                break
            assert ident == proto.ID_DATA and size <= proto.SYNC_DATA_MAX
            got += conn.read_exact(size)
        assert got == b"hello world"

        # Compression was never advertised: FAIL and the session ends.
        conn.send(proto.encode_sync_request(proto.ID_RECV_V2, real)
                  + proto.SYNC_RECV_V2_SETUP.pack(proto.ID_RECV_V2, proto.SYNC_FLAG_BROTLI))
        ident, size = proto.SYNC_REQUEST.unpack(conn.read_exact(8))
        assert ident == proto.ID_FAIL and conn.read_exact(size) == b"unknown flags: 1"
    finally:
        conn.close()


def test_sync_fail_messages(device, remote_dir: Path) -> None:  # type: ignore[no-untyped-def]
    conn = _sync_conn(device)
    try:
        conn.send(proto.encode_sync_request(proto.ID_RECV_V1, str(remote_dir / "absent").encode()))
        ident, size = proto.SYNC_REQUEST.unpack(conn.read_exact(8))
        assert ident == proto.ID_FAIL
        assert conn.read_exact(size) == b"open failed: No such file or directory"
    finally:
        conn.close()
    conn = _sync_conn(device)
    try:
        conn.send(proto.encode_sync_request(b"ZZZZ", b"/"))
        ident, size = proto.SYNC_REQUEST.unpack(conn.read_exact(8))
        assert ident == proto.ID_FAIL and conn.read_exact(size) == b"unknown command 5a5a5a5a"
    finally:
        conn.close()


def test_unknown_service_is_refused(device) -> None:  # type: ignore[no-untyped-def]
    adbutils = pytest.importorskip("adbutils")
    conn = device.open_transport(timeout=30)
    try:
        conn.send_command("framebuffer:")
        with pytest.raises(adbutils.AdbError):
            conn.check_okay()
    finally:
        conn.close()
    assert device.shell("echo fine") == "fine"
