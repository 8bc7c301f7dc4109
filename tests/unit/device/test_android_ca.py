"""Android CA file naming (OpenSSL's subject_hash_old, computed in Python and
checked against the ``openssl`` binary) and the CA installation commands."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from sandbox.device.certhash import CertError, android_ca_name, pem_to_der, subject_der, subject_hash_old
from sandbox.device.trust_android import (
    APEX_CACERTS,
    SYSTEM_CACERTS,
    apex_inject_script,
    system_store_commands,
    uses_apex_store,
    zygote_view_command,
)

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _make_cert(tmp: Path, subj: str, key: str = "rsa:2048", extra: list[str] | None = None) -> bytes:
    out = tmp / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", key, "-nodes", "-keyout", str(tmp / "k.pem"),
                    "-out", str(out), "-days", "2", "-subj", subj, *(extra or [])],
                   check=True, capture_output=True)
    return out.read_bytes()


def _openssl_hash(tmp: Path, pem: bytes) -> str:
    (tmp / "h.pem").write_bytes(pem)
    return subprocess.run(["openssl", "x509", "-in", str(tmp / "h.pem"), "-noout", "-subject_hash_old"],
                          check=True, capture_output=True, text=True).stdout.strip()


@needs_openssl
@pytest.mark.parametrize("subj,key", [
    ("/CN=mitmproxy/O=mitmproxy", "rsa:2048"),
    ("/C=US/ST=CA/L=Mountain View/O=Honeyphone Test/OU=analysis 1a2b3c/CN=honeyphone fakenet CA", "rsa:2048"),
    ("/CN=\u00e9t\u00e9 CA/O=Unicode \u00c5", "rsa:1024"),
    ("/CN=ec ca", "ec:-pkeyopt ec_paramgen_curve:prime256v1"),
])
def test_subject_hash_old_matches_openssl(tmp_path: Path, subj: str, key: str) -> None:
    if key.startswith("ec:"):
        pem = _make_cert(tmp_path, subj, "ec", ["-pkeyopt", "ec_paramgen_curve:prime256v1"])
    else:
        pem = _make_cert(tmp_path, subj, key, ["-utf8"] if "\u00e9" in subj else None)
    assert subject_hash_old(pem) == _openssl_hash(tmp_path, pem)
    assert subject_hash_old(pem_to_der(pem)) == subject_hash_old(pem)


@needs_openssl
def test_subject_is_the_subject_not_the_issuer(tmp_path: Path) -> None:
    ca = _make_cert(tmp_path, "/CN=root")
    (tmp_path / "ca.pem").write_bytes(ca)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "l.key"),
                    "-out", str(tmp_path / "l.csr"), "-subj", "/CN=leaf/O=Other"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(tmp_path / "l.csr"), "-CA", str(tmp_path / "ca.pem"),
                    "-CAkey", str(tmp_path / "k.pem"), "-CAcreateserial", "-out", str(tmp_path / "leaf.pem"),
                    "-days", "1"], check=True, capture_output=True)
    leaf = (tmp_path / "leaf.pem").read_bytes()
    assert subject_hash_old(leaf) == _openssl_hash(tmp_path, leaf) != subject_hash_old(ca)


def test_android_file_name_skips_taken_names() -> None:
    pem = (Path(__file__).parent / "fixtures" / "ca" / "mitm-ca.pem").read_bytes()
    h = subject_hash_old(pem)
    assert android_ca_name(pem) == f"{h}.0"
    assert android_ca_name(pem, {f"{h}.0", "aaaaaaaa.0"}) == f"{h}.1"
    assert android_ca_name(pem, {f"{h}.0", f"{h}.1"}) == f"{h}.2"


@pytest.mark.parametrize("bad", [b"", b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
                                 b"\x30\x03\x02\x01\x01", b"\x31\x00"])
def test_garbage_is_rejected(bad: bytes) -> None:
    with pytest.raises(CertError):
        subject_hash_old(bad)


def test_subject_der_of_fixture() -> None:
    pem = (Path(__file__).parent / "fixtures" / "ca" / "mitm-ca.pem").read_bytes()
    subj = subject_der(pem_to_der(pem))
    assert subj[0] == 0x30 and b"Honeyphone fixture CA" in subj


def test_store_by_api_level() -> None:
    assert [uses_apex_store(a) for a in (30, 33, 34, 35)] == [False, False, True, True]


def test_system_store_commands() -> None:
    cmds = system_store_commands("1a2b3c4d.0", "/data/local/tmp/honeyphone-ca/ca.pem")
    assert cmds == [
        f"cp /data/local/tmp/honeyphone-ca/ca.pem {SYSTEM_CACERTS}/1a2b3c4d.0",
        f"chown root:root {SYSTEM_CACERTS}/1a2b3c4d.0",
        f"chmod 644 {SYSTEM_CACERTS}/1a2b3c4d.0",
        f"chcon u:object_r:system_file:s0 {SYSTEM_CACERTS}/1a2b3c4d.0",
    ]


def test_apex_script_mounts_in_every_zygote_namespace() -> None:
    script = apex_inject_script("1a2b3c4d.0", "/data/local/tmp/honeyphone-ca/ca.pem")
    lines = script.splitlines()
    # the old CAs come from the APEX (the store apps really use) before ours is added
    assert f"cp {APEX_CACERTS}/*" in script and "1a2b3c4d.0" in script
    assert any(line.startswith("if ! grep -q") and "mount -t tmpfs tmpfs" in line for line in lines)  # idempotent
    assert f"chcon u:object_r:system_file:s0 {SYSTEM_CACERTS} {SYSTEM_CACERTS}/*" in lines
    assert "for Z in $(pidof zygote) $(pidof zygote64); do" in lines
    bind = f"--mount=/proc/$Z/ns/mnt -- /bin/mount --bind {SYSTEM_CACERTS} {APEX_CACERTS}"
    assert any(bind in line for line in lines)
    assert any("ps -o PID -P $Z" in line for line in lines)
    assert any("--mount=/proc/$P/ns/mnt" in line for line in lines)
    # the script is valid POSIX shell
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)
    assert "Z=$(pidof zygote64 || pidof zygote)" in zygote_view_command("x.0")
    assert shlex.split(zygote_view_command("1a2b3c4d.0"))[-1].endswith(f"{APEX_CACERTS}/1a2b3c4d.0")
