"""Packing a bundle directory into a deterministic archive for upload."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import BinaryIO


def pack_bundle(directory: Path, out: BinaryIO) -> None:
    """A deterministic .tar.gz of a bundle directory: same files, same bytes."""
    import gzip

    with gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = Path(root) / name
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(directory)))
                if not (info.isfile() or info.isdir() or info.issym()):
                    continue
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if info.isfile():
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
