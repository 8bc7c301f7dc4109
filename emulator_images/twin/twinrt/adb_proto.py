"""Pure codecs for the ADB wire protocols the twin's adbd speaks.

Kept free of I/O and asyncio so every byte layout can be unit- and
property-tested on its own.  The layouts follow AOSP's adb sources
(``protocol.txt``, ``SYNC.TXT``, ``shell_protocol.h``,
``file_sync_protocol.h`` and ``daemon/services.cpp``); where adbd's behaviour
is subtle (mode bits on push, ``strtoul`` parsing, shell service arguments)
the helper here reproduces it so the twin is indistinguishable from a real
device over the wire.

Standard library only: this module runs inside the twin on Debian's python3.
"""

from __future__ import annotations

import errno
import re
import stat as stat_mod
import struct
from typing import NamedTuple

# --- transport -------------------------------------------------------------

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453

COMMAND_NAMES = {
    A_SYNC: "SYNC",
    A_CNXN: "CNXN",
    A_AUTH: "AUTH",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
    A_STLS: "STLS",
}

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001

MAX_PAYLOAD_V1 = 4 * 1024
MAX_PAYLOAD = 1024 * 1024

HEADER = struct.Struct("<6I")
HEADER_SIZE = HEADER.size  # 24
_U32 = 0xFFFFFFFF


class ProtocolError(Exception):
    """Bytes from the peer that no conforming ADB implementation would send.

    The only exception the parsers in this module raise for bad input; the
    daemon answers it by dropping the connection (or the stream).
    """


class Packet(NamedTuple):
    command: int
    arg0: int
    arg1: int
    payload: bytes

    @property
    def name(self) -> str:
        return command_name(self.command)


def command_name(command: int) -> str:
    return COMMAND_NAMES.get(command, f"0x{command:08x}")


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The legacy ``data_check`` field: the unsigned sum of the payload bytes."""
    return sum(data) & _U32


def encode_header(
    command: int, arg0: int, arg1: int, payload: bytes | bytearray | memoryview, *, with_checksum: bool
) -> bytes:
    """The 24-byte message header; ``with_checksum`` only for protocol < 0x01000001."""
    check = checksum(payload) if with_checksum else 0
    return HEADER.pack(command, arg0 & _U32, arg1 & _U32, len(payload), check, command ^ _U32)


def encode_packet(
    command: int, arg0: int, arg1: int, payload: bytes = b"", *, with_checksum: bool = False
) -> bytes:
    return encode_header(command, arg0, arg1, payload, with_checksum=with_checksum) + payload


class PacketParser:
    """Incremental decoder: feed it whatever the socket returned, get packets.

    Validates the magic and bounds the payload length so a hostile or broken
    peer can never make it buffer more than ``max_payload`` plus one read.
    The ``data_check`` field is ignored, as adbd has done since protocol
    version 0x01000001 (hosts still fill it in on CNXN; nobody checks it).
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        while len(buf) >= HEADER_SIZE:
            command, arg0, arg1, length, _check, magic = HEADER.unpack_from(buf)
            if magic != command ^ _U32:
                raise ProtocolError(f"bad magic 0x{magic:08x} for command 0x{command:08x}")
            if length > self.max_payload:
                raise ProtocolError(
                    f"{command_name(command)} payload of {length} bytes exceeds {self.max_payload}"
                )
            end = HEADER_SIZE + length
            if len(buf) < end:
                break
            payload = bytes(buf[HEADER_SIZE:end])
            del buf[:end]
            out.append(Packet(command, arg0, arg1, payload))
        return out


def build_banner(props: dict[str, str], features: list[str] | tuple[str, ...], kind: str = "device") -> bytes:
    """The CNXN payload adbd sends: ``device::k=v;k=v;features=a,b``.

    Same shape as adbd's ``get_connection_string``: every property ends with
    ``;``, the feature list comes last, and there is no NUL terminator.
    """
    parts = [f"{key}={value};" for key, value in props.items()]
    parts.append("features=" + ",".join(features))
    return f"{kind}::{''.join(parts)}".encode("utf-8")


