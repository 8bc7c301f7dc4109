"""The campaign as JUnit XML, so CI (Jenkins, GitLab, GitHub) shows leaks as failed tests.

One ``<testsuite>`` (inside ``<testsuites>``, which every reader accepts),
one ``<testcase>`` per firmware version named ``<name> <version>``: a leak is
a ``<failure>``, an analysis that could not complete is an ``<error>``
(the CI run then says "broken", not "firmware is bad"), clean and suspicious
versions pass (suspicious ones say why in ``<system-out>``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from .diff import group_leaks
from .model import Campaign, VersionResult

SUITE_NAME = "honeyphone campaign"
# Characters XML 1.0 cannot carry at all; a firmware's error text may hold them.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _testcase(suite: ET.Element, r: VersionResult, baseline: bool) -> None:
    case = ET.SubElement(suite, "testcase", {
        "name": _clean(r.label), "classname": _clean(f"honeyphone.{r.name}"), "file": _clean(r.bundle),
        "time": f"{r.seconds:.3f}",
    })
    out = [f"bundle: {r.bundle}", f"analysis: {r.analysis_id or '-'}"]
    if baseline:
        out.append("role: baseline")
    if r.completed and r.verdict is not None:
        out.append(f"verdict: {r.verdict.value}")
        out.extend(f"destination: {d}" for d in r.destinations)
    out.extend(f"report: {path}" for _, path in sorted(r.files.items()))
    if not r.completed:
        err = ET.SubElement(case, "error", {"message": _clean(r.error or "the analysis did not complete"),
                                           "type": "incomplete"})
        err.text = _clean(r.error or "the analysis did not complete")
    elif r.verdict is not None and r.verdict.value == "leak":
        fail = ET.SubElement(case, "failure", {"message": _clean(f"leak: {group_leaks(r.leak_set)}"), "type": "leak"})
        fail.text = _clean("\n".join([f"{r.findings} finding(s)", *(d.describe() for d in r.leaks)]))
    elif r.verdict is not None and r.verdict.value == "suspicious":
        out.extend(f"suspicious: {reason}" for reason in r.reasons)
    ET.SubElement(case, "system-out").text = _clean("\n".join(out))


def render_junit(campaign: Campaign, timestamp: datetime | None = None, hostname: str = "") -> str:
    """The JUnit XML document (UTF-8 text with an XML declaration)."""
    results = campaign.results
    when = (timestamp or datetime.now(timezone.utc)).replace(microsecond=0)
    failures = sum(1 for r in results if r.completed and r.verdict is not None and r.verdict.value == "leak")
    errors = sum(1 for r in results if not r.completed)
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": str(errors), "skipped": "0",
              "time": f"{sum(r.seconds for r in results):.3f}"}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": SUITE_NAME, **counts, "timestamp": when.isoformat(), "hostname": hostname or "localhost",
        "id": "0",
    })
    props = ET.SubElement(suite, "properties")
    s = campaign.scenario
    for key, value in (("campaign", campaign.campaign_id), ("scenario.hours", f"{s.hours:g}"),
                       ("scenario.seed", str(s.seed)), ("scenario.contacts", str(s.contacts)),
                       ("scenario.sms", str(s.sms)), ("scenario.calls", str(s.calls)),
                       ("scenario.locale", s.locale), ("scenario.profile", s.profile),
                       ("baseline", campaign.baseline.label if campaign.baseline else "")):
        ET.SubElement(props, "property", {"name": key, "value": _clean(value)})
    for r in results:
        _testcase(suite, r, r is campaign.baseline)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
