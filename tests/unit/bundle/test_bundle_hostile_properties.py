"""Property tests for the hostile shapes the example tests pin only once: bombs of any
size and honesty, nesting at and past every limit (paths and TOML), manifests around
and far beyond the size limit, and invalid UTF-8 wherever a bundle carries text.

Each one must end in ``BundleError`` naming the problem (or load, when it is within
the limits), quickly, and leave nothing behind in the work directory.
"""

from __future__ import annotations

import io
import os
import struct
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_bundle_loader import ZEROS, write_gzip_bomb, write_zip_bomb

from sandbox.bundle import load_bundle, validate_manifest
from sandbox.errors import BundleError
from sandbox.settings import BundleLimits

LIMITS = BundleLimits(
    max_files=100, max_file_bytes=1 << 16, max_total_bytes=1 << 20, max_manifest_bytes=16 * 1024,
    max_depth=12, max_services=8, max_apps=8,
)
MANIFEST = b'[firmware]\nname = "t"\nversion = "1"\n'
MIB = 1 << 20
FAST = 10.0  # seconds; rejecting any bomb here takes well under one on two cores


def examples(count: int) -> settings:
    return settings(
        max_examples=count, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextmanager
def workspace() -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        yield base, base / "work"


def outcome(source: Path, work: Path, limits: BundleLimits = LIMITS) -> BundleError | None:
    """Load ``source``; the error if rejected (after checking nothing was left), else None."""
    try:
        bundle = load_bundle(source, limits, work)
    except BundleError as exc:
        assert list(work.iterdir()) == [], "a rejected bundle left files behind"
        return exc
    bundle.cleanup()
    assert list(work.iterdir()) == []
    return None


def tar_of(members: list[tuple[str, bytes | None]], gz: bool, wrapper: str = "") -> bytes:
    """Members are (name, data) for files or (name, None) for directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:
        for name, data in members:
            info = tarfile.TarInfo(wrapper + name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_of(members: list[tuple[str, bytes | None]], wrapper: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(wrapper + name + ("/" if data is None else ""), data or b"")
    return buf.getvalue()


def raw_zip(entries: list[tuple[bytes, bytes, int]]) -> bytes:
    """A stored zip with raw name bytes and flag bits: (name, data, flags) per entry."""
    out, central = io.BytesIO(), b""
    for name, data, flags in entries:
        offset, crc = out.tell(), zlib.crc32(data)
        out.write(b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, flags, 0, 0, 0x21, crc, len(data), len(data), len(name), 0))
        out.write(name + data)
        central += b"PK\x01\x02" + struct.pack(
            "<HHHHHHIIIHHHHHII", 0x0314, 20, flags, 0, 0, 0x21, crc, len(data), len(data), len(name), 0, 0, 0, 0,
            0o100644 << 16, offset,
        ) + name
    cd = out.tell()
    out.write(central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(entries), len(entries), len(central), cd, 0))
    return out.getvalue()


def write_source(base: Path, fmt: str, members: list[tuple[str, bytes | None]], wrapper: str = "") -> Path:
    if fmt == "directory":
        root = base / "src"
        root.mkdir()
        for name, data in members:
            path = root / name
            if data is None:
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        return root
    source = base / f"bundle.{fmt}"
    if fmt == "zip":
        source.write_bytes(zip_of(members, wrapper))
    else:
        source.write_bytes(tar_of(members, fmt == "tar.gz", wrapper))
    return source


# -- bombs ---------------------------------------------------------------------------------


def _patch_zip_sizes(path: Path, member: str, size: int) -> None:
    """Make the local and central headers of ``member`` declare ``size`` uncompressed bytes."""
    data = bytearray(path.read_bytes())
    raw = member.encode()
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = 0
        while (at := data.find(sig, at)) != -1:
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(raw)] == raw:
                data[at + offset : at + offset + 4] = size.to_bytes(4, "little")
            at += 4
    path.write_bytes(bytes(data))


@examples(25)
@given(
    fmt=st.sampled_from(["tar.gz", "zip"]),
    mib=st.integers(2, 48),
    honesty=st.sampled_from(["truthful", "understated", "overstated"]),
    name=st.sampled_from(["files/zeros", "files/a/b/c/zeros", "apps/x.apk", "firmware.toml", "README"]),
)
def test_bombs_of_any_size_and_honesty_are_rejected_fast(fmt: str, mib: int, honesty: str, name: str) -> None:
    count = mib * len(ZEROS)
    declared = {"truthful": count, "understated": 100, "overstated": count + MIB}[honesty]
    with workspace() as (base, work):
        source = base / f"bomb.{fmt}"
        if fmt == "tar.gz":
            info = tarfile.TarInfo(name)
            info.size = declared
            manifest = tarfile.TarInfo("firmware.toml")
            manifest.size = len(MANIFEST)
            head = manifest.tobuf(tarfile.USTAR_FORMAT) + MANIFEST.ljust(512, b"\0") if name != "firmware.toml" else b""
            write_gzip_bomb(source, head + info.tobuf(tarfile.USTAR_FORMAT), count)
        else:
            write_zip_bomb(source, name, count)
            if honesty != "truthful":
                _patch_zip_sizes(source, name, declared)
        assert source.stat().st_size < count // 100  # a real bomb: over 100x
        started = time.monotonic()
        error = outcome(source, work)
        took = time.monotonic() - started
        assert error is not None, "a bomb loaded"
        event(f"{fmt} {honesty}: {str(error).split(': ', 1)[-1][:50]}")
        assert took < FAST, f"took {took:.1f} s"


@examples(10)
@given(fmt=st.sampled_from(["tar.gz", "zip"]), extra=st.integers(1, 3000))
def test_member_count_bombs_are_rejected(fmt: str, extra: int) -> None:
    members: list[tuple[str, bytes | None]] = [("firmware.toml", MANIFEST)]
    members += [(f"files/e{i}", b"") for i in range(LIMITS.max_files + extra)]
    with workspace() as (base, work):
        error = outcome(write_source(base, fmt, members), work)
        assert error is not None and str(LIMITS.max_files) in str(error)


# -- nesting -------------------------------------------------------------------------------


@examples(60)
@given(
    fmt=st.sampled_from(["directory", "tar", "tar.gz", "zip"]),
    depth=st.integers(2, 4 * LIMITS.max_depth),
    leaf=st.sampled_from(["file", "dir"]),
    wrapped=st.booleans(),
)
def test_nesting_is_accepted_up_to_the_depth_limit_and_refused_past_it(
    fmt: str, depth: int, leaf: str, wrapped: bool
) -> None:
    path = "/".join(["files", *["d"] * (depth - 2), "leaf"])  # ``depth`` components from the bundle root
    members: list[tuple[str, bytes | None]] = [("firmware.toml", MANIFEST), (path, b"x" if leaf == "file" else None)]
    with workspace() as (base, work):
        error = outcome(write_source(base, fmt, members, "pkg/" if wrapped and fmt != "directory" else ""), work)
        if depth <= LIMITS.max_depth:
            assert error is None, str(error)
        else:
            assert error is not None and f"path is nested deeper than the limit of {LIMITS.max_depth}" in str(error)


def nested_toml(shape: str, depth: int) -> str:
    if shape == "array":
        return "x = " + "[" * depth + "]" * depth
    if shape == "inline":
        return "x = " + "{a = " * depth + "1" + "}" * depth
    if shape == "dotted":
        return "x" + ".a" * depth + " = 1"
    if shape == "header":
        return "[x" + ".a" * depth + "]"
    if shape == "array-of-tables":
        return "[[x" + ".a" * depth + "]]"
    if shape == "mixed":
        return "x = " + "[{a = " * depth + "1" + "}]" * depth
    return "[firmware]\nname = " + "[" * depth + '"t"' + "]" * depth  # nested where a string belongs


@examples(80)
@given(
    shape=st.sampled_from(["array", "inline", "dotted", "header", "array-of-tables", "mixed", "in-firmware"]),
    depth=st.integers(1, 50) | st.integers(900, 1100) | st.integers(1, 60_000),
)
def test_deeply_nested_toml_only_raises_bundle_error(shape: str, depth: int) -> None:
    text = nested_toml(shape, depth)
    document = text if shape == "in-firmware" else MANIFEST.decode() + text + "\n"
    roomy = BundleLimits(max_manifest_bytes=1 << 20)  # so the parser, not the size check, meets the nesting
    try:
        validate_manifest(document.encode(), limits=roomy)
    except BundleError as exc:
        assert str(exc).startswith("firmware.toml: ")
        event(str(exc).split(": ")[1][:40])
    else:
        raise AssertionError("unknown keys or a non-string name must not validate")


key_parts = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True),
    st.text(st.characters(codec="utf-8", exclude_characters='"\\\n\r\x7f', exclude_categories=["Cc"]), max_size=8).map(
        lambda t: f'"{t}"'
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="'\n\r\x7f", exclude_categories=["Cc"]), max_size=8).map(
        lambda t: f"'{t}'"
    ),
)


@examples(150)
@given(
    parts=st.lists(key_parts, min_size=1, max_size=40),
    blanks=st.sampled_from(["", " ", "\t "]),
    where=st.sampled_from(["key", "header", "array-of-tables", "inline"]),
)
def test_dotted_keys_are_refused_past_sixteen_parts_before_parsing(parts: list[str], blanks: str, where: str) -> None:
    key = f"{blanks}.{blanks}".join(parts)
    line = {"key": f"{key} = 1", "header": f"[{key}]", "array-of-tables": f"[[{key}]]", "inline": f"x = {{ {key} = 1 }}"}
    try:
        validate_manifest(MANIFEST + line[where].encode() + b"\n", limits=LIMITS)
    except BundleError as exc:
        dotted = "a dotted key has more than 16 parts" in str(exc)
        assert dotted == (len(parts) > 16), str(exc)
    else:
        raise AssertionError("no extra key is allowed in a manifest")


def test_a_manifest_sized_dotted_key_is_refused_at_once() -> None:
    # tomllib needs O(parts^2): ~11 s for the 32,000 parts that fit in the default 64 KiB.
    text = b"x" + b".a" * 32_000 + b" = 1\n"
    started = time.monotonic()
    with pytest.raises(BundleError, match="a dotted key has more than 16 parts"):
        validate_manifest(text)
    assert time.monotonic() - started < 0.5


# -- huge manifests ------------------------------------------------------------------------


def padded_manifest(size: int, style: str) -> bytes:
    """A valid-looking manifest of exactly ``size`` bytes (or the base, if ``size`` is smaller)."""
    room = size - len(MANIFEST)
    if room <= 2:
        return MANIFEST + b"\n" * max(0, room)
    if style == "comment":
        pad = b"#" + b"x" * (room - 2) + b"\n"
    elif style == "multibyte":  # bytes, not characters, count: 'é' is two
        pad = b"#" + ("é" * ((room - 2) // 2)).encode() + b"x" * ((room - 2) % 2) + b"\n"
    elif style == "blank":
        pad = b"\n" * room
    else:  # one long string value
        pad = b'description = "' + b"d" * (room - 17) + b'"\n' if room >= 17 else b"\n" * room
        return MANIFEST + pad
    return MANIFEST + pad


@examples(80)
@given(
    delta=st.integers(-64, 64) | st.integers(65, 8 * MIB),
    style=st.sampled_from(["comment", "multibyte", "blank", "description"]),
)
def test_manifest_size_is_checked_in_bytes_at_the_exact_limit(delta: int, style: str) -> None:
    data = padded_manifest(LIMITS.max_manifest_bytes + delta, style)
    assert len(data) == max(len(MANIFEST), LIMITS.max_manifest_bytes + delta)
    try:
        validate_manifest(data, limits=LIMITS)
    except BundleError as exc:
        over = "over the limit of" in str(exc)
        assert over == (len(data) > LIMITS.max_manifest_bytes), str(exc)
        event("over the limit" if over else f"other: {str(exc)[15:55]}")
    else:
        assert len(data) <= LIMITS.max_manifest_bytes
        event("valid")


@examples(20)
@given(fmt=st.sampled_from(["directory", "tar", "tar.gz", "zip"]), mib=st.integers(1, 32))
def test_a_huge_manifest_inside_a_bundle_is_rejected_fast(fmt: str, mib: int) -> None:
    huge = MANIFEST + b"#" * (mib * MIB) + b"\n"
    with workspace() as (base, work):
        source = write_source(base, fmt, [("firmware.toml", huge), ("files/a", b"x")])
        started = time.monotonic()
        error = outcome(source, work)
        assert error is not None
        # Named by the manifest's limits, or (a plain tar) by the archive's size before anything is read.
        assert "firmware.toml" in str(error) or "larger than any bundle within the limits" in str(error), str(error)
        assert time.monotonic() - started < FAST


# -- invalid UTF-8 -------------------------------------------------------------------------

INVALID = [b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
           b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98"]


def _is_invalid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


invalid_utf8 = st.sampled_from(INVALID) | st.tuples(st.binary(max_size=4), st.sampled_from(INVALID)).map(
    lambda t: t[0] + t[1]
).filter(_is_invalid)


@examples(120)
@given(
    at=st.integers(0, len(MANIFEST)),
    bad=invalid_utf8,
    fmt=st.sampled_from(["text", "directory", "tar", "tar.gz", "zip"]),
    bom=st.booleans(),
)
def test_invalid_utf8_in_the_manifest_names_the_offset(at: int, bad: bytes, fmt: str, bom: bool) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + MANIFEST[:at] + bad + MANIFEST[at:]
    with pytest.raises(UnicodeDecodeError) as expected:
        data.decode("utf-8")
    message = f"firmware.toml: manifest is not valid UTF-8 (bad byte at offset {expected.value.start})"
    if fmt == "text":
        with pytest.raises(BundleError) as info:
            validate_manifest(data, limits=LIMITS)
        assert str(info.value) == message
        return
    with workspace() as (base, work):
        error = outcome(write_source(base, fmt, [("firmware.toml", data), ("files/a", b"x")]), work)
        assert error is not None and message in str(error)


@examples(80)
@given(
    fmt=st.sampled_from(["tar", "tar.gz", "zip-utf8-flag", "zip-cp437", "directory"]),
    prefix=st.sampled_from([b"files/", b"files/sub/", b"", b"apps/"]),
    bad=invalid_utf8,
    tail=st.sampled_from([b"", b"name", b"/x"]),
)
def test_member_names_that_are_not_utf8_are_refused_or_decoded_safely(
    fmt: str, prefix: bytes, bad: bytes, tail: bytes
) -> None:
    raw = prefix + bad + tail
    with workspace() as (base, work):
        if fmt.startswith("zip"):
            source = base / "bundle.zip"
            flags = 0x800 if fmt == "zip-utf8-flag" else 0
            source.write_bytes(raw_zip([(b"firmware.toml", MANIFEST, 0), (raw, b"data", flags)]))
        elif fmt == "directory":
            source = write_source(base, "directory", [("firmware.toml", MANIFEST)])
            target = source / os.fsdecode(raw.lstrip(b"/"))  # never an absolute path: stay inside the source
            if not os.path.abspath(target).startswith(str(source) + os.sep) or b".." in raw:
                event("name would leave the source directory")
                return
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"data")
            except (OSError, ValueError):  # a NUL: no file system takes it, so no directory can hold it
                event("file system refused the name")
                return
        else:
            name = raw.decode("utf-8", "surrogateescape")
            source = base / f"bundle.{fmt}"
            source.write_bytes(tar_of([("firmware.toml", MANIFEST), (name, b"data")], fmt == "tar.gz"))
        error = outcome(source, work)
        if fmt == "zip-cp437":  # no UTF-8 flag: zip says cp437, where every byte is a character
            event("cp437: " + ("loaded" if error is None else str(error).split(": ")[-1][:40]))
        else:
            assert error is not None, "a name that is not UTF-8 was accepted"
            event(str(error).split(": ")[-1][:40])
            reasons = ("UTF-8", "utf-8", "control character", "NUL byte", "backslash", "escapes the bundle root")
            assert any(r in str(error) for r in reasons), str(error)  # refused by a name rule, whichever first


@examples(40)
@given(bad=invalid_utf8, prefix=st.sampled_from([b"", b"a", b"../"]))
def test_zip_symlink_targets_that_are_not_utf8_are_refused(bad: bytes, prefix: bytes) -> None:
    with workspace() as (base, work):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("firmware.toml", MANIFEST)
            zf.writestr("files/a", b"x")
            link = zipfile.ZipInfo("files/link")
            link.create_system = 3
            link.external_attr = (0o120777) << 16
            zf.writestr(link, prefix + bad)
        source = base / "bundle.zip"
        source.write_bytes(buf.getvalue())
        error = outcome(source, work)
        assert error is not None and "files/link: symlink target is not valid UTF-8" in str(error)
