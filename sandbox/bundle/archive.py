"""Member-by-member extraction of tar, tar.gz and zip bundles.

Nothing here calls ``extractall``: each member is inspected and handed to a
``Stager``, which applies the name rules, the limits and the no-follow writes.
The format is decided by magic bytes, never by the file name.

Bomb defences, in order: declared sizes are checked before a member is read;
actual bytes are counted while copying and the copy aborts the moment a limit
is passed; and tar metadata (pax and GNU long-name headers, which ``tarfile``
would otherwise buffer whole in memory) is capped by :class:`_MeteredStream`,
which sits *after* gzip decompression so it counts real bytes.
"""

from __future__ import annotations

import gzip
import stat
import tarfile
import zipfile
from typing import BinaryIO, Literal, Protocol, Self

from sandbox.errors import BundleError

from .paths import display
from .stage import Stager, is_special

ArchiveFormat = Literal["tar", "tar.gz", "zip"]

MAX_METADATA_BYTES = 1024 * 1024  # headers of one member (or trailing padding)
METADATA_BYTES_PER_MEMBER = 8 * 1024  # whole-archive header budget, per allowed member
MAX_LINK_TARGET_BYTES = 4096
_HEAD_BYTES = 512
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_UNSUPPORTED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!", "rar"),
)


def detect_format(head: bytes, name: str) -> ArchiveFormat:
    """Name the archive format from the first bytes of the file ``name``, or raise."""
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    for magic, kind in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            raise BundleError(
                f"{kind} archives are not supported",
                path=name,
                fix="pack the bundle as .tar, .tar.gz/.tgz or .zip",
            )
    raise BundleError(
        "unrecognised bundle format (the content is not a tar, gzip or zip archive)",
        path=name,
        fix="pass a bundle directory, or a .tar, .tar.gz/.tgz or .zip of one",
    )


def read_head(fileobj: BinaryIO) -> bytes:
    """Read the bytes :func:`detect_format` needs and rewind."""
    head = fileobj.read(_HEAD_BYTES)
    fileobj.seek(0)
    return head


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _MeteredStream:
    """A read-only stream that bounds the metadata ``tarfile`` may buffer.

    Bytes read while :attr:`in_data` is false are headers.  More than
    ``MAX_METADATA_BYTES`` of them for one member (a giant pax or long-name
    header, which ``tarfile`` would hold in memory whole) or more than
    ``total_budget`` over the whole archive is a metadata bomb.  Data bytes are
    bounded by the ``Stager`` instead.
    """

    def __init__(self, raw: _Readable, total_budget: int) -> None:
        self._raw = raw
        self.in_data = False
        self._member = 0
        self._total = 0
        self._total_budget = total_budget

    def next_member(self) -> None:
        """The previous member is done; its headers no longer count against the per-member cap."""
        self._member = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 64 * 1024
        chunk = self._raw.read(size)
        if not self.in_data:
            self._member += len(chunk)
            self._total += len(chunk)
            if self._member > MAX_METADATA_BYTES or self._total > self._total_budget:
                raise BundleError("tar header data exceeds the limit (metadata bomb)")
        return chunk


class _StrictTarInfo(tarfile.TarInfo):
    """Makes a corrupt or truncated header an error instead of the end of the archive.

    ``tarfile`` quietly stops at the first bad header after the first member,
    which would load a bundle with its tail cut off.  Only the all-zero
    end-of-archive block ends the walk.
    """

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        if len(buf) == tarfile.BLOCKSIZE and buf.count(0) == tarfile.BLOCKSIZE:
            return super().frombuf(buf, encoding, errors)  # the end marker: tarfile stops
        try:
            return super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as exc:
            reason = "archive is truncated" if len(buf) < tarfile.BLOCKSIZE else f"corrupt tar header ({exc})"
            raise BundleError(reason) from None