def parse_banner(payload: bytes) -> tuple[str, dict[str, str], list[str]]:
    """Inverse of :func:`build_banner` (used by tests and for logging the host)."""
    text = payload.split(b"\0", 1)[0].decode("utf-8", errors="replace")
    kind, _, rest = text.partition(":")
    _, _, props_text = rest.partition(":")
    props: dict[str, str] = {}
    features: list[str] = []
    for item in props_text.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key == "features":
            features = [f for f in value.split(",") if f]
        else:
            props[key] = value
    return kind, props, features


def decode_service_name(payload: bytes) -> str:
    """OPEN payloads are NUL-terminated service names; tolerate missing NUL."""
    return payload.split(b"\0", 1)[0].decode("utf-8", errors="surrogateescape")


# --- shell protocol (shell_v2) --------------------------------------------

SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4
SHELL_WINDOW_SIZE = 5

SHELL_HEADER = struct.Struct("<BI")
_SHELL_STREAM_IDS = frozenset({SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR})
SHELL_MAX_CONTROL = 64 * 1024


def encode_shell_packet(packet_id: int, data: bytes = b"") -> bytes:
    return SHELL_HEADER.pack(packet_id, len(data)) + data


class ShellPacketParser:
    """Incremental shell-protocol decoder.

    Data packets (stdin/stdout/stderr) are streamed out piecewise as bytes
    arrive, so a peer announcing a 4 GiB packet costs no memory; several
    pieces of one packet come out with the same id.  Control packets (exit,
    close-stdin, window-size, unknown ids) are returned whole and may be at
    most ``SHELL_MAX_CONTROL`` bytes, otherwise :class:`ProtocolError`.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._stream_id: int | None = None
        self._stream_left = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        view = memoryview(data)
        while True:
            if self._stream_left:
                assert self._stream_id is not None
                if not view:
                    break
                piece = view[: self._stream_left]
                view = view[len(piece) :]
                self._stream_left -= len(piece)
                out.append((self._stream_id, bytes(piece)))
                continue
            self._buf += view
            view = memoryview(b"")
            if len(self._buf) < SHELL_HEADER.size:
                break
            packet_id, length = SHELL_HEADER.unpack_from(self._buf)
            if packet_id in _SHELL_STREAM_IDS:
                del self._buf[: SHELL_HEADER.size]
                rest = bytes(self._buf)
                self._buf.clear()
                self._stream_id, self._stream_left = packet_id, length
                view = memoryview(rest)
                continue
            if length > SHELL_MAX_CONTROL:
                raise ProtocolError(f"shell control packet {packet_id} of {length} bytes")
            end = SHELL_HEADER.size + length
            if len(self._buf) < end:
                break
            out.append((packet_id, bytes(self._buf[SHELL_HEADER.size : end])))
            rest = bytes(self._buf[end:])
            self._buf.clear()
            view = memoryview(rest)
        return out


def parse_window_size(data: bytes) -> tuple[int, int, int, int] | None:
    """``"rows x cols, xpixel x ypixel"`` as the host's ``%dx%d,%dx%d`` (+NUL)."""
    text = data.split(b"\0", 1)[0].decode("ascii", errors="replace")
    m = re.match(r"\s*([-+]?\d+)x([-+]?\d+),([-+]?\d+)x([-+]?\d+)", text)
    if not m:
        return None
    rows, cols, xpix, ypix = (max(0, min(0xFFFF, int(g))) for g in m.groups())
    return rows, cols, xpix, ypix


class ShellSpec(NamedTuple):
    """What ``shell[,arg...]:[command]`` asks for, decided as adbd decides it."""

    command: str
    pty: bool
    protocol_v2: bool
    term: str


