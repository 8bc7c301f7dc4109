"""Making a device trust its analysis' fakenet CA, so TLS can be decrypted.

Each analysis has its own CA (generated inside its fakenet), so trusting it
on one device never helps decrypt another analysis.  On the twin the CA goes
into Debian's system store over ADB; apps that pin certificates still reject
it, which the fakenet records as a TLS failure.  The Android variant
(system CA directory, hashed names) comes with the emulator.
"""

from __future__ import annotations

import re

from .device import Device
from ..errors import DeviceError

TWIN_CA_DIR = "/usr/local/share/ca-certificates"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
PEM_END = b"-----END CERTIFICATE-----"


def twin_ca_path(analysis_id: str) -> str:
    if not _ID_RE.match(analysis_id):
        raise ValueError(f"analysis id {analysis_id!r} cannot be part of a file name")
    return f"{TWIN_CA_DIR}/honeyphone-{analysis_id}.crt"


def check_pem(pem: bytes) -> bytes:
    """Exactly one PEM certificate block, nothing else (no key, no shell text)."""
    text = pem.strip()
    if not (text.startswith(PEM_BEGIN) and text.endswith(PEM_END)) or text.count(PEM_BEGIN) != 1:
        raise ValueError("not a single PEM certificate")
    return text + b"\n"


def install_ca_twin(device: Device, pem: bytes, analysis_id: str) -> str:
    """Push the CA into the twin's system store and rebuild the bundle; returns its path."""
    path = twin_ca_path(analysis_id)
    device.push_bytes(check_pem(pem), path, mode=0o644)
    result = device.shell(["update-ca-certificates"])
    if result.exit_code != 0:
        raise DeviceError(f"update-ca-certificates failed on {device.serial}: "
                          f"{(result.error_text or result.text).strip()}")
    bundle = device.shell(["cat", "/etc/ssl/certs/ca-certificates.crt"]).check().stdout
    if check_pem(pem).strip().splitlines()[1] not in bundle:
        raise DeviceError(f"the CA was pushed to {device.serial} but is not in its system bundle")
    return path
