"""Unit tests for the bundle loader: every rejection names the problem and the path,
and a rejected bundle leaves nothing behind in the work directory."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.bundle import Bundle, load_bundle, validate_manifest
from sandbox.bundle.stage import Stager
from sandbox.errors import BundleError
from sandbox.settings import BundleLimits

REPO = Path(__file__).resolve().parents[3]
LIMITS = BundleLimits(
    max_files=50,
    max_file_bytes=1 << 20,
    max_total_bytes=4 << 20,
    max_manifest_bytes=4096,
    max_depth=8,
    max_services=4,
    max_apps=4,
)
MANIFEST = b'[firmware]\nname = "t"\nversion = "1.0"\n'
ANDROID = b'[firmware]\nname = "t"\nversion = "1"\nprofile = "android"\n[[apps]]\npath = "apps/A.apk"\n'


# -- builders -------------------------------------------------------------------


@dataclass
class M:
    """One archive member: kind is file, dir, sym, hard, chr or fifo."""

    name: str
    data: bytes = b""
    kind: str = "file"
    target: str = ""
    mode: int = 0o644


BASE = [M("firmware.toml", MANIFEST), M("files/system/x.txt", b"hi")]


def tar_bytes(members: list[M], *, gz: bool = True) -> bytes:
    buf = io.BytesIO()
    types = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "sym": tarfile.SYMTYPE,
        "hard": tarfile.LNKTYPE,
        "chr": tarfile.CHRTYPE,
        "fifo": tarfile.FIFOTYPE,
    }
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = types[m.kind]
            info.mode = m.mode
            info.linkname = m.target
            info.size = len(m.data) if m.kind == "file" else 0
            tar.addfile(info, io.BytesIO(m.data) if m.kind == "file" else None)
    return buf.getvalue()


def zip_bytes(members: list[M]) -> bytes:
    buf = io.BytesIO()
    kinds = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "sym": stat.S_IFLNK, "fifo": stat.S_IFIFO, "chr": stat.S_IFCHR}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some tests
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for m in members:
                info = zipfile.ZipInfo(m.name + ("/" if m.kind == "dir" and not m.name.endswith("/") else ""))
                info.create_system = 3
                info.external_attr = (kinds[m.kind] | m.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, m.target.encode() if m.kind == "sym" else m.data)
    return buf.getvalue()


def write_archive(tmp: Path, members: list[M], fmt: str) -> Path:
    if fmt == "zip":
        path, data = tmp / "bundle.zip", zip_bytes(members)
    elif fmt == "tar":
        path, data = tmp / "bundle.tar", tar_bytes(members, gz=False)
    else:
        path, data = tmp / "bundle.tgz", tar_bytes(members)
    path.write_bytes(data)
    return path


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def rejected(source: Path, workdir: Path, *fragments: str, limits: BundleLimits = LIMITS) -> BundleError:
    with pytest.raises(BundleError) as info:
        load_bundle(source, limits, workdir)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert list(workdir.iterdir()) == [], "a rejected bundle left files behind"
    return info.value


# -- happy paths ------------------------------------------------------------------


def test_example_bundle_loads(workdir: Path) -> None:
    bundle = load_bundle(REPO / "examples/firmware/hello", BundleLimits(), workdir)
    try:
        assert bundle.manifest.firmware.name == "hello"
        service = bundle.manifest.services[0]
        assert service.exec == service.argv == ("/usr/bin/python3", "/system/priv-app/hello/main.py")
        entries = {e.device_path: e for e in bundle.files()}
        assert list(entries) == ["/system/priv-app/hello/main.py"]
        main = entries["/system/priv-app/hello/main.py"]
        assert main.mode == 0o755
        assert list(bundle.directories()) == ["/system", "/system/priv-app", "/system/priv-app/hello"]
        assert list(bundle.symlinks()) == []
        assert b"/data/local/tmp/hello.pid" in main.host_path.read_bytes()
        assert bundle.source_format == "directory"
    finally:
        bundle.cleanup()
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("fmt", ["tar.gz", "tar", "zip"])
@pytest.mark.parametrize("wrapped", [False, True])
def test_archives_load_with_or_without_a_wrapper_directory(tmp_path: Path, workdir: Path, fmt: str, wrapped: bool) -> None:
    prefix = "fw-1.0/" if wrapped else ""
    members = [
        M(prefix + "firmware.toml", MANIFEST),
        M(prefix + "files/system/bin/tool", b"#!/bin/sh\n", mode=0o4755),
        M(prefix + "files/system/etc/conf", b"x=1\n", mode=0o666),
        M(prefix + "files/system/bin/alias", kind="sym", target="tool"),
    ]
    source = write_archive(tmp_path, members, fmt)
    with load_bundle(source, LIMITS, workdir) as bundle:
        assert bundle.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        assert bundle.source_format == fmt
        entries = {e.device_path: e for e in bundle.files()}
        assert sorted(entries) == ["/system/bin/tool", "/system/etc/conf"]  # files only
        tool = entries["/system/bin/tool"]
        assert tool.mode == 0o755  # setuid dropped, exec kept
        assert stat.S_IMODE(tool.host_path.stat().st_mode) == 0o755
        assert entries["/system/etc/conf"].mode == 0o644  # group/other write dropped
        assert list(bundle.symlinks()) == [("/system/bin/alias", "tool")]
        assert tool.host_path.read_bytes() == b"#!/bin/sh\n"
    assert list(workdir.iterdir()) == []


def test_tar_with_dot_slash_names_loads(tmp_path: Path, workdir: Path) -> None:
    source = write_archive(tmp_path, [M(".", kind="dir"), M("./firmware.toml", MANIFEST), M("./files/a", b"1")], "tar.gz")
    with load_bundle(source, LIMITS, workdir) as bundle:
        assert [e.device_path for e in bundle.files()] == ["/a"]


def test_format_is_detected_by_content_not_extension(tmp_path: Path, workdir: Path) -> None:
    source = tmp_path / "looks-like.tar.gz"
    source.write_bytes(zip_bytes(BASE))
    with load_bundle(source, LIMITS, workdir) as bundle:
        assert bundle.source_format == "zip"


def test_unknown_format_is_rejected(tmp_path: Path, workdir: Path) -> None:
    source = tmp_path / "bundle.zip"
    source.write_bytes(b"this is not an archive at all" * 40)
    rejected(source, workdir, f"{source}: unrecognised bundle format")
    source.write_bytes(b"\xfd7zXZ\x00" + b"\x00" * 600)
    rejected(source, workdir, "xz archives are not supported")


def test_missing_source(tmp_path: Path, workdir: Path) -> None:
    rejected(tmp_path / "nope", workdir, "nope: no such file or directory")


def test_corrupt_gzip_is_a_bundle_error(tmp_path: Path, workdir: Path) -> None:
    data = tar_bytes(BASE)
    source = tmp_path / "b.tgz"
    source.write_bytes(data[: len(data) // 2])
    rejected(source, workdir, "could not load the bundle")


def test_corrupt_or_truncated_tar_is_rejected_not_cut_short(tmp_path: Path, workdir: Path) -> None:
    good = tar_bytes(BASE, gz=False)
    source = tmp_path / "b.tar"
    source.write_bytes(good[:1024] + b"garbage!" * 64 + good[1536:])
    rejected(source, workdir, f"{source}: corrupt tar header")
    source.write_bytes(good[:2048])  # both members, no end-of-archive marker
    rejected(source, workdir, f"{source}: archive is truncated")
    gz = bytearray(tar_bytes(BASE))
    gz[-8] ^= 0xFF  # break the gzip CRC trailer
    source.write_bytes(bytes(gz))
    rejected(source, workdir, "could not load the bundle", "CRC")


def test_directory_tree_hash_is_deterministic(tmp_path: Path, workdir: Path) -> None:
    files = {"firmware.toml": MANIFEST, "files/a/b": b"1", "files/c": b"2"}
    one = write_dir(tmp_path / "one", files)
    two = write_dir(tmp_path / "two", dict(reversed(list(files.items()))))
    with load_bundle(one, LIMITS, workdir) as a, load_bundle(two, LIMITS, workdir) as b:
        assert a.sha256 == b.sha256
    (two / "files/c").chmod(0o755)
    with load_bundle(two, LIMITS, workdir) as b:
        assert a.sha256 != b.sha256


def test_android_profile_with_app(tmp_path: Path, workdir: Path) -> None:
    source = write_dir(tmp_path / "b", {"firmware.toml": ANDROID, "apps/A.apk": b"PK"})
    with load_bundle(source, LIMITS, workdir) as bundle:
        assert bundle.app_path(bundle.manifest.apps[0]).read_bytes() == b"PK"
        assert list(bundle.files()) == []


def test_cleanup_removes_stage(tmp_path: Path, workdir: Path) -> None:
    source = write_dir(tmp_path / "b", {"firmware.toml": MANIFEST})
    bundle = load_bundle(source, LIMITS, workdir)
    assert isinstance(bundle, Bundle) and bundle.staging_dir.parent == workdir
    bundle.cleanup()
    bundle.cleanup()
    assert list(workdir.iterdir()) == []


# -- manifest rejections -------------------------------------------------------------

SVC = '[[services]]\nname = "s"\nexec = ["/bin/x"]\n'


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[firmware]\nname="t"\nversion="1"\ncolour="red"\n', "firmware.colour: unknown key"),
        ('[firmware]\nname="t"\nversion="1"\n[extra]\n', "extra: unknown key"),
        ('[firmware]\nname="t"\nversion="1"\n' + SVC + 'shell="sh"\n', "services[0].shell: unknown key"),
        ('[firmware]\nname="t"\nversion="1"\nprofile="android"\n[[apps]]\npath="a.apk"\nsize=1\n', "apps[0].size: unknown key"),
        ('[firmware]\nversion="1"\n', "firmware.name: is required"),
        ('[firmware]\nname=""\nversion="1"\n', "firmware.name: must not be empty"),
        ('[firmware]\nname="t"\n', "firmware.version: is required"),
        ('[firmware]\nname="t"\nversion=""\n', "firmware.version: must not be empty"),
        ('[firmware]\nname=1\nversion="1"\n', "firmware.name: must be a string, not an integer"),
        ('[firmware]\nname="t"\nversion=1.5\n', "firmware.version: must be a string, not a float"),
        ('firmware = "x"\n', "firmware: must be a table, not a string"),
        ('[firmware]\nname="t/../x"\nversion="1"\n', "firmware.name: 't/../x' is not allowed"),
        ('[firmware]\nname="a b"\nversion="1"\n', "firmware.name: 'a b' is not allowed"),
        ('[firmware]\nname="t"\nversion="1"\nprofile="ios"\n', "firmware.profile: must be one of twin, android"),
        ('[firmware]\nname="t"\nversion="1"\ndescription=[]\n', "firmware.description: must be a string"),
        ('[firmware]\nname="t"\nversion="1"\n' + SVC + 'user="admin"\n', "services[0].user: must be one of system, root, shell"),
        ('[firmware]\nname="t"\nversion="1"\n[[services]]\nname="s"\nexec=[]\n', "services[0].exec: must not be empty"),
        ('[firmware]\nname="t"\nversion="1"\n[[services]]\nname="s"\nexec="/bin/x"\n', "services[0].exec: must be an array"),
        ('[firmware]\nname="t"\nversion="1"\n[[services]]\nname="s"\nexec=["/bin/x", 3]\n', "services[0].exec[1]: must be a string"),
        ('[firmware]\nname="t"\nversion="1"\n[[services]]\nname="s"\nexec=["python3"]\n', "services[0].exec[0]: must be an absolute path"),
        ('[firmware]\nname="t"\nversion="1"\n[[services]]\nname="s"\nexec=["/a/../b"]\n', "services[0].exec[0]: '/a/../b' must not contain '..'"),
        ('[firmware]\nname="t"\nversion="1"\n[[services]]\nexec=["/b"]\n', "services[0].name: is required"),
        ('[firmware]\nname="t"\nversion="1"\n' + SVC + SVC, "services[1].name: duplicate service name 's' (also services[0])"),
        ('[firmware]\nname="t"\nversion="1"\n[[services]]\nname="s;rm"\nexec=["/b"]\n', "services[0].name: 's;rm' is not allowed"),
        ('[firmware]\nname="t"\nversion="1"\n' + SVC + 'cwd="tmp"\n', "services[0].cwd: must be an absolute path"),
        ('[firmware]\nname="t"\nversion="1"\n' + SVC + 'env={"A-B"="1"}\n', "services[0].env.A-B: is not a valid variable name"),
        ('[firmware]\nname="t"\nversion="1"\n' + SVC + "env={A=1}\n", "services[0].env.A: must be a string"),
        ('[firmware]\nname="t"\nversion="1"\n' + SVC * 5, "services: too many services (5 > limit 4)"),
        ('[firmware]\nname="t"\nversion="1"\nprofile="android"\n[[apps]]\npath="/sdcard/a.apk"\n', "apps[0].path: /sdcard/a.apk: path escapes the bundle root"),
        ('[firmware]\nname="t"\nversion="1"\nprofile="android"\n[[apps]]\npath="apps/../../a.apk"\n', "apps[0].path: apps/../../a.apk: path escapes the bundle root"),
        ('[firmware]\nname="t"\nversion="1"\nprofile="android"\n[[apps]]\npath=\'apps\\a.apk\'\n', "apps[0].path: apps\\a.apk: path contains a backslash"),
        ('[firmware]\nname="t"\nversion="1"\nprofile="android"\n[[apps]]\npath="apps/a.txt"\n', "apps[0].path: apps/a.txt must end in .apk"),
        ('[firmware]\nname="t"\nversion="1"\nprofile="android"\n[[apps]]\npath="a.apk"\n[[apps]]\npath="./a.apk"\n', "apps[1].path: ./a.apk is listed twice"),
        ('[firmware]\nname="t"\nversion="1"\n[[apps]]\npath="a.apk"\n', "apps: only the android profile installs apps"),
        ('[firmware]\nname="t"\nversion="1"\nprofile="android"\n' + SVC, "services: the android profile runs no services"),
        ("[services]\n", "firmware: the [firmware] table is required"),
        ("[firmware\nname=", "invalid TOML"),
    ],
)
def test_manifest_rejections(text: str, fragment: str, tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(BundleError) as info:
        validate_manifest(text.encode(), limits=LIMITS)
    assert str(info.value).startswith("firmware.toml: ")
    assert fragment in str(info.value)
    # The same manifest inside a bundle is rejected the same way and leaves nothing.
    source = write_dir(tmp_path / "b", {"firmware.toml": text.encode(), "apps/a.apk": b"x", "apps/A.apk": b"x"})
    rejected(source, workdir, fragment)


def test_manifest_not_utf8_and_too_big(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(BundleError, match=r"firmware.toml: manifest is not valid UTF-8 \(bad byte at offset 3\)"):
        validate_manifest(b"a =\xff", limits=LIMITS)
    with pytest.raises(BundleError, match="firmware.toml: manifest is not valid UTF-8"):
        validate_manifest("a = '\udc80'", limits=LIMITS)
    big = MANIFEST + b"#" * LIMITS.max_manifest_bytes
    with pytest.raises(BundleError, match="over the limit of 4096"):
        validate_manifest(big, limits=LIMITS)
    rejected(write_dir(tmp_path / "b", {"firmware.toml": big}), workdir, "firmware.toml: manifest is", "over the limit")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x = " + "[" * 20000 + "]" * 20000, "firmware.toml: invalid TOML"),
        ("x = " + "1" * 5000, "firmware.toml: invalid TOML: Exceeds the limit (4300 digits)"),
    ],
)
def test_manifest_parser_edge_cases_under_default_limits(text: str, fragment: str) -> None:
    with pytest.raises(BundleError) as info:
        validate_manifest(text.encode())
    assert fragment in str(info.value)


def test_valid_manifest_defaults() -> None:
    manifest = validate_manifest(MANIFEST.decode() + SVC + 'env = {B = "2", A = "1"}\n')
    assert manifest.firmware.profile == "twin"
    service = manifest.services[0]
    assert service.user == "system" and service.env == (("B", "2"), ("A", "1"))
    assert service.environment == {"A": "1", "B": "2"}


# -- archive member rejections ----------------------------------------------------------

ESCAPES = [
    ("files/../../etc/passwd", "files/../../etc/passwd: path escapes the bundle root"),
    ("/etc/passwd", "/etc/passwd: path escapes the bundle root (absolute paths"),
    ("../outside", "../outside: path escapes the bundle root"),
    ("files/a\nb", "'files/a\\nb': path contains a control character"),
    ("files/" + "x" * 256, "path component is longer than 255 bytes"),
    ("files/" + "a/" * 600, "path is longer than 1024 characters"),
]


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
@pytest.mark.parametrize(("name", "fragment"), ESCAPES)
def test_escaping_member_names(tmp_path: Path, workdir: Path, fmt: str, name: str, fragment: str) -> None:
    rejected(write_archive(tmp_path, [*BASE, M(name, b"pwned")], fmt), workdir, fragment)
    assert not (tmp_path / "etc").exists() and not (tmp_path / "outside").exists()


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("files\\..\\evil", "files\\..\\evil: path contains a backslash"),
        ("C:/Windows/evil", "C:/Windows/evil: path escapes the bundle root (drive letters"),
        ("c:evil", "c:evil: path escapes the bundle root (drive letters"),
    ],
)
def test_zip_windows_names(tmp_path: Path, workdir: Path, name: str, fragment: str) -> None:
    rejected(write_archive(tmp_path, [*BASE, M(name, b"x")], "zip"), workdir, fragment)


def test_zip_name_with_nul_is_rejected(tmp_path: Path, workdir: Path) -> None:
    data = zip_bytes([*BASE, M("files/evilXname", b"x")]).replace(b"files/evilXname", b"files/evil\x00name")
    source = tmp_path / "b.zip"
    source.write_bytes(data)
    rejected(source, workdir, "'files/evil\\x00name': path contains a NUL byte")


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_duplicate_members(tmp_path: Path, workdir: Path, fmt: str) -> None:
    members = [*BASE, M("files/system/x.txt", b"again")]
    rejected(write_archive(tmp_path, members, fmt), workdir, "files/system/x.txt: duplicate archive member")
    members = [*BASE, M("./files/system/x.txt", b"again")]
    rejected(write_archive(tmp_path, members, fmt), workdir, "./files/system/x.txt: duplicate archive member")


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
@pytest.mark.parametrize(
    ("member", "fragment"),
    [
        (M("files/etc", kind="sym", target="/etc"), "files/etc: symlink target /etc is absolute"),
        (M("files/up", kind="sym", target="../../.."), "files/up: symlink target ../../.. leads outside files/"),
        (M("files/s/up", kind="sym", target="../../firmware.toml"), "files/s/up: symlink target ../../firmware.toml leads outside files/"),
        (M("apps", kind="sym", target="files"), "apps: links are only allowed inside files/"),
        (M("files/fifo", kind="fifo"), "files/fifo: device files and fifos are not allowed"),
        (M("files/dev/null", kind="chr"), "files/dev/null: device files and fifos are not allowed"),
    ],
)
def test_links_and_special_files(tmp_path: Path, workdir: Path, fmt: str, member: M, fragment: str) -> None:
    rejected(write_archive(tmp_path, [*BASE, member], fmt), workdir, fragment)


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_symlink_chain_that_escapes_is_rejected(tmp_path: Path, workdir: Path, fmt: str) -> None:
    # Each link looks harmless lexically; together they climb out of files/.
    members = [
        *BASE,
        M("files/a/b/s", kind="sym", target="../.."),
        M("files/l", kind="sym", target="a/b/s/../../../x"),
    ]
    rejected(write_archive(tmp_path, members, fmt), workdir, "files/l: symlink target a/b/s/../../../x leads outside files/")


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_member_through_a_symlink_is_rejected(tmp_path: Path, workdir: Path, fmt: str) -> None:
    members = [*BASE, M("files/lib", kind="sym", target="system"), M("files/lib/evil", b"x")]
    rejected(write_archive(tmp_path, members, fmt), workdir, "files/lib/evil: path passes through something that is not a directory")
    members = [*BASE, M("files/system/x.txt/child", b"x")]
    rejected(write_archive(tmp_path, members, fmt), workdir, "files/system/x.txt/child: path passes through")


def test_tar_hardlinks(tmp_path: Path, workdir: Path) -> None:
    outside = [*BASE, M("files/shadow", kind="hard", target="/etc/shadow")]
    rejected(write_archive(tmp_path, outside, "tar.gz"), workdir, "files/shadow: hard link target /etc/shadow: path escapes the bundle root")
    missing = [*BASE, M("files/h", kind="hard", target="files/nothing")]
    rejected(write_archive(tmp_path, missing, "tar.gz"), workdir, "files/h: hard link to files/nothing, which is not an earlier regular file")
    inside = [*BASE, M("files/h", kind="hard", target="files/system/x.txt")]
    with load_bundle(write_archive(tmp_path, inside, "tar.gz"), LIMITS, workdir) as bundle:
        host = {e.device_path: e.host_path for e in bundle.files()}
        assert host["/h"].read_bytes() == b"hi" and os.stat(host["/h"]).st_nlink == 1


def test_hardlinks_cannot_multiply_past_total(tmp_path: Path, workdir: Path) -> None:
    big = M("files/big", b"\0" * (1 << 20))
    members = [*BASE, big, *[M(f"files/h{i}", kind="hard", target="files/big") for i in range(8)]]
    rejected(write_archive(tmp_path, members, "tar.gz"), workdir, "bundle exceeds the total size limit")


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_size_count_and_depth_limits(tmp_path: Path, workdir: Path, fmt: str) -> None:
    big = [*BASE, M("files/big", b"\0" * ((1 << 20) + 1))]
    rejected(write_archive(tmp_path, big, fmt), workdir, "files/big: file declares 1048577 bytes, over the per-file limit")
    total = [*BASE, *[M(f"files/f{i}", b"\0" * (1 << 20)) for i in range(5)]]
    rejected(write_archive(tmp_path, total, fmt), workdir, "files/f", "total size limit of 4194304")
    many = [*BASE, *[M(f"files/n{i}", b"") for i in range(60)]]
    rejected(write_archive(tmp_path, many, fmt), workdir, "50")
    deep = [*BASE, M("files/" + "d/" * 9 + "f", b"x")]
    rejected(write_archive(tmp_path, deep, fmt), workdir, "path is nested deeper than the limit of 8")


def test_depth_counts_from_the_bundle_root_not_the_wrapper(tmp_path: Path, workdir: Path) -> None:
    ok = [M("w/firmware.toml", MANIFEST), M("w/files/" + "d/" * 6 + "f", b"x")]  # depth 8 under w/
    with load_bundle(write_archive(tmp_path, ok, "tar.gz"), LIMITS, workdir):
        pass
    bad = [M("firmware.toml", MANIFEST), M("x/files/" + "d/" * 6 + "f", b"x")]  # depth 9, no wrapper
    rejected(write_archive(tmp_path, bad, "tar.gz"), workdir, "x/files/d/d/d/d/d/d/f: path is nested deeper than the limit of 8")


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_manifest_missing_or_not_a_file(tmp_path: Path, workdir: Path, fmt: str) -> None:
    rejected(write_archive(tmp_path, [M("files/a", b"x")], fmt), workdir, "firmware.toml: manifest is missing")
    two_tops = [M("a/firmware.toml", MANIFEST), M("b/x", b"")]
    rejected(write_archive(tmp_path, two_tops, fmt), workdir, "firmware.toml: manifest is missing")
    linked = [M("firmware.toml", kind="sym", target="files/m"), M("files/m", MANIFEST)]
    rejected(write_archive(tmp_path, linked, fmt), workdir, "firmware.toml: must be a regular file")
    as_dir = [M("firmware.toml/x", b""), M("files/m", MANIFEST)]
    rejected(write_archive(tmp_path, as_dir, fmt), workdir, "firmware.toml: must be a regular file")
    files_link = [M("firmware.toml", MANIFEST), M("x/y", b""), M("files", kind="sym", target="x")]
    rejected(write_archive(tmp_path, files_link, fmt), workdir, "files/: must be a directory")


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_apps_must_be_regular_files_in_the_bundle(tmp_path: Path, workdir: Path, fmt: str) -> None:
    rejected(write_archive(tmp_path, [M("firmware.toml", ANDROID)], fmt), workdir, "apps/A.apk: listed as apps[0].path")
    as_dir = [M("firmware.toml", ANDROID), M("apps/A.apk/x", b"")]
    rejected(write_archive(tmp_path, as_dir, fmt), workdir, "apps/A.apk: listed as apps[0].path")
    manifest = ANDROID.replace(b"apps/A.apk", b"files/l/A.apk")
    via_link = [M("firmware.toml", manifest), M("files/d/A.apk", b"PK"), M("files/l", kind="sym", target="d")]
    rejected(write_archive(tmp_path, via_link, fmt), workdir, "files/l/A.apk: listed as apps[0].path")


def test_zip_encrypted_and_unsupported_compression(tmp_path: Path, workdir: Path) -> None:
    data = bytearray(zip_bytes(BASE))
    # Set the "encrypted" flag bit on the second entry in the central directory.
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 0x1
    source = tmp_path / "b.zip"
    source.write_bytes(bytes(data))
    rejected(source, workdir, "files/system/x.txt: encrypted zip entries are not supported")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("firmware.toml", MANIFEST)
    source.write_bytes(buf.getvalue())
    rejected(source, workdir, "firmware.toml: zip compression method 12 is not supported")


def test_zip_header_that_understates_size_is_caught(tmp_path: Path, workdir: Path) -> None:
    content = b"A" * 5000
    data = bytearray(zip_bytes([M("firmware.toml", MANIFEST), M("files/big", content)]))
    # Lie in the central directory: claim 10 bytes uncompressed.
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    source = tmp_path / "b.zip"
    source.write_bytes(bytes(data))
    rejected(source, workdir, "could not load the bundle")


def test_stager_counts_real_bytes_not_declared_ones(tmp_path: Path) -> None:
    stager = Stager(tmp_path, LIMITS)
    with pytest.raises(BundleError, match="over|larger than the per-file limit"):
        stager.add_file("liar", 10, lambda n: b"\0" * n, executable=False)  # endless data, header says 10
    stager = Stager(tmp_path, LIMITS)
    with pytest.raises(BundleError, match="holds 11 bytes but its header declares 10"):
        chunks = iter([b"x" * 11, b""])
        stager.add_file("short", 10, lambda n: next(chunks), executable=False)


# -- bombs --------------------------------------------------------------------------

GIB = 1 << 30
ZEROS = b"\0" * (1 << 20)


def _deflate_blocks(data: bytes) -> bytes:
    """Raw deflate of ``data`` ending in a full flush: self-contained, byte-aligned, not final.

    Such pieces can be concatenated, which lets a test emit the deflate stream
    of a gigabyte of zeros by repeating one ~1 KiB piece -- nothing big is
    ever compressed, held or written.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_FULL_FLUSH)


