"""Planting the default canary set on the real twin, and read-back catching loss."""

from __future__ import annotations

import pytest

from sandbox.canary import CanarySpec, generate
from sandbox.core.planting import SMS, plant, verify
from sandbox.device.twin import TwinHandle
from sandbox.errors import PlantingError

pytestmark = pytest.mark.integration


def test_plant_default_set_and_read_back(twin: TwinHandle) -> None:
    canaries = generate(CanarySpec(seed=7, analysis_id=twin.analysis_id))
    report = plant(twin.device, canaries)
    assert (report.contacts, report.sms, report.calls) == (25, 40, 30)
    rows = twin.device.content_query(SMS, ["body"])
    assert {r["body"] for r in rows} == {s.body for s in canaries.sms}


def test_silently_lost_plant_fails_clearly(twin: TwinHandle) -> None:
    canaries = generate(CanarySpec(seed=8, analysis_id=twin.analysis_id, contacts=3, sms=4, calls=3))
    plant(twin.device, canaries)
    victim = canaries.sms[2]
    # Like Android without the WRITE_SMS app-op: the row is gone, the command said nothing.
    twin.device.shell(["sqlite3", "/data/data/com.android.providers.telephony/databases/mmssms.db",
                       f"DELETE FROM sms WHERE body = '{victim.body.replace(chr(39), chr(39) * 2)}'"]).check()
    with pytest.raises(PlantingError, match=f"sms {victim.id}"):
        verify(twin.device, canaries)