def extract_tar(fileobj: BinaryIO, fmt: ArchiveFormat, stager: Stager) -> None:
    """Stream a (gzipped) tar through ``stager`` one member at a time.

    After the end-of-archive marker the rest of the stream is drained (as
    metadata, so at most ``MAX_METADATA_BYTES``) so that gzip verifies its
    CRC and length trailer.
    """
    raw: _Readable = gzip.GzipFile(fileobj=fileobj, mode="rb") if fmt == "tar.gz" else fileobj
    budget = MAX_METADATA_BYTES + stager.limits.max_files * METADATA_BYTES_PER_MEMBER
    stream = _MeteredStream(raw, budget)
    with tarfile.open(  # type: ignore[call-overload]
        fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape", tarinfo=_StrictTarInfo
    ) as tar:
        for member in tar:
            _tar_member(tar, member, stream, stager)
            stream.next_member()
    while stream.read(64 * 1024):
        pass


def _tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, stream: _MeteredStream, stager: Stager) -> None:
    name = member.name
    if member.isdir():
        stager.add_dir(name)
    elif member.issym():
        stager.add_symlink(name, member.linkname)
    elif member.islnk():
        stager.add_hardlink(name, member.linkname)
    elif member.issparse():
        raise BundleError("sparse files are not supported", path=display(name))
    elif member.isreg():
        data = tar.extractfile(member)
        if data is None:  # pragma: no cover - isreg() members always have data
            raise BundleError("member has no data", path=display(name))
        stream.in_data = True
        try:
            stager.add_file(name, member.size, data.read, executable=bool(member.mode & 0o100))
        finally:
            stream.in_data = False
    elif member.ischr() or member.isblk() or member.isfifo():
        raise BundleError("device files and fifos are not allowed", path=display(name))
    else:
        raise BundleError(f"unsupported tar member type {member.type!r}", path=display(name))


def extract_zip(fileobj: BinaryIO, stager: Stager) -> None:
    """Walk a zip's central directory through ``stager`` one entry at a time.

    Raw names (``orig_filename``) are checked, because ``zipfile`` silently
    truncates at NUL; declared sizes of all entries are summed up front.
    """
    with zipfile.ZipFile(fileobj) as archive:
        infos = archive.infolist()
        if len(infos) > stager.limits.max_files:
            raise BundleError(f"archive has {len(infos)} entries, over the limit of {stager.limits.max_files}")
        declared = 0
        for info in infos:
            declared += info.file_size
            if declared > stager.limits.max_total_bytes:
                raise BundleError(
                    f"archive declares more than the total size limit of {stager.limits.max_total_bytes} bytes",
                    path=display(info.orig_filename),
                )
        for info in infos:
            _zip_entry(archive, info, stager)


def _zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, stager: Stager) -> None:
    name = info.orig_filename
    if info.flag_bits & 0x1:
        raise BundleError("encrypted zip entries are not supported", path=display(name))
    if info.compress_type not in _ZIP_METHODS:
        raise BundleError(
            f"zip compression method {info.compress_type} is not supported (use stored or deflated)",
            path=display(name),
        )
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    file_type = stat.S_IFMT(mode)
    if name.endswith("/") or (file_type and stat.S_ISDIR(mode)):
        stager.add_dir(name)
    elif file_type and stat.S_ISLNK(mode):
        if info.file_size > MAX_LINK_TARGET_BYTES:
            raise BundleError("symlink target is too long", path=display(name))
        with archive.open(info) as data:
            raw_target = data.read(MAX_LINK_TARGET_BYTES + 1)
        try:
            target = raw_target.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError("symlink target is not valid UTF-8", path=display(name)) from None
        stager.add_symlink(name, target)
    elif file_type and is_special(mode):
        raise BundleError("device files and fifos are not allowed", path=display(name))
    else:
        stager.check_declared_size(name, info.file_size)
        with archive.open(info) as data:
            stager.add_file(name, info.file_size, data.read, executable=bool(mode & 0o100))
