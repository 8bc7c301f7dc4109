"""The twin adbd's transport (:mod:`twinrt.adbd.transport`) over a fake socket.

The connection state machine against a fake asyncio transport: the CNXN
handshake and banner, refused services, garbage dropping only its connection,
one WRTE in flight until OKAY, the sync reader's OKAYs, WRTE floods and
packets for unknown streams.  No sockets, no processes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

TWIN_DIR = Path(__file__).resolve().parents[3] / "emulator_images" / "twin"
if str(TWIN_DIR) not in sys.path:
    sys.path.insert(0, str(TWIN_DIR))

from twinrt import adb_proto as proto  # noqa: E402
from twinrt.adbd.services import Daemon  # noqa: E402
from twinrt.adbd.transport import FEATURES, MAX_QUEUED_WRITES, ByteReader, Connection, Stream  # noqa: E402


def test_features_are_only_implemented_ones() -> None:
    assert set(FEATURES) == {
        "shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir", "fixed_push_symlink_timestamp",
        "sendrecv_v2", "sendrecv_v2_dry_run_send",
    }


# --- connection state machine over a fake transport -------------------------------------


class FakeTransport(asyncio.Transport):
    """Collects what the daemon writes; decodes it with the real parser."""

    def __init__(self) -> None:
        super().__init__()
        self.parser = proto.PacketParser()
        self.packets: list[proto.Packet] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.packets += self.parser.feed(data)

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default


def _connect(conn: Connection, max_payload: int = 4096) -> FakeTransport:
    transport = FakeTransport()
    conn.connection_made(transport)
    conn.data_received(proto.encode_packet(proto.A_CNXN, proto.A_VERSION, max_payload, b"host::features=shell_v2\0"))
    return transport


def test_handshake_and_refused_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))

    async def scenario() -> None:
        conn = Connection(Daemon())
        transport = _connect(conn, max_payload=2 * proto.MAX_PAYLOAD)
        cnxn = transport.packets[0]
        assert cnxn.command == proto.A_CNXN
        assert (cnxn.arg0, cnxn.arg1) == (proto.A_VERSION, proto.MAX_PAYLOAD)
        kind, props, features = proto.parse_banner(cnxn.payload)
        assert kind == "device" and props["ro.product.device"] == "twin" and "shell_v2" in features
        conn.data_received(proto.encode_packet(proto.A_OPEN, 9, 0, b"framebuffer:\0"))
        assert transport.packets[-1][:3] == (proto.A_CLSE, 0, 9)
        conn.connection_lost(None)

    asyncio.run(scenario())


def test_garbage_drops_only_the_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))

    async def scenario() -> None:
        conn = Connection(Daemon())
        transport = _connect(conn)
        conn.data_received(b"\x00" * 20 + b"garbage-garbage-garbage")
        assert transport.closed

    asyncio.run(scenario())


def test_one_wrte_in_flight_until_okay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream never sends a second WRTE before the host's OKAY, and batches meanwhile."""
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))

    async def scenario() -> None:
        conn = Connection(Daemon())
        transport = _connect(conn, max_payload=4096)
        stream = Stream(conn, 1, 77, "test")
        conn._streams[1] = stream
        await stream.write(b"a" * 10)
        await stream.write(b"b" * 5000)
        wrtes = [p for p in transport.packets if p.command == proto.A_WRTE]
        assert [len(p.payload) for p in wrtes] == [10]
        stream.on_okay()
        wrtes = [p for p in transport.packets if p.command == proto.A_WRTE]
        assert [len(p.payload) for p in wrtes] == [10, 4096]
        stream.on_okay()
        stream.on_okay()  # a duplicate OKAY must not produce an empty WRTE
        wrtes = [p for p in transport.packets if p.command == proto.A_WRTE]
        assert [len(p.payload) for p in wrtes] == [10, 4096, 904]
        assert all((p.arg0, p.arg1) == (1, 77) for p in wrtes)
        stream.close()
        assert transport.packets[-1][:3] == (proto.A_CLSE, 1, 77)

    asyncio.run(scenario())


def test_sync_reader_acks_each_payload_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))

    async def scenario() -> None:
        conn = Connection(Daemon())
        transport = _connect(conn)
        stream = Stream(conn, 1, 5, "sync:")
        conn._streams[1] = stream
        reader = ByteReader(stream)
        stream.on_write(b"abcdef")
        assert await reader.readexactly(2) == b"ab"
        okays = lambda: [p for p in transport.packets if p.command == proto.A_OKAY]  # noqa: E731
        assert okays() == []
        task = asyncio.ensure_future(reader.readexactly(6))
        await asyncio.sleep(0)
        assert len(okays()) == 1  # first payload consumed, host may send more
        stream.on_write(b"gh")
        assert await task == b"cdefgh"
        assert len(okays()) == 2

    asyncio.run(scenario())


def test_wrte_flood_closes_the_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """protocol.txt: a WRTE sent before our OKAY is a violation; we CLOSE the stream."""
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))

    async def scenario() -> None:
        conn = Connection(Daemon())
        transport = _connect(conn)
        stream = Stream(conn, 3, 8, "test")
        conn._streams[3] = stream
        flood = b"".join(proto.encode_packet(proto.A_WRTE, 8, 3, b"x") for _ in range(MAX_QUEUED_WRITES + 1))
        conn.data_received(flood)
        assert transport.packets[-1][:3] == (proto.A_CLSE, 3, 8)
        assert stream.closed and not transport.closed  # the connection survives

    asyncio.run(scenario())


def test_packets_for_unknown_streams_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_ROOT", str(tmp_path))

    async def scenario() -> None:
        conn = Connection(Daemon())
        transport = _connect(conn)
        before = len(transport.packets)
        conn.data_received(
            proto.encode_packet(proto.A_WRTE, 1, 999, b"x")
            + proto.encode_packet(proto.A_OKAY, 1, 999)
            + proto.encode_packet(proto.A_CLSE, 1, 999)
            + proto.encode_packet(0x12345678, 0, 0)
        )
        assert len(transport.packets) == before and not transport.closed

    asyncio.run(scenario())
