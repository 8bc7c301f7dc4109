"""Firmware bundles: the format, its strict manifest, and a hostile-input-safe loader.

Public API::

    load_bundle(source: Path, limits: BundleLimits, workdir: Path) -> Bundle
    validate_manifest(text: bytes | str, *, limits: BundleLimits | None = None) -> Manifest
    Bundle.files() -> Iterator[FileEntry]        # regular files: (device_path, host_path, mode)
    Bundle.symlinks() -> Iterator[SymlinkEntry]  # (device_path, target)
    Bundle.directories() -> Iterator[str]        # device paths, parents first
    Bundle.cleanup() -> None                     # also: ``with load_bundle(...) as b:``

Format decisions (the loader rejects anything else with ``BundleError``,
whose text is ``"<offending path>: <problem>"``; nothing is left in
``workdir``):

* **Layout.**  The bundle root holds ``firmware.toml`` (a regular file) and
  optionally ``files/`` (a real directory), whose contents go onto the device
  at the same paths.  Other entries (``apps/``, a README) are allowed, checked
  like everything else, staged, and not installed.
* **Sources.**  A directory is the root itself.  An archive may hold the root
  at its top *or* inside exactly one top-level directory with nothing beside
  it (``tar czf fw.tgz fw/`` and ``tar czf fw.tgz -C fw .`` both work).  The
  format is detected from magic bytes -- gzip-compressed tar, plain
  ustar/pax/GNU tar, or zip -- and the file name is ignored.  bzip2/xz/zstd,
  encrypted zips and zip methods other than stored/deflated are refused.
* **Names.**  Relative, '/'-separated, valid UTF-8, no control characters,
  no backslashes, no drive letters, and no ``..`` component at all (even one
  that would normalise back inside).  ``.`` and empty components are dropped,
  so ``./files/x`` is fine.  Components are at most 255 bytes, paths 1024
  characters.  Two members with the same normalised name are refused.
* **Links.**  Symlinks are kept as symlinks only inside ``files/``, only with
  relative targets, and only if they resolve (checked on the staged tree,
  following chains) inside ``files/``; rewrite absolute firmware links as
  relative ones.  Tar hard links must name an earlier regular member and are
  staged as independent copies that count against the size limits.  In a
  directory source a hard-linked file is accepted only if all of its links
  are inside the bundle.  Device nodes, fifos, sockets and sparse files are
  refused.  :meth:`Bundle.files` yields regular files only (mode = permission
  bits); links come separately from :meth:`Bundle.symlinks` so an installer
  that only pushes files can never follow one.
* **Permissions.**  Regular files become 0644, or 0755 if the owner exec bit
  was set; directories 0755.  setuid/setgid/sticky, group/other write and
  ownership are dropped (stricter than tarfile's ``data`` filter).
* **Limits** (``BundleLimits``).  ``max_files`` counts every entry (files,
  directories, links, even ``./``).  ``max_depth`` counts components from the
  bundle root (``files/a/b`` is 3), not counting an archive's wrapper
  directory.  Sizes are checked from headers first, then counted while
  copying -- a lying header cannot get more than the limit onto disk -- and
  an archive file larger than any bundle within the limits could be is
  refused before it is read.  Tar metadata (pax/long-name headers) is capped
  at 1 MiB between members.
* **Manifest.**  Unknown keys are errors at every level; a dotted key of more
  than 16 parts is refused before parsing (``tomllib`` is quadratic in them).  ``firmware.name``
  and service names match ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``; versions
  ``[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}``.  ``exec[0]`` and ``cwd`` are absolute
  device paths without ``..``; ``env`` keys are shell variable names.  The
  profile rule is strict: ``twin`` bundles may not list ``apps`` and
  ``android`` bundles may not list ``services``.  ``apps.path`` is relative to
  the bundle root, ends in ``.apk``, and must be a regular file reached
  through real directories (no symlinks).
* **Hash.**  ``Bundle.sha256`` is the sha256 of the archive file's bytes, or
  for a directory the tree hash defined in ``tree.py`` (paths, kinds, the
  exec bit, content hashes and link targets; not owners or timestamps).

Importing this package only defines names.
"""

from .loader import load_bundle
from .manifest import validate_manifest
from .model import App, Bundle, FileEntry, Firmware, Manifest, Profile, Service, SymlinkEntry, User

__all__ = [
    "App",
    "Bundle",
    "FileEntry",
    "Firmware",
    "Manifest",
    "Profile",
    "Service",
    "SymlinkEntry",
    "User",
    "load_bundle",
    "validate_manifest",
]
