"""Pure-logic tests of the twin adbd's wire codecs (no sockets, no processes).

Covers the transport framing, the shell_v2 packet codec and the sync
message layouts against the byte layouts in AOSP's adb sources, plus the
small adbd helpers whose behaviour must match the real daemon (the
connection state machine is in ``test_adbd_transport.py``).  Hypothesis
checks that arbitrary chunking never changes what the incremental parsers
return and that garbage only ever raises :class:`ProtocolError`.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

TWIN_DIR = Path(__file__).resolve().parents[3] / "emulator_images" / "twin"
if str(TWIN_DIR) not in sys.path:
    sys.path.insert(0, str(TWIN_DIR))

from twinrt import adb_proto as proto  # noqa: E402
from twinrt import adbd  # noqa: E402

U32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
COMMANDS = st.sampled_from(
    [proto.A_CNXN, proto.A_OPEN, proto.A_OKAY, proto.A_WRTE, proto.A_CLSE, proto.A_AUTH, proto.A_SYNC]
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points + [len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


# --- transport framing ------------------------------------------------------------


def test_header_layout_matches_protocol_txt() -> None:
    raw = proto.encode_packet(proto.A_OPEN, 7, 0, b"shell:ls\0")
    command, arg0, arg1, length, check, magic = struct.unpack("<6I", raw[:24])
    assert raw[:4] == b"OPEN"
    assert (command, arg0, arg1, length) == (0x4E45504F, 7, 0, 9)
    assert check == 0  # skipped for protocol >= 0x01000001
    assert magic == command ^ 0xFFFFFFFF
    assert raw[24:] == b"shell:ls\0"


def test_command_constants_spell_their_names() -> None:
    for value, name in proto.COMMAND_NAMES.items():
        assert struct.pack("<I", value) == name.encode()


def test_checksum_is_byte_sum_when_requested() -> None:
    raw = proto.encode_packet(proto.A_CNXN, proto.A_VERSION, 4096, b"\x01\x02\xff", with_checksum=True)
    assert struct.unpack_from("<I", raw, 16)[0] == 0x102


@settings(max_examples=200, deadline=None)
@given(
    packets=st.lists(st.tuples(COMMANDS, U32, U32, st.binary(max_size=300)), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_parser_is_chunking_independent(packets: list[tuple[int, int, int, bytes]], cuts: list[int]) -> None:
    wire = b"".join(proto.encode_packet(c, a0, a1, p) for c, a0, a1, p in packets)
    parser = proto.PacketParser()
    got = []
    for piece in split_at(wire, cuts):
        got += parser.feed(piece)
    assert [tuple(p) for p in got] == packets
    assert parser.buffered == 0


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(min_size=0, max_size=4096), cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_garbage_only_ever_raises_protocol_error(garbage: bytes, cuts: list[int]) -> None:
    parser = proto.PacketParser(max_payload=proto.MAX_PAYLOAD)
    try:
        for piece in split_at(garbage, cuts):
            for packet in parser.feed(piece):
                assert isinstance(packet, proto.Packet)
    except proto.ProtocolError:
        pass
    assert parser.buffered < proto.HEADER_SIZE + proto.MAX_PAYLOAD + len(garbage) + 1


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(
        st.tuples(U32, U32, U32, st.integers(0, 2 * 4096), U32, st.booleans(), st.binary(max_size=64)),
        max_size=6,
    )
)
def test_plausible_headers_only_ever_raise_protocol_error(
    headers: list[tuple[int, int, int, int, int, bool, bytes]]
) -> None:
    """Valid-looking headers with random lengths/commands reach the deeper checks."""
    wire = b"".join(
        proto.HEADER.pack(cmd, a0, a1, length, check, cmd ^ 0xFFFFFFFF if good_magic else check) + tail
        for cmd, a0, a1, length, check, good_magic, tail in headers
    )
    parser = proto.PacketParser(max_payload=4096)
    try:
        for packet in parser.feed(wire):
            assert len(packet.payload) <= 4096
    except proto.ProtocolError:
        pass


def test_bad_magic_is_a_protocol_error() -> None:
    raw = bytearray(proto.encode_packet(proto.A_OKAY, 1, 2))
    raw[20] ^= 1
    with pytest.raises(proto.ProtocolError, match="magic"):
        proto.PacketParser().feed(bytes(raw))


def test_oversized_payload_is_refused_before_buffering() -> None:
    header = proto.HEADER.pack(proto.A_WRTE, 1, 2, 4096 + 1, 0, proto.A_WRTE ^ 0xFFFFFFFF)
    with pytest.raises(proto.ProtocolError, match="exceeds"):
        proto.PacketParser(max_payload=4096).feed(header)


def test_banner_round_trip_and_shape() -> None:
    props = {"ro.product.name": "n", "ro.product.model": "M M", "ro.product.device": "d"}
    banner = proto.build_banner(props, ["shell_v2", "cmd"])
    assert banner == b"device::ro.product.name=n;ro.product.model=M M;ro.product.device=d;features=shell_v2,cmd"
    assert proto.parse_banner(banner) == ("device", props, ["shell_v2", "cmd"])
    assert proto.parse_banner(b"host::features=a,b\0") == ("host", {}, ["a", "b"])


def test_service_name_decoding() -> None:
    assert proto.decode_service_name(b"shell:ls\0") == "shell:ls"
    assert proto.decode_service_name(b"sync:") == "sync:"
    assert proto.decode_service_name(b"exec:cat \xff\0junk") == "exec:cat \udcff"


# --- shell protocol -----------------------------------------------------------------


def test_shell_packet_layout() -> None:
    assert proto.encode_shell_packet(proto.SHELL_EXIT, b"\x03") == b"\x03\x01\x00\x00\x00\x03"
    assert proto.encode_shell_packet(proto.SHELL_CLOSE_STDIN) == b"\x04\x00\x00\x00\x00"


SHELL_PACKETS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([0, 1, 2]), st.binary(max_size=200)),
        st.tuples(st.sampled_from([3, 4, 5, 9]), st.binary(max_size=20)),
    ),
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(packets=SHELL_PACKETS, cuts=st.lists(st.integers(0, 3000), max_size=10))
def test_shell_parser_streams_data_and_keeps_control_whole(
    packets: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    wire = b"".join(proto.encode_shell_packet(i, d) for i, d in packets)
    parser = proto.ShellPacketParser()
    got: list[tuple[int, bytes]] = []
    for piece in split_at(wire, cuts):
        got += parser.feed(piece)
    # Merge consecutive data pieces of one id; control packets must come out whole.
    merged: list[tuple[int, bytes]] = []
    for ident, data in got:
        if ident in (0, 1, 2) and merged and merged[-1][0] == ident:
            merged[-1] = (ident, merged[-1][1] + data)
        else:
            merged.append((ident, data))
    expected: list[tuple[int, bytes]] = []
    for ident, data in packets:
        if ident in (0, 1, 2):
            if not data:
                continue
            if expected and expected[-1][0] == ident:
                expected[-1] = (ident, expected[-1][1] + data)
                continue
        expected.append((ident, data))
    assert merged == expected


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 3000), max_size=6))
def test_shell_parser_garbage_only_raises_protocol_error(garbage: bytes, cuts: list[int]) -> None:
    parser = proto.ShellPacketParser()
    try:
        for piece in split_at(garbage, cuts):
            parser.feed(piece)
    except proto.ProtocolError:
        pass


def test_shell_parser_huge_stdin_costs_no_memory() -> None:
    parser = proto.ShellPacketParser()
    assert parser.feed(proto.SHELL_HEADER.pack(0, 0xFFFFFFFF) + b"abc") == [(0, b"abc")]
    assert parser.feed(b"def") == [(0, b"def")]


def test_shell_parser_refuses_huge_control_packet() -> None:
    with pytest.raises(proto.ProtocolError):
        proto.ShellPacketParser().feed(proto.SHELL_HEADER.pack(5, proto.SHELL_MAX_CONTROL + 1))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"24x80,0x0\0", (24, 80, 0, 0)),
        (b"33x101,640x480", (33, 101, 640, 480)),
        (b"-1x99999,0x0\0", (0, 65535, 0, 0)),
        (b"garbage\0", None),
        (b"", None),
    ],
)
def test_parse_window_size(data: bytes, expected: tuple[int, int, int, int] | None) -> None:
    assert proto.parse_window_size(data) == expected


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        (":", proto.ShellSpec("", True, False, "dumb")),
        (":ls -l", proto.ShellSpec("ls -l", False, False, "dumb")),
        (",v2,TERM=xterm-256color,raw:echo a:b", proto.ShellSpec("echo a:b", False, True, "xterm-256color")),
        (",v2,pty:", proto.ShellSpec("", True, True, "dumb")),
        (",v2,pty:top", proto.ShellSpec("top", True, True, "dumb")),
        (",v2:id", proto.ShellSpec("id", False, True, "dumb")),
        (",raw:", proto.ShellSpec("", False, False, "dumb")),
        (",future-arg,v2:x", proto.ShellSpec("x", False, True, "dumb")),
        ("", None),
        (",v2", None),
    ],
)
def test_parse_shell_service(rest: str, expected: proto.ShellSpec | None) -> None:
    assert proto.parse_shell_service(rest) == expected


# --- sync protocol ---------------------------------------------------------------------


FIELDS = proto.StatFields(
    st_dev=0x801, st_ino=1234, st_mode=0o100644, st_nlink=1, st_uid=2000, st_gid=2000,
    st_size=5 << 32 | 7, st_atime=1_700_000_001, st_mtime=1_700_000_002, st_ctime=-3,
)


def test_stat_v1_layout_truncates_to_u32_and_zeroes_on_error() -> None:
    assert proto.encode_stat_v1(FIELDS) == struct.pack("<4sIII", b"STAT", 0o100644, 7, 1_700_000_002)
    assert proto.encode_stat_v1(None) == b"STAT" + bytes(12)


def test_stat_v2_layout() -> None:
    raw = proto.encode_stat_v2(proto.ID_STAT_V2, FIELDS)
    assert len(raw) == 72
    ident, error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime = struct.unpack("<4sIQQIIIIQqqq", raw)
    assert (ident, error, dev, ino, mode, size, ctime) == (b"STA2", 0, 0x801, 1234, 0o100644, 5 << 32 | 7, -3)
    failed = proto.encode_stat_v2(proto.ID_LSTAT_V2, None, 2)
    assert failed[:8] == b"LST2\x02\x00\x00\x00" and failed[8:] == bytes(64)


def test_dent_layouts() -> None:
    v1 = proto.encode_dent_v1(b"file", FIELDS)
    assert v1 == struct.pack("<4sIIII", b"DENT", 0o100644, 7, 1_700_000_002, 4) + b"file"
    v2 = proto.encode_dent_v2(b"f", FIELDS)
    assert len(v2) == 76 + 1 and v2[:4] == b"DNT2" and v2[-5:] == b"\x01\x00\x00\x00f"
    assert proto.encode_dent_done(False) == b"DONE" + bytes(16)
    assert proto.encode_dent_done(True) == b"DONE" + bytes(72)


def test_status_messages() -> None:
    assert proto.encode_sync_okay() == b"OKAY\0\0\0\0"
    assert proto.encode_sync_fail("open failed: No such file or directory") == (
        b"FAIL" + struct.pack("<I", 38) + b"open failed: No such file or directory"
    )
    assert proto.encode_sync_data(b"xyz") == b"DATA\x03\x00\x00\x00xyz"
    assert proto.encode_sync_done(1_700_000_000) == b"DONE" + struct.pack("<I", 1_700_000_000)
    assert proto.encode_sync_request(b"RECV", b"/a") == b"RECV\x02\x00\x00\x00/a"
    assert proto.sync_id_u32(b"QUIT") == 0x54495551


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("33188", 33188),
        ("0644", 0o644),
        ("0x1ff", 0x1FF),
        ("  42abc", 42),
        ("0", 0),
        ("", 0),
        ("abc", 0),
        ("089", 0),  # octal stops at the 8, like strtoul
        ("-1", 0xFFFFFFFFFFFFFFFF),
    ],
)
def test_parse_c_ulong_matches_strtoul(text: str, value: int) -> None:
    assert proto.parse_c_ulong(text) == value


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_parse_c_ulong_round_trips(n: int) -> None:
    assert proto.parse_c_ulong(str(n)) == n
    assert proto.parse_c_ulong(hex(n)) == n
    assert proto.parse_c_ulong("0" + oct(n)[2:]) == n


def test_send_v1_spec_splits_at_last_comma() -> None:
    assert proto.parse_send_v1_spec(b"/data/a,b.txt,33188") == (b"/data/a,b.txt", 33188)
    assert proto.parse_send_v1_spec(b"/x,0755") == (b"/x", 0o755)
    assert proto.parse_send_v1_spec(b"/no-comma") is None


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(0o100644, 0o666), (0o755, 0o777), (0o600, 0o666), (0o400, 0o444), (0o640, 0o666), (0, 0), (0o4755, 0o777)],
)
def test_android_push_mode_copies_user_bits(mode: int, expected: int) -> None:
    assert proto.android_push_mode(mode) == expected


def test_symlink_mode() -> None:
    assert proto.is_symlink_mode(0o120777)
    assert not proto.is_symlink_mode(0o100644)


# --- adbd helpers ---------------------------------------------------------------------


def test_env_file_parsing() -> None:
    text = (
        "# device clock\n"
        "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1\n"
        'FAKETIME=@2024-01-02 03:04:05\n'
        "export TZ=UTC\n"
        "\n"
        "  SPACED = ok\n"
        "bad line\n"
        "1BAD=x\n"
        "EMPTY=\n"
        "NUL=a\0b\n"
    )
    assert adbd.parse_env_lines(text) == {
        "LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "FAKETIME": "@2024-01-02 03:04:05",
        "TZ": "UTC",
        "SPACED": " ok",
        "EMPTY": "",
    }


@pytest.mark.parametrize(("returncode", "status"), [(0, 0), (3, 3), (255, 255), (-9, 137), (-1, 129)])
def test_exit_status_like_adbd(returncode: int, status: int) -> None:
    assert adbd.exit_status(returncode) == status