def parse_shell_service(rest: str) -> ShellSpec | None:
    """Parse the part after ``shell`` in a service name.

    Mirrors ``ShellService`` in adbd: PTY for an interactive session, raw for
    a command, no shell protocol unless ``v2``, ``$TERM`` defaults to
    ``dumb``; unknown arguments are ignored for forward compatibility.
    Returns ``None`` when there is no ``:`` (adbd refuses such a service).
    """
    args, sep, command = rest.partition(":")
    if not sep:
        return None
    pty = command == ""
    v2 = False
    term = "dumb"
    for arg in args.split(","):
        if arg == "raw":
            pty = False
        elif arg == "pty":
            pty = True
        elif arg == "v2":
            v2 = True
        elif arg.startswith("TERM="):
            term = arg[len("TERM=") :]
    return ShellSpec(command=command, pty=pty, protocol_v2=v2, term=term)


# --- file sync protocol -----------------------------------------------------

SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024

ID_LSTAT_V1 = b"STAT"
ID_STAT_V2 = b"STA2"
ID_LSTAT_V2 = b"LST2"
ID_LIST_V1 = b"LIST"
ID_LIST_V2 = b"LIS2"
ID_DENT_V1 = b"DENT"
ID_DENT_V2 = b"DNT2"
ID_SEND_V1 = b"SEND"
ID_SEND_V2 = b"SND2"
ID_RECV_V1 = b"RECV"
ID_RECV_V2 = b"RCV2"
ID_DONE = b"DONE"
ID_DATA = b"DATA"
ID_OKAY = b"OKAY"
ID_FAIL = b"FAIL"
ID_QUIT = b"QUIT"

SYNC_FLAG_BROTLI = 1
SYNC_FLAG_LZ4 = 2
SYNC_FLAG_ZSTD = 4
SYNC_FLAG_DRY_RUN = 0x80000000

SYNC_REQUEST = struct.Struct("<4sI")  # id, path length / data size / mtime / msglen
SYNC_STAT_V1 = struct.Struct("<4sIII")  # id, mode, size, mtime
SYNC_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")  # id, error, dev, ino, mode, nlink, uid, gid, size, a/m/ctime
SYNC_DENT_V1 = struct.Struct("<4sIIII")  # id, mode, size, mtime, namelen
SYNC_DENT_V2 = struct.Struct("<4sIQQIIIIQqqqI")  # stat_v2 fields + namelen
SYNC_SEND_V2_SETUP = struct.Struct("<4sII")  # id, mode, flags
SYNC_RECV_V2_SETUP = struct.Struct("<4sI")  # id, flags


def sync_id_name(ident: bytes) -> str:
    return ident.decode("ascii", errors="replace")


def sync_id_u32(ident: bytes) -> int:
    """adbd prints unknown ids as the little-endian u32 (``%08x``)."""
    return int.from_bytes(ident, "little")


def encode_sync_request(ident: bytes, path: bytes) -> bytes:
    return SYNC_REQUEST.pack(ident, len(path)) + path


def encode_sync_data(data: bytes) -> bytes:
    return SYNC_REQUEST.pack(ID_DATA, len(data)) + data


def encode_sync_done(value: int = 0) -> bytes:
    return SYNC_REQUEST.pack(ID_DONE, value & _U32)


def encode_sync_okay() -> bytes:
    return SYNC_REQUEST.pack(ID_OKAY, 0)


def encode_sync_fail(message: str) -> bytes:
    raw = message.encode("utf-8", errors="surrogateescape")
    return SYNC_REQUEST.pack(ID_FAIL, len(raw)) + raw


def _u32(value: int) -> int:
    return value & _U32


def _u64(value: int) -> int:
    return value & 0xFFFFFFFFFFFFFFFF


def _i64(value: int) -> int:
    return max(-(1 << 63), min((1 << 63) - 1, value))


class StatFields(NamedTuple):
    """The ``struct stat`` fields the sync protocol carries (``os.stat_result`` fits)."""

    st_dev: int
    st_ino: int
    st_mode: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_atime: int
    st_mtime: int
    st_ctime: int


def stat_fields(st: object) -> StatFields:
    """Pick the integer fields out of an ``os.stat_result``-like object."""
    return StatFields(
        int(getattr(st, "st_dev")),
        int(getattr(st, "st_ino")),
        int(getattr(st, "st_mode")),
        int(getattr(st, "st_nlink")),
        int(getattr(st, "st_uid")),
        int(getattr(st, "st_gid")),
        int(getattr(st, "st_size")),
        int(getattr(st, "st_atime")),
        int(getattr(st, "st_mtime")),
        int(getattr(st, "st_ctime")),
    )


