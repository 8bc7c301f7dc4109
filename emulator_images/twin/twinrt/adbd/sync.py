"""The ``sync:`` service: ``adb push``/``pull``/``ls``/``stat``.

:class:`SyncSession` serves STAT/LST2/STA2, LIST/LIS2, SEND/SND2 and
RECV/RCV2 requests (v1 and v2) on one stream; :class:`PushTarget` writes a
pushed file through a temporary name and gives it the mode bits and mtime
AOSP's adbd gives it.  Errors reach the host as ``FAIL`` with adbd's wording.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
import tempfile

from .. import adb_proto as proto
from ..adb_proto import SYNC_REQUEST
from .process import _fd_ready, read_fd, write_fd
from .transport import ByteReader, Stream

log = logging.getLogger("twinrt.adbd")

LISTING_BATCH = 64 * 1024


class SyncError(Exception):
    """A sync request that fails with a ``FAIL`` message (adbd's wording)."""


def _strerror(exc: OSError) -> str:
    return exc.strerror or os.strerror(exc.errno or errno.EIO)


def _mkdirs(path: bytes) -> None:
    """``secure_mkdirs``: create missing parents with mode 0775."""
    current = b""
    for part in path.split(b"/"):
        if not part:
            continue
        current += b"/" + part
        try:
            os.mkdir(current, 0o775)
        except FileExistsError:
            continue
        try:
            os.chmod(current, 0o775)
        except OSError:
            pass


class PushTarget:
    """Where pushed bytes go.

    Regular files (and symlinks being replaced) are written to a temporary
    file next to the target and renamed over it on DONE, so a reader never
    sees half a file and a failed push leaves the old one intact.  Device
    nodes and FIFOs are written in place, as adbd does.
    """

    def __init__(self, path: bytes, fd: int, tmp: bytes | None, regular: bool) -> None:
        self.path = path
        self.fd = fd
        self.tmp = tmp
        self.regular = regular
        self._open = True

    @classmethod
    def open(cls, path: bytes, perm: int) -> PushTarget:
        if path.endswith(b"/"):
            raise SyncError("couldn't create file: Is a directory")
        try:
            st: os.stat_result | None = os.lstat(path)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise SyncError("couldn't create file: Is a directory")
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError as exc:
                raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
            return cls(path, fd, None, regular=False)
        parent = os.path.dirname(path) or b"/"
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=b".adbd-push-")
        except PermissionError as exc:
            if st is None:
                raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
            # Directory not writable but the file may be: overwrite in place, like adbd.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            except OSError as exc2:
                raise SyncError(f"couldn't create file: {_strerror(exc2)}") from exc2
            return cls(path, fd, None, regular=True)
        except FileNotFoundError:
            try:
                _mkdirs(parent)
            except OSError as exc:
                raise SyncError(f"secure_mkdirs failed: {_strerror(exc)}") from exc
            try:
                fd, tmp = tempfile.mkstemp(dir=parent, prefix=b".adbd-push-")
            except OSError as exc:
                raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
        except OSError as exc:
            raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
        try:
            os.fchmod(fd, perm)
        except OSError:
            pass
        return cls(path, fd, tmp, regular=True)

    async def write(self, data: memoryview) -> None:
        if not self.regular:
            await write_fd(self.fd, data)
            return
        while data:
            data = data[os.write(self.fd, data) :]

    def commit(self, mtime: int) -> None:
        self._close()
        if self.tmp is not None:
            try:
                os.replace(self.tmp, self.path)
            except OSError as exc:
                raise SyncError(f"couldn't create file: {_strerror(exc)}") from exc
            self.tmp = None
        try:
            os.utime(self.path, (mtime, mtime), follow_symlinks=False)
        except OSError:
            pass

    def abort(self) -> None:
        self._close()
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None

    def _close(self) -> None:
        if self._open:
            self._open = False
            os.close(self.fd)


