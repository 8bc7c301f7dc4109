"""Planting canaries through the ``content`` CLI and proving they landed.

The same code plants on the emulator and the twin: everything goes through
``Device.content_insert``-style command lines.  Inserts are batched into a few
``adb shell`` calls (each ``content`` run is a process start on the device),
then every item is read back with ``content query`` and compared field by
field.  A plant that silently did nothing -- Android drops SMS inserts
without the WRITE_SMS app-op and still exits 0 -- fails the analysis here,
before any firmware runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..canary.model import CanarySet
from ..device import content
from ..device.android import prepare_for_planting
from ..device.device import Device
from ..errors import PlantingError

RAW_CONTACTS = "content://com.android.contacts/raw_contacts"
DATA = "content://com.android.contacts/data"
SMS_INBOX = "content://sms/inbox"
SMS_SENT = "content://sms/sent"
SMS = "content://sms"
CALLS = "content://call_log/calls"
NAME_MIME = "vnd.android.cursor.item/name"
PHONE_MIME = "vnd.android.cursor.item/phone_v2"
EMAIL_MIME = "vnd.android.cursor.item/email_v2"
BATCH = 40  # commands per adb shell call; keeps the OPEN payload well under 1 MiB


@dataclass(frozen=True)
class PlantReport:
    contacts: int
    sms: int
    calls: int
    seconds: float


def _run_batch(device: Device, commands: Sequence[str], what: str) -> None:
    for i in range(0, len(commands), BATCH):
        chunk = commands[i : i + BATCH]
        # Each command's output is checked: Android's content may exit 0 on error.
        script = " && ".join(chunk)
        result = device.shell(script)
        merged = (result.text + result.error_text).strip()
        if result.exit_code != 0 or "[ERROR]" in merged or "Exception" in merged:
            raise PlantingError(f"planting {what} failed: {merged[:500] or f'exit {result.exit_code}'}")


def _sms_commands(canaries: CanarySet) -> list[str]:
    cmds = []
    for s in canaries.sms:
        uri = SMS_INBOX if s.type == 1 else SMS_SENT
        cmds.append(content.insert_command(uri, {
            "address": s.address, "body": s.body, "date": s.date_ms, "read": 1 if s.read else 0,
            "seen": 1, "type": s.type,
        }))
    return cmds


def _call_commands(canaries: CanarySet) -> list[str]:
    return [
        content.insert_command(CALLS, {
            "number": c.number, "date": c.date_ms, "duration": c.duration_s, "type": c.type, "new": 1,
        })
        for c in canaries.calls
    ]


def _plant_contacts(device: Device, canaries: CanarySet) -> None:
    # 1. raw contacts in the local account, tagged with the canary id in sourceid.
    raw = [
        content.insert_command(RAW_CONTACTS, {"account_name": "", "account_type": "", "sourceid": c.id})
        for c in canaries.contacts
    ]
    _run_batch(device, raw, "raw contacts")
    rows = device.content_query(RAW_CONTACTS, ["_id", "sourceid"])
    ids = {r["sourceid"]: r["_id"] for r in rows}
    missing = [c.id for c in canaries.contacts if c.id not in ids]
    if missing:
        raise PlantingError(f"{len(missing)} raw contacts did not land: {', '.join(missing[:5])}")
    # 2. name, phone and e-mail data rows.
    data: list[str] = []
    for c in canaries.contacts:
        rid = int(str(ids[c.id]))
        data.append(content.insert_command(DATA, {
            "raw_contact_id": rid, "mimetype": NAME_MIME, "data1": c.display_name,
            "data2": c.given_name, "data3": c.family_name, "data5": c.middle_name,
        }))
        data.append(content.insert_command(DATA, {
            "raw_contact_id": rid, "mimetype": PHONE_MIME, "data1": c.number, "data2": 2,
        }))
        if c.email:
            data.append(content.insert_command(DATA, {
                "raw_contact_id": rid, "mimetype": EMAIL_MIME, "data1": c.email, "data2": 1,
            }))
    _run_batch(device, data, "contact data")


def verify(device: Device, canaries: CanarySet) -> None:
    """Read every planted item back and compare; raise naming what is missing."""
    problems: list[str] = []
    rows = device.content_query(DATA, ["raw_contact_id", "mimetype", "data1"])
    have = {(r["mimetype"], r["data1"]) for r in rows}
    for c in canaries.contacts:
        if (NAME_MIME, c.display_name) not in have:
            problems.append(f"contact {c.id} name")
        if (PHONE_MIME, c.number) not in have:
            problems.append(f"contact {c.id} number")
    sms_rows = device.content_query(SMS, ["address", "date", "type", "body"])
    sms_have = {(r["address"], r["date"], r["type"], r["body"]) for r in sms_rows}
    for s in canaries.sms:
        if (s.address, str(s.date_ms), str(s.type), s.body) not in sms_have:
            problems.append(f"sms {s.id}")
    call_rows = device.content_query(CALLS, ["number", "date", "duration", "type"])
    call_have = {(r["number"], r["date"], r["duration"], r["type"]) for r in call_rows}
    for cl in canaries.calls:
        if (cl.number, str(cl.date_ms), str(cl.duration_s), str(cl.type)) not in call_have:
            problems.append(f"call {cl.id}")
    if problems:
        hint = "; on Android check `appops get com.android.shell WRITE_SMS`" if any(p.startswith("sms") for p in problems) else ""
        raise PlantingError(
            f"{len(problems)} planted canaries were not found on read-back: {', '.join(problems[:8])}"
            + ("…" if len(problems) > 8 else "") + hint
        )


def plant(device: Device, canaries: CanarySet, *, android: bool = False) -> PlantReport:
    """Insert every canary, then verify all of them by reading back."""
    t0 = time.monotonic()
    if android:
        prepare_for_planting(device)  # appops WRITE_SMS for the shell, set and checked
    _plant_contacts(device, canaries)
    _run_batch(device, _sms_commands(canaries), "SMS")
    _run_batch(device, _call_commands(canaries), "call log")
    verify(device, canaries)
    return PlantReport(len(canaries.contacts), len(canaries.sms), len(canaries.calls), time.monotonic() - t0)
