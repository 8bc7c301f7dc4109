"""Where the twin keeps things, relative to a root.

``TWIN_ROOT`` (default ``/``) lets host-side tests run the runtime against a
temporary directory instead of a container's file system.
"""

from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    return Path(os.environ.get("TWIN_ROOT", "/"))


def under(path: str) -> Path:
    """Map an absolute device path to the real path under the twin root."""
    return root() / path.lstrip("/")


BUILD_PROP = "/system/build.prop"
DEFAULT_PROP = "/default.prop"
RUNTIME_PROPS_DIR = "/dev/__properties__"
SHELL_ENV_FILE = "/run/honeyphone/shell.env"
USER_DATA = "/data/user/0"
CONTACTS_DB = "/data/user/0/com.android.providers.contacts/databases/contacts2.db"
CALLLOG_DB = "/data/user/0/com.android.providers.contacts/databases/calllog.db"
MMSSMS_DB = "/data/user/0/com.android.providers.telephony/databases/mmssms.db"
