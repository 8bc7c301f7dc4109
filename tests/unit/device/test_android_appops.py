"""``appops`` command lines and ``appops get`` output (AOSP AppOpsService shell ``get``)."""

from __future__ import annotations

import pytest

from sandbox.device import appops


def test_command_lines() -> None:
    assert appops.set_command("com.android.shell", "WRITE_SMS", "allow") == "appops set com.android.shell WRITE_SMS allow"
    assert appops.get_command("com.android.shell", "WRITE_SMS") == "appops get com.android.shell WRITE_SMS"
    with pytest.raises(ValueError):
        appops.set_command("com.android.shell", "WRITE_SMS", "yes")
    with pytest.raises(ValueError):
        appops.set_command("com.android.shell; reboot", "WRITE_SMS", "allow")


@pytest.mark.parametrize("text,allowed", [
    ("WRITE_SMS: allow\n", True),
    ("WRITE_SMS: allow; time=+1m2s3ms ago\n", True),
    ("WRITE_SMS: allow; time=+5s0ms ago; rejectTime=+1h0m0s0ms ago; duration=+12ms\n", True),
    ("WRITE_SMS: allow (running)\n", True),
    ("WRITE_SMS: ignore; rejectTime=+2s0ms ago\n", False),
    ("WRITE_SMS: deny\n", False),
    ("WRITE_SMS: default\n", False),
    ("Uid mode: WRITE_SMS: ignore\nWRITE_SMS: allow\n", False),
    ("Uid mode: WRITE_SMS: default\nWRITE_SMS: allow\n", True),
    ("No operations.\nDefault mode: ignore\n", False),
    ("No operations.\n", False),
    ("READ_SMS: allow\n", False),
])
def test_effective_mode(text: str, allowed: bool) -> None:
    assert appops.effective_allowed(text, "WRITE_SMS") is allowed


def test_parse_lines() -> None:
    text = "Uid mode: WRITE_SMS: default\nWRITE_SMS: allow; time=+1s0ms ago\nNo operations.\n"
    assert appops.parse_get_output(text) == [
        appops.OpMode("WRITE_SMS", "default", True), appops.OpMode("WRITE_SMS", "allow", False)]
    assert appops.default_mode("No operations.\nDefault mode: allow\n") == "allow"