class SyncSession:
    """The ``sync:`` service (AOSP ``file_sync_service.cpp``), v1 and v2.

    Paths are the device's real absolute paths (relative ones are taken
    from ``/``, adbd's working directory).  A failure is reported with
    ``FAIL`` and ends the session, exactly like adbd.
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.reader = ByteReader(stream)

    async def run(self) -> None:
        while await self._handle_one():
            pass

    async def _fail(self, message: str) -> None:
        log.info("%r: sync FAIL: %s", self.stream, message)
        await self.stream.write(proto.encode_sync_fail(message))

    async def _handle_one(self) -> bool:
        ident, length = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
        if length > proto.SYNC_PATH_MAX:
            await self._fail("path too long")
            return False
        raw_path = (await self.reader.readexactly(length)).split(b"\0", 1)[0]
        path = raw_path if raw_path.startswith(b"/") else b"/" + raw_path
        if ident == proto.ID_LSTAT_V1:
            await self._lstat_v1(path)
        elif ident in (proto.ID_STAT_V2, proto.ID_LSTAT_V2):
            await self._stat_v2(ident, path)
        elif ident in (proto.ID_LIST_V1, proto.ID_LIST_V2):
            await self._list(path, v2=ident == proto.ID_LIST_V2)
        elif ident == proto.ID_SEND_V1:
            parsed = proto.parse_send_v1_spec(path)
            if parsed is None:
                await self._fail("missing , in ID_SEND_V1")
                return False
            return await self._send(parsed[0], parsed[1], dry_run=False)
        elif ident == proto.ID_SEND_V2:
            return await self._send_v2(path)
        elif ident == proto.ID_RECV_V1:
            return await self._recv(path)
        elif ident == proto.ID_RECV_V2:
            return await self._recv_v2(path)
        elif ident == proto.ID_QUIT:
            return False
        else:
            await self._fail(f"unknown command {proto.sync_id_u32(ident):08x}")
            return False
        return True

    # stat / list ------------------------------------------------------------------
    async def _lstat_v1(self, path: bytes) -> None:
        try:
            fields: proto.StatFields | None = proto.stat_fields(os.lstat(path))
        except (OSError, ValueError):
            fields = None
        await self.stream.write(proto.encode_stat_v1(fields))

    async def _stat_v2(self, ident: bytes, path: bytes) -> None:
        try:
            st = os.stat(path) if ident == proto.ID_STAT_V2 else os.lstat(path)
        except OSError as exc:
            reply = proto.encode_stat_v2(ident, None, proto.errno_to_wire(exc.errno or errno.EIO))
        else:
            reply = proto.encode_stat_v2(ident, proto.stat_fields(st))
        await self.stream.write(reply)

    async def _list(self, path: bytes, *, v2: bool) -> None:
        try:
            names = [b".", b".."] + os.listdir(path)
        except OSError:
            names = []
        batch = bytearray()
        for name in names:
            try:
                st = os.lstat(path + b"/" + name)
            except OSError as exc:
                if v2:
                    batch += proto.encode_dent_v2(name, None, exc.errno or errno.EIO)
                continue
            fields = proto.stat_fields(st)
            batch += proto.encode_dent_v2(name, fields) if v2 else proto.encode_dent_v1(name, fields)
            if len(batch) >= LISTING_BATCH:
                await self.stream.write(batch)
                batch = bytearray()
        batch += proto.encode_dent_done(v2)
        await self.stream.write(batch)

    # send ---------------------------------------------------------------------------
    async def _send_v2(self, path: bytes) -> bool:
        _ident, mode, flags = proto.SYNC_SEND_V2_SETUP.unpack(
            await self.reader.readexactly(proto.SYNC_SEND_V2_SETUP.size)
        )
        dry_run = bool(flags & proto.SYNC_FLAG_DRY_RUN)
        flags &= ~proto.SYNC_FLAG_DRY_RUN
        if flags:  # compression was never advertised
            await self._fail(f"unknown flags: {flags}")
            return False
        return await self._send(path, mode, dry_run=dry_run)

    async def _send(self, path: bytes, mode: int, *, dry_run: bool) -> bool:
        log.info("%r: push %s mode %o%s", self.stream, os.fsdecode(path), mode, " (dry run)" if dry_run else "")
        if proto.is_symlink_mode(mode):
            return await self._send_link(path, dry_run=dry_run)
        target: PushTarget | None = None
        if not dry_run:
            try:
                target = PushTarget.open(path, proto.android_push_mode(mode))
            except SyncError as exc:
                await self._fail(str(exc))
                await self._discard_until_done()
                return False
        try:
            while True:
                ident, size = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
                if ident == proto.ID_DONE:
                    mtime = size
                    break
                if ident != proto.ID_DATA:
                    await self._fail("invalid data message")
                    return False
                if target is None:
                    await self.reader.skip(size)
                    continue
                error = await self._copy_to(target, size)
                if error is not None:
                    await self._fail(f"write failed: {_strerror(error)}")
                    await self._discard_until_done()
                    return False
            if target is not None:
                try:
                    target.commit(mtime)
                except SyncError as exc:
                    await self._fail(str(exc))
                    return False
            await self.stream.write(proto.encode_sync_okay())
            return True
        finally:
            if target is not None:
                target.abort()

    async def _copy_to(self, target: PushTarget, size: int) -> OSError | None:
        """Stream ``size`` bytes of a DATA chunk into the file; consume all even on error."""
        error: OSError | None = None
        while size:
            piece = await self.reader.read_some(size)
            size -= len(piece)
            if error is None:
                try:
                    await target.write(piece)
                except OSError as exc:
                    error = exc
        return error

    async def _discard_until_done(self) -> None:
        """adbd keeps reading DATA after a failure until DONE so the host sees FAIL."""
        while True:
            ident, size = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
            if ident != proto.ID_DATA or size > proto.SYNC_DATA_MAX:
                return
            await self.reader.skip(size)

    async def _send_link(self, path: bytes, *, dry_run: bool) -> bool:
        ident, size = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
        if ident != proto.ID_DATA:
            await self._fail("invalid data message: expected ID_DATA")
            return False
        if size > proto.SYNC_DATA_MAX:
            await self._fail("oversize data message")
            return False
        link_target = (await self.reader.readexactly(size)).split(b"\0", 1)[0]
        if not dry_run:
            try:
                current: bytes | None = os.readlink(path)
            except OSError:
                current = None
            if current != link_target:
                try:
                    os.unlink(path)
                except OSError:
                    pass
                try:
                    try:
                        os.symlink(link_target, path)
                    except FileNotFoundError:
                        try:
                            _mkdirs(os.path.dirname(path) or b"/")
                        except OSError as exc:
                            raise SyncError(f"secure_mkdirs failed: {_strerror(exc)}") from exc
                        os.symlink(link_target, path)
                except OSError as exc:
                    await self._fail(f"symlink failed: {_strerror(exc)}")
                    return False
                except SyncError as exc:
                    await self._fail(str(exc))
                    return False
        ident, mtime = SYNC_REQUEST.unpack(await self.reader.readexactly(SYNC_REQUEST.size))
        if ident != proto.ID_DONE:
            await self._fail("invalid data message: expected ID_DONE")
            return False
        if not dry_run:
            try:
                os.utime(path, (mtime, mtime), follow_symlinks=False)
            except OSError:
                pass
        await self.stream.write(proto.encode_sync_okay())
        return True

    # recv ---------------------------------------------------------------------------
    async def _recv_v2(self, path: bytes) -> bool:
        _ident, flags = proto.SYNC_RECV_V2_SETUP.unpack(await self.reader.readexactly(proto.SYNC_RECV_V2_SETUP.size))
        if flags:
            await self._fail(f"unknown flags: {flags}")
            return False
        return await self._recv(path)

    async def _recv(self, path: bytes) -> bool:
        log.info("%r: pull %s", self.stream, os.fsdecode(path))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            await self._fail(f"open failed: {_strerror(exc)}")
            return False
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            header = struct.Struct("<4sI")
            while True:
                try:
                    data = os.read(fd, proto.SYNC_DATA_MAX) if regular else await read_fd(fd, proto.SYNC_DATA_MAX)
                except BlockingIOError:
                    await _fd_ready(fd, write=False)
                    continue
                except OSError as exc:
                    await self._fail(f"read failed: {_strerror(exc)}")
                    return False
                if not data:
                    break
                await self.stream.write(header.pack(proto.ID_DATA, len(data)), data)
            await self.stream.write(proto.encode_sync_done())
            return True
        finally:
            os.close(fd)