_FINAL_BLOCK = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)


def _zeros_crc(prefix: bytes, count: int) -> int:
    crc = zlib.crc32(prefix)
    for _ in range(count // len(ZEROS)):
        crc = zlib.crc32(ZEROS, crc)
    return crc


def write_gzip_bomb(path: Path, header: bytes, count: int) -> None:
    """gzip(header + count zero bytes), streamed."""
    piece = _deflate_blocks(ZEROS)
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        out.write(_deflate_blocks(header))
        for _ in range(count // len(ZEROS)):
            out.write(piece)
        out.write(_FINAL_BLOCK)
        size = len(header) + count
        out.write(struct.pack("<II", _zeros_crc(header, count), size & 0xFFFFFFFF))


def write_zip_bomb(path: Path, name: str, count: int) -> None:
    """A zip with firmware.toml and ``name`` holding ``count`` deflated zero bytes."""
    piece = _deflate_blocks(ZEROS)
    data_size = len(piece) * (count // len(ZEROS)) + len(_FINAL_BLOCK)
    entries = [
        ("firmware.toml", 0, zlib.crc32(MANIFEST), len(MANIFEST), len(MANIFEST)),
        (name, 8, _zeros_crc(b"", count), data_size, count),
    ]
    central = b""
    with path.open("wb") as out:
        for entry_name, method, crc, csize, usize in entries:
            raw = entry_name.encode()
            offset = out.tell()
            fields = (20, 0, method, 0, 0x21, crc, csize, usize, len(raw), 0)
            out.write(b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", *fields) + raw)
            if method == 0:
                out.write(MANIFEST)
            else:
                for _ in range(count // len(ZEROS)):
                    out.write(piece)
                out.write(_FINAL_BLOCK)
            cd_fields = (0x0314, 20, 0, method, 0, 0x21, crc, csize, usize, len(raw), 0, 0, 0, 0, 0o100644 << 16, offset)
            central += b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", *cd_fields) + raw
        cd_offset = out.tell()
        out.write(central)
        out.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 2, 2, len(central), cd_offset, 0))


def test_bomb_writers_produce_valid_archives(tmp_path: Path) -> None:
    member = tarfile.TarInfo("files/zeros")
    member.size = 3 << 20
    write_gzip_bomb(tmp_path / "b.tgz", member.tobuf(tarfile.USTAR_FORMAT), 3 << 20)
    with tarfile.open(tmp_path / "b.tgz") as tar:
        assert tar.extractfile("files/zeros").read() == b"\0" * (3 << 20)  # type: ignore[union-attr]
    write_zip_bomb(tmp_path / "b.zip", "files/zeros", 3 << 20)
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert zf.read("files/zeros") == b"\0" * (3 << 20)
        assert zf.read("firmware.toml") == MANIFEST


# What "rejected fast" means, without a clock: the loader stops after
# inflating a few MiB (the limits), not the bomb's GiB.
INFLATE_BOUND = 16 << 20


@pytest.fixture
def inflated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the bytes the loader decompresses (gzip and zip readers)."""
    total = [0]
    for cls in (gzip.GzipFile, zipfile.ZipExtFile):
        for name in ("read", "read1"):
            original = getattr(cls, name)

            def counted(self: object, *args: object, _original: object = original, **kwargs: object) -> bytes:
                out: bytes = _original(self, *args, **kwargs)  # type: ignore[operator]
                total[0] += len(out)
                return out

            monkeypatch.setattr(cls, name, counted)
    return total


def test_tar_bomb_is_rejected_without_inflating_it(tmp_path: Path, workdir: Path, inflated: list[int]) -> None:
    info = tarfile.TarInfo("files/zeros")
    info.size = GIB
    source = tmp_path / "bomb.tgz"
    write_gzip_bomb(source, info.tobuf(tarfile.USTAR_FORMAT), GIB)
    assert source.stat().st_size < 4 << 20
    rejected(source, workdir, "files/zeros: file declares 1073741824 bytes, over the per-file limit")
    assert inflated[0] <= INFLATE_BOUND, inflated  # stopped near the limits, not after the bomb's size


def test_tar_metadata_bomb_is_rejected(tmp_path: Path, workdir: Path, inflated: list[int]) -> None:
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = 256 << 20
    source = tmp_path / "pax.tgz"
    write_gzip_bomb(source, pax.tobuf(tarfile.USTAR_FORMAT), 256 << 20)
    rejected(source, workdir, "metadata bomb")
    assert inflated[0] <= INFLATE_BOUND, inflated  # stopped near the limits, not after the bomb's size


def test_zip_bomb_is_rejected_without_inflating_it(tmp_path: Path, workdir: Path, inflated: list[int]) -> None:
    source = tmp_path / "bomb.zip"
    write_zip_bomb(source, "files/zeros", GIB)
    assert source.stat().st_size < 4 << 20
    rejected(source, workdir, "files/zeros: archive declares more than the total size limit")
    assert inflated[0] <= INFLATE_BOUND, inflated  # stopped near the limits, not after the bomb's size


def test_zip_bomb_with_lying_header_stops_at_the_limit(tmp_path: Path, workdir: Path, inflated: list[int]) -> None:
    # The central directory claims 100 bytes; the deflate stream holds 1 GiB.
    source = tmp_path / "liar.zip"
    write_zip_bomb(source, "files/zeros", GIB)
    data = bytearray(source.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.rfind(sig)
        data[at + offset : at + offset + 4] = (100).to_bytes(4, "little")
    source.write_bytes(bytes(data))
    rejected(source, workdir, "could not load the bundle")
    assert inflated[0] <= INFLATE_BOUND, inflated  # stopped near the limits, not after the bomb's size


def test_oversized_archive_file_is_rejected_before_reading(tmp_path: Path, workdir: Path) -> None:
    source = tmp_path / "huge.tar"
    with source.open("wb") as out:
        out.truncate(64 << 20)  # sparse: no real disk use
    rejected(source, workdir, "larger than any bundle within the limits can be")


# -- directory sources --------------------------------------------------------------------


def test_directory_symlinks(tmp_path: Path, workdir: Path) -> None:
    source = write_dir(tmp_path / "b", {"firmware.toml": MANIFEST, "files/system/bin/toybox": b"x"})
    (source / "files/system/bin/ls").symlink_to("toybox")
    with load_bundle(source, LIMITS, workdir) as bundle:
        assert list(bundle.symlinks()) == [("/system/bin/ls", "toybox")]
        assert [e.device_path for e in bundle.files()] == ["/system/bin/toybox"]
    (source / "files/passwd").symlink_to("/etc/passwd")
    rejected(source, workdir, "files/passwd: symlink target /etc/passwd is absolute")
    (source / "files/passwd").unlink()
    (source / "files/up").symlink_to("../../..")
    rejected(source, workdir, "files/up: symlink target ../../.. leads outside files/")


def test_directory_symlinked_dir_is_not_followed(tmp_path: Path, workdir: Path) -> None:
    secret = write_dir(tmp_path / "secret", {"key": b"s3cret"})
    source = write_dir(tmp_path / "b", {"firmware.toml": MANIFEST})
    (source / "files").symlink_to(os.path.relpath(secret, source))
    rejected(source, workdir, "files/: must be a directory (not a file or a link)")


def test_directory_special_files(tmp_path: Path, workdir: Path) -> None:
    source = write_dir(tmp_path / "b", {"firmware.toml": MANIFEST, "files/a": b""})
    os.mkfifo(source / "files/pipe")
    rejected(source, workdir, "files/pipe: device files, fifos and sockets are not allowed")
    (source / "files/pipe").unlink()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(source / "files/sock"))
        rejected(source, workdir, "files/sock: device files, fifos and sockets are not allowed")
    finally:
        sock.close()
        (source / "files/sock").unlink()
    try:
        os.mknod(source / "files/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        return
    rejected(source, workdir, "files/null: device files, fifos and sockets are not allowed")


def test_directory_hardlink_to_outside_file(tmp_path: Path, workdir: Path) -> None:
    outside = tmp_path / "shadow"
    outside.write_bytes(b"root:x")
    source = write_dir(tmp_path / "b", {"firmware.toml": MANIFEST, "files/a": b"1"})
    os.link(outside, source / "files/shadow")
    rejected(source, workdir, "files/shadow: hard link to a file outside the bundle")
    outside.unlink()
    os.link(source / "files/a", source / "files/b")  # both links inside: fine
    with load_bundle(source, LIMITS, workdir) as bundle:
        assert {e.device_path for e in bundle.files()} >= {"/a", "/b", "/shadow"}


def test_directory_bad_names_and_limits(tmp_path: Path, workdir: Path) -> None:
    source = write_dir(tmp_path / "b", {"firmware.toml": MANIFEST, "files/bad\x01name": b""})
    rejected(source, workdir, "'files/bad\\x01name': path contains a control character")
    source = write_dir(tmp_path / "c", {"firmware.toml": MANIFEST, "files/" + "d/" * 8 + "f": b""})
    rejected(source, workdir, "path is nested deeper than the limit of 8")
    source = write_dir(tmp_path / "d", {"firmware.toml": MANIFEST, "files/big": b"\0" * ((1 << 20) + 1)})
    rejected(source, workdir, "files/big: file declares 1048577 bytes")
    source = write_dir(tmp_path / "e", {"firmware.toml": MANIFEST, **{f"files/{i}": b"" for i in range(60)}})
    rejected(source, workdir, "too many files (limit 50)")
    source = write_dir(tmp_path / "f", {"files/a": b""})
    rejected(source, workdir, "firmware.toml: manifest is missing (expected at the top)")


def test_directory_non_utf8_name(tmp_path: Path, workdir: Path) -> None:
    source = write_dir(tmp_path / "b", {"firmware.toml": MANIFEST, "files/a": b""})
    (source / "files").joinpath(os.fsdecode(b"bad\xffname")).write_bytes(b"")
    rejected(source, workdir, "'files/bad\\udcffname': path is not valid UTF-8")


def test_tar_root_entries_and_empty_names(tmp_path: Path, workdir: Path) -> None:
    dots = [*BASE, *[M("./", kind="dir") for _ in range(60)]]
    rejected(write_archive(tmp_path, dots, "tar"), workdir, "too many files (limit 50)")
    empty = [*BASE, M("./", b"data")]
    rejected(write_archive(tmp_path, empty, "tar"), workdir, "./: entry has an empty name")


def test_many_empty_members_are_not_a_metadata_bomb(tmp_path: Path, workdir: Path) -> None:
    # 2500 bare 512-byte headers are more than the 1 MiB per-member metadata cap in total.
    limits = BundleLimits(max_files=3000)
    members = [*BASE, *[M(f"files/e/{i:04d}", b"") for i in range(2500)]]
    with load_bundle(write_archive(tmp_path, members, "tar.gz"), limits, workdir) as bundle:
        assert len(list(bundle.files())) == 2500 + 1


def test_tar_pax_header_chain_is_rejected(tmp_path: Path, workdir: Path) -> None:
    blocks = []
    for i in range(3000):
        record = f"comment={i}\n".encode()
        record = str(len(record) + len(str(len(record))) + 1).encode() + b" " + record
        header = tarfile.TarInfo("././@PaxHeader")
        header.type, header.size = tarfile.XGLTYPE, len(record)
        blocks.append(header.tobuf(tarfile.USTAR_FORMAT) + record.ljust(512, b"\0"))
    source = tmp_path / "pax.tar"
    source.write_bytes(b"".join(blocks) + tar_bytes(BASE, gz=False))
    rejected(source, workdir, str(source))


def test_workdir_inside_the_bundle_is_refused(tmp_path: Path) -> None:
    source = write_dir(tmp_path / "b", {"firmware.toml": MANIFEST})
    with pytest.raises(BundleError, match="workdir must not be inside the bundle"):
        load_bundle(source, LIMITS, source / "work")
    assert list((source / "work").iterdir()) == []