def encode_stat_v1(st: StatFields | None) -> bytes:
    """``STAT`` reply; v1 has no error field, a failed lstat is all zeroes."""
    if st is None:
        return SYNC_STAT_V1.pack(ID_LSTAT_V1, 0, 0, 0)
    return SYNC_STAT_V1.pack(ID_LSTAT_V1, _u32(st.st_mode), _u32(st.st_size), _u32(st.st_mtime))


def _stat_v2_fields(st: StatFields) -> tuple[int, ...]:
    return (
        _u64(st.st_dev),
        _u64(st.st_ino),
        _u32(st.st_mode),
        _u32(st.st_nlink),
        _u32(st.st_uid),
        _u32(st.st_gid),
        _u64(st.st_size),
        _i64(st.st_atime),
        _i64(st.st_mtime),
        _i64(st.st_ctime),
    )


_ZERO_V2 = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def encode_stat_v2(ident: bytes, st: StatFields | None, error: int = 0) -> bytes:
    """``STA2``/``LST2`` reply: on error only ``error`` (a wire errno) is set."""
    fields = _ZERO_V2 if st is None else _stat_v2_fields(st)
    return SYNC_STAT_V2.pack(ident, _u32(error), *fields)


def encode_dent_v1(name: bytes, st: StatFields) -> bytes:
    return SYNC_DENT_V1.pack(ID_DENT_V1, _u32(st.st_mode), _u32(st.st_size), _u32(st.st_mtime), len(name)) + name


def encode_dent_v2(name: bytes, st: StatFields | None, error: int = 0) -> bytes:
    fields = _ZERO_V2 if st is None else _stat_v2_fields(st)
    return SYNC_DENT_V2.pack(ID_DENT_V2, _u32(error), *fields, len(name)) + name


def encode_dent_done(v2: bool) -> bytes:
    """``DONE`` closing a listing is sized like a dent (adbd memsets the struct)."""
    if v2:
        return SYNC_DENT_V2.pack(ID_DONE, 0, *_ZERO_V2, 0)
    return SYNC_DENT_V1.pack(ID_DONE, 0, 0, 0, 0)


# Linux errno values are the wire values (adb's errno_to_wire is the identity
# on Linux); named here so the mapping is explicit if that ever changes.
def errno_to_wire(err: int) -> int:
    return err if 0 <= err <= 0xFFFFFFFF else errno.EIO


def parse_c_ulong(text: bytes | str) -> int:
    """``strtoul(text, nullptr, 0)``: optional space and sign, 0x hex, 0 octal.

    Parsing stops at the first invalid character; no digits gives 0, as in C.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    m = re.match(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return 0
    sign, digits = m.groups()
    if digits[:2] in ("0x", "0X"):
        value = int(digits[2:], 16)
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits, 10)
    if sign == "-":
        value = -value
    return value & 0xFFFFFFFFFFFFFFFF


def parse_send_v1_spec(spec: bytes) -> tuple[bytes, int] | None:
    """Split ``SEND``'s ``/some/path,33188`` at the *last* comma; ``None`` if none."""
    comma = spec.rfind(b",")
    if comma < 0:
        return None
    return spec[:comma], parse_c_ulong(spec[comma + 1 :]) & _U32


def android_push_mode(mode: int) -> int:
    """Permission bits adbd gives a pushed regular file.

    adbd keeps the permission bits the host sent and copies the user bits to
    group and other (``mode |= (mode >> 3) & 070; mode |= (mode >> 3) & 07``),
    which is why pushed files show up as ``-rw-rw-rw-`` on a device.
    """
    mode &= 0o777
    mode |= (mode >> 3) & 0o070
    mode |= (mode >> 3) & 0o007
    return mode


def is_symlink_mode(mode: int) -> bool:
    return stat_mod.S_ISLNK(mode & 0xFFFF)
