"""An android bundle around the fixture APK, for the offline Android tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.bundle import Bundle, load_bundle
from sandbox.settings import Settings

APK = Path(__file__).resolve().parent / "fixtures" / "apk" / "fota-fixture.apk"
PACKAGE = "com.honeyphone.fixture.fota"


@contextmanager
def fota_bundle(tmp: Path, apk_name: str = "Fota.apk") -> Iterator[Bundle]:
    """A loaded bundle (profile android) whose one app is the fixture APK at ``apps/<apk_name>``."""
    src = tmp / "fw"
    (src / "apps").mkdir(parents=True)
    shutil.copy(APK, src / "apps" / apk_name)
    (src / "firmware.toml").write_text(
        '[firmware]\nname = "fota"\nversion = "1"\nprofile = "android"\n\n'
        f'[[apps]]\npath = "apps/{apk_name}"\n')
    bundle = load_bundle(src, Settings().bundle_limits, tmp / "work")
    try:
        yield bundle
    finally:
        bundle.cleanup()
