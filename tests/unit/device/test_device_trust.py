"""The twin's CA installation, pure parts: a PEM is checked before it goes
near a shell, and the CA file's path cannot leave the CA directory."""

from __future__ import annotations

import pytest

from sandbox.device.trust import check_pem, twin_ca_path

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_check_pem() -> None:
    assert check_pem(b"\n" + PEM) == PEM
    for bad in (b"", PEM + PEM, PEM + b"-----BEGIN PRIVATE KEY-----\n", b"; rm -rf /"):
        with pytest.raises(ValueError):
            check_pem(bad)


def test_twin_ca_path() -> None:
    assert twin_ca_path("abc") == "/usr/local/share/ca-certificates/honeyphone-abc.crt"
    with pytest.raises(ValueError):
        twin_ca_path("../../etc/passwd")
