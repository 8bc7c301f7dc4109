"""Property tests for the bundle loader: hostile input only ever yields ``BundleError``,
never escapes the staging directory, never leaves files behind; valid bundles round-trip."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import tarfile
import tempfile
import tomllib
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sandbox.bundle import App, Firmware, Manifest, Service, load_bundle, validate_manifest
from sandbox.bundle.manifest import NAME_RE
from sandbox.errors import BundleError
from sandbox.settings import BundleLimits

LIMITS = BundleLimits(
    max_files=200,
    max_file_bytes=1 << 16,
    max_total_bytes=1 << 20,
    max_manifest_bytes=16 * 1024,
    max_depth=32,
    max_services=8,
    max_apps=8,
)
MANIFEST = '[firmware]\nname = "t"\nversion = "1"\n'


def examples(count: int) -> settings:
    """Modest example counts (CI has two shared cores); no example database in the repo."""
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

# -- a tiny TOML writer (tomli_w is not a dependency) ---------------------------------


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(data: dict[str, Any]) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in data.items())


# -- strategies ------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=12)
scalars = st.one_of(text, st.integers(), st.floats(allow_nan=False), st.booleans())
anything = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=8)
KNOWN_KEYS = ["firmware", "services", "apps", "name", "version", "profile", "description", "exec", "user", "env", "cwd", "path"]
keys = st.sampled_from(KNOWN_KEYS) | text
names = st.from_regex(NAME_RE, fullmatch=True) | text
paths = st.sampled_from(["/bin/sh", "/system/bin/x", "sh", "/a/../b", "", "a.apk", "apps/a.apk", "../a.apk", "/x.apk"]) | text

valid_names = st.from_regex(NAME_RE, fullmatch=True)
broken_firmware = st.fixed_dictionaries(
    {},
    optional={
        "name": names | scalars,
        "version": names | scalars,
        "profile": st.sampled_from(["twin", "android", "ios"]) | scalars,
        "description": text | scalars,
        "extra": scalars,
    },
)
valid_firmware = st.fixed_dictionaries(
    {"name": valid_names, "version": valid_names},
    optional={"profile": st.sampled_from(["twin", "android"]), "description": st.sampled_from(["", "about"])},
)
broken_service = st.fixed_dictionaries(
    {},
    optional={
        "name": names | scalars,
        "exec": st.lists(paths | scalars, max_size=3) | scalars,
        "user": st.sampled_from(["system", "root", "shell", "admin"]) | scalars,
        "env": st.dictionaries(st.sampled_from(["A", "B_1", "1x", "a-b"]) | text, text | scalars, max_size=3) | scalars,
        "cwd": paths | scalars,
    },
)
valid_service = st.fixed_dictionaries(
    {"name": valid_names, "exec": st.lists(st.sampled_from(["/bin/sh", "-c", "x"]), max_size=2).map(lambda a: ["/bin/x", *a])},
    optional={"user": st.sampled_from(["system", "root", "shell"]), "env": st.just({"A": "1"}), "cwd": st.just("/data")},
)
app_tables = st.fixed_dictionaries({}, optional={"path": paths | scalars, "size": scalars}) | st.just({"path": "apps/a.apk"})
near_manifests = st.fixed_dictionaries(
    {"firmware": valid_firmware | broken_firmware | anything},
    optional={
        "services": st.lists(valid_service | broken_service, max_size=3) | anything,
        "apps": st.lists(app_tables, max_size=3) | anything,
    },
)
random_manifests = st.dictionaries(keys, anything, max_size=4)


def assert_valid_result(manifest: Manifest) -> None:
    assert NAME_RE.fullmatch(manifest.firmware.name)
    assert manifest.firmware.profile in ("twin", "android")
    for service in manifest.services:
        assert service.argv[0].startswith("/") and ".." not in service.argv[0].split("/")
    assert not (manifest.services and manifest.apps)


def only_bundle_error(data: bytes | str) -> None:
    try:
        manifest = validate_manifest(data, limits=LIMITS)
    except BundleError as exc:
        assert str(exc).startswith("firmware.toml: ")
        event("rejected")
    else:
        assert_valid_result(manifest)
        event("valid")


@examples(200)
@given(near_manifests | random_manifests)
def test_generated_manifests_only_raise_bundle_error(data: dict[str, Any]) -> None:
    document = toml_document(data)
    assert tomllib.loads(document) == data  # the writer itself is right
    only_bundle_error(document)
    only_bundle_error(document.encode())


@examples(200)
@given(st.binary(max_size=512) | st.text(max_size=256).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_random_bytes_only_raise_bundle_error(data: bytes) -> None:
    only_bundle_error(data)


@examples(60)
@given(near_manifests)
def test_bundles_with_generated_manifests_leave_nothing_behind(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, work = Path(tmp) / "b", Path(tmp) / "work"
        (source / "apps").mkdir(parents=True)
        (source / "apps/a.apk").write_bytes(b"PK")
        (source / "firmware.toml").write_text(toml_document(data))
        try:
            bundle = load_bundle(source, LIMITS, work)
        except BundleError:
            pass
        else:
            assert_valid_result(bundle.manifest)
            bundle.cleanup()
        assert list(work.iterdir()) == []


# -- hostile member names ------------------------------------------------------------

PIECES = ["..", ".", "", "files", "a", "C:", "c:", "\\", "..\\..", "a\x00b", "\n", "x" * 300, "firmware.toml", "é", " "]
member_names = st.one_of(
    st.lists(st.sampled_from(PIECES) | text, min_size=1, max_size=6).map("/".join),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    st.lists(st.sampled_from(["..", "a", "b"]), min_size=1, max_size=6).map("/".join).map(lambda s: "files/" + s),
    text,
)
KINDS = ["file", "dir", "sym", "hard"]


def build_archive(path: Path, fmt: str, name: str, kind: str, target: str) -> None:
    if fmt == "zip":
        buf = io.BytesIO()
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
            warnings.simplefilter("ignore")
            zf.writestr("firmware.toml", MANIFEST)
            zinfo = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
            zinfo.create_system = 3
            zinfo.external_attr = (stat.S_IFLNK | 0o777) << 16 if kind == "sym" else (stat.S_IFREG | 0o644) << 16
            zf.writestr(zinfo, target.encode("utf-8", "surrogatepass") if kind == "sym" else b"payload")
        path.write_bytes(buf.getvalue())
        return
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        manifest = tarfile.TarInfo("firmware.toml")
        manifest.size = len(MANIFEST)
        tar.addfile(manifest, io.BytesIO(MANIFEST.encode()))
        info = tarfile.TarInfo(name)
        info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
        info.linkname = target if kind in ("sym", "hard") else ""
        info.size = 7 if kind == "file" else 0
        tar.addfile(info, io.BytesIO(b"payload") if kind == "file" else None)


def walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            yield Path(dirpath) / entry


@examples(150)
@given(
    fmt=st.sampled_from(["tar.gz", "zip"]),
    name=member_names,
    kind=st.sampled_from(KINDS),
    target=member_names | st.sampled_from(["firmware.toml", "../firmware.toml", "a", "../../x", "/etc/passwd"]),
)
def test_hostile_member_names_load_inside_the_root_or_are_rejected(fmt: str, name: str, kind: str, target: str) -> None:
    if fmt == "zip" and kind == "hard":
        kind = "file"
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        source, work = base / f"bundle.{fmt}", base / "work"
        try:
            build_archive(source, fmt, name, kind, target)
        except (ValueError, UnicodeError, tarfile.TarError):
            event("archive writer refused the member")
            return
        try:
            bundle = load_bundle(source, LIMITS, work)
        except BundleError as exc:
            event(f"rejected: {str(exc).split(': ')[-1][:40]}")
            assert list(work.iterdir()) == []
        else:
            event(f"loaded {kind}")
            staging = os.path.realpath(bundle.staging_dir)
            files_real = os.path.realpath(bundle.files_dir)
            for path in walk(bundle.staging_dir):
                if path.is_symlink():
                    assert os.path.commonpath([os.path.realpath(path), files_real]) == files_real
                else:
                    assert os.path.commonpath([os.path.realpath(path), staging]) == staging
                    mode = path.lstat().st_mode
                    assert stat.S_ISDIR(mode) or stat.S_ISREG(mode)
                    assert not mode & (stat.S_ISUID | stat.S_ISGID | 0o022)
                if path.is_file() and not path.is_symlink() and path.name != "firmware.toml":
                    assert path.read_bytes() in (b"payload", MANIFEST.encode())  # a hard link may copy either
            bundle.cleanup()
            assert list(work.iterdir()) == []
        assert sorted(p.name for p in base.iterdir()) == sorted([source.name, "work"])


# -- valid bundles round-trip ----------------------------------------------------------

components = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,11}", fullmatch=True)
FileSpec = tuple[bytes, bool] | str  # (content, executable), or a symlink's target
trees = st.recursive(
    st.tuples(st.binary(max_size=300), st.booleans(), st.booleans()),
    lambda children: st.dictionaries(components, children, max_size=4),
    max_leaves=12,
).filter(lambda t: isinstance(t, dict))
absolute = st.lists(components, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p))
safe_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
env_pairs = st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), safe_text, max_size=3)


@st.composite
def manifests(draw: st.DrawFn) -> tuple[Manifest, dict[str, bytes]]:
    """A valid manifest plus the extra files (APKs) it needs."""
    firmware = Firmware(
        name=draw(st.from_regex(NAME_RE, fullmatch=True)),
        version=draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,20}", fullmatch=True)),
        profile=draw(st.sampled_from(["twin", "android"])),
        description=draw(st.none() | safe_text),
    )
    services: list[Service] = []
    apps: list[App] = []
    extra: dict[str, bytes] = {}
    if firmware.profile == "twin":
        for name in draw(st.lists(st.from_regex(NAME_RE, fullmatch=True), max_size=3, unique=True)):
            env = draw(env_pairs)
            services.append(
                Service(
                    name=name,
                    exec=(draw(absolute), *draw(st.lists(safe_text, max_size=3))),
                    user=draw(st.sampled_from(["system", "root", "shell"])),
                    env=tuple(env.items()),
                    cwd=draw(st.none() | absolute),
                )
            )
    else:
        for name in draw(st.lists(components, max_size=3, unique=True)):
            apps.append(App(path=f"apps/{name}.apk"))
            extra[f"apps/{name}.apk"] = draw(st.binary(max_size=100))
    return Manifest(firmware=firmware, services=tuple(services), apps=tuple(apps)), extra


def manifest_toml(manifest: Manifest) -> str:
    fw = manifest.firmware
    firmware: dict[str, Any] = {"name": fw.name, "version": fw.version, "profile": fw.profile}
    if fw.description is not None:
        firmware["description"] = fw.description
    data: dict[str, Any] = {"firmware": firmware}
    if manifest.services:
        data["services"] = []
        for s in manifest.services:
            entry: dict[str, Any] = {"name": s.name, "exec": list(s.exec), "user": s.user, "env": dict(s.env)}
            if s.cwd is not None:
                entry["cwd"] = s.cwd
            data["services"].append(entry)
    if manifest.apps:
        data["apps"] = [{"path": a.path} for a in manifest.apps]
    return toml_document(data)


def flatten(tree: dict[str, Any], prefix: str) -> Iterator[tuple[str, FileSpec | None]]:
    """Directories (None), files, and for every file ``x`` with ``link`` set a sibling ``x.lnk -> x``."""
    for name, node in tree.items():
        path = f"{prefix}/{name}"
        if isinstance(node, dict):
            yield path, None
            yield from flatten(node, path)
        else:
            content, executable, link = node
            yield path, (content, executable)
            if link and f"{name}.lnk" not in tree:
                yield f"{path}.lnk", name


def write_bundle(base: Path, fmt: str, wrapper: str, entries: list[tuple[str, FileSpec | None]]) -> Path:
    """Write entries (bundle-relative path -> (content, exec) or None for a dir) in ``fmt``."""
    if fmt == "directory":
        root = base / "src"
        root.mkdir()
        for rel, spec in entries:
            if spec is None:
                (root / rel).mkdir(parents=True, exist_ok=True)
            elif isinstance(spec, str):
                (root / rel).symlink_to(spec)
            else:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(spec[0])
                (root / rel).chmod(0o755 if spec[1] else 0o644)
        return root
    source = base / f"bundle.{fmt}"
    if fmt == "zip":
        with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, spec in entries:
                if spec is None:
                    zf.writestr(wrapper + rel + "/", b"")
                    continue
                zinfo = zipfile.ZipInfo(wrapper + rel)
                zinfo.create_system = 3
                if isinstance(spec, str):
                    zinfo.external_attr = (stat.S_IFLNK | 0o777) << 16
                    zf.writestr(zinfo, spec.encode())
                else:
                    zinfo.external_attr = (stat.S_IFREG | (0o755 if spec[1] else 0o644)) << 16
                    zf.writestr(zinfo, spec[0])
        return source
    with tarfile.open(source, "w:gz" if fmt == "tar.gz" else "w") as tar:
        for rel, spec in entries:
            info = tarfile.TarInfo(wrapper + rel)
            if spec is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(spec, str):
                info.type, info.linkname = tarfile.SYMTYPE, spec
                tar.addfile(info)
            else:
                info.size, info.mode = len(spec[0]), 0o755 if spec[1] else 0o644
                tar.addfile(info, io.BytesIO(spec[0]))
    return source


@examples(100)
@given(
    spec=manifests(),
    tree=trees,
    fmt=st.sampled_from(["directory", "tar", "tar.gz", "zip"]),
    wrapped=st.booleans(),
)
def test_valid_bundles_round_trip(
    spec: tuple[Manifest, dict[str, bytes]], tree: dict[str, Any], fmt: str, wrapped: bool
) -> None:
    manifest, extra = spec
    wrapper = "pkg/" if wrapped and fmt != "directory" else ""
    entries: list[tuple[str, FileSpec | None]] = [("firmware.toml", (manifest_toml(manifest).encode(), False))]
    entries += [(path, (data, False)) for path, data in extra.items()]
    entries += [("files", None), *flatten(tree, "files")]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        source = write_bundle(base, fmt, wrapper, entries)
        with load_bundle(source, LIMITS, base / "work") as bundle:
            assert bundle.manifest == manifest
            got: dict[str, FileSpec | None] = {}
            for directory in bundle.directories():
                got[directory] = None
            for link in bundle.symlinks():
                got[link.device_path] = link.target
            for entry in bundle.files():
                assert entry.mode in (0o644, 0o755)
                assert stat.S_ISREG(entry.host_path.lstat().st_mode)
                got[entry.device_path] = (entry.host_path.read_bytes(), entry.mode == 0o755)
            assert got == {path.removeprefix("files"): node for path, node in flatten(tree, "files")}
            for app in manifest.apps:
                assert bundle.app_path(app).read_bytes() == extra[app.path]
            if fmt == "directory":
                with load_bundle(source, LIMITS, base / "work") as again:
                    assert again.sha256 == bundle.sha256
            else:
                assert bundle.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        assert list((base / "work").iterdir()) == []


def test_toml_writer_handles_special_floats() -> None:
    assert tomllib.loads(toml_document({"a": math.inf, "b": -0.0}))["a"] == math.inf
