"""The v1 report schema: real reports (trimmed) pass, and each kind of
breakage a reader would trip over fails with the offending path named."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.core.report import REPORT_SCHEMA
from sandbox.report.validate import SCHEMA_ID, ReportSchemaError, load_schema, validate_report

DATA = Path(__file__).parent / "data"
FIXTURES = sorted(DATA.glob("*-report.json"))
ROOT = Path(__file__).resolve().parents[3]


def _load(name: str = "adups-5.3-report.json") -> dict[str, Any]:
    report: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return report


def test_fixtures_are_small_real_reports() -> None:
    assert {p.name for p in FIXTURES} == {"adups-5.3-report.json", "kitchen-sink-report.json"}
    for path in FIXTURES:
        assert path.stat().st_size <= 200_000


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_real_reports_validate(path: Path) -> None:
    validate_report(json.loads(path.read_text(encoding="utf-8")))


def test_schema_is_valid_draft_2020_12_and_matches_the_reports_id() -> None:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID == REPORT_SCHEMA
    assert schema["properties"]["$schema"] == {"const": REPORT_SCHEMA}


def test_schema_ships_as_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "report/schema/*.json" in pyproject["tool"]["setuptools"]["package-data"]["sandbox"]
    assert any(d.startswith("jsonschema") for d in pyproject["project"]["dependencies"])


# -- reports that must pass --------------------------------------------------


def test_clean_report_without_findings_validates() -> None:
    r = _load()
    r["verdict"], r["findings"] = "clean", []
    r["timeline"] = [e for e in r["timeline"] if e["event"] != "finding"]
    validate_report(r)


def test_nullable_fields_accept_null() -> None:
    r = _load()
    r["findings"][0]["process"] = None
    r["findings"][0]["destination"]["host"] = None
    r["network"]["tls_failures"] = [{"sni": None, "orig_dst": None, "error": "bad cert",
                                     "device_time": "2026-11-28T21:51:33Z"}]
    validate_report(r)


def test_artifact_names_may_hold_dots_that_are_not_segments() -> None:
    r = _load()
    for name in ("a..b", "..hidden", "dir/x..", "service-logs/a b\\c.log"):
        r["artifacts"][name] = {"sha256": "0" * 64, "bytes": 0}
    validate_report(r)


def test_unknown_keys_are_allowed_within_v1() -> None:
    """Fields are only ever added within v1: readers (and the schema) ignore unknown keys."""
    r = _load()
    r["new_section"] = {"x": 1}
    r["findings"][0]["confidence"] = 0.9
    r["timeline"].append({"event": "screen_on", "device_time": "2026-11-28T21:51:33.5+00:00"})
    validate_report(r)


# -- reports that must fail ---------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(r: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        node: Any = r
        for p in parents:
            node = node[p]
        node[last] = value
    return apply


def _delete(path: str) -> Mutation:
    def apply(r: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        node: Any = r
        for p in parents:
            node = node[p]
        del node[last]
    return apply


REQUIRED = ["$schema", "schema_version", "analysis_id", "firmware", "scenario", "verdict", "verdict_reasons",
            "findings", "timeline", "network", "syscalls", "artifacts"]

INVALID: list[tuple[str, Mutation, str]] = [
    *[(f"missing {key}", _delete(key), "$") for key in REQUIRED],
    ("wrong $schema", _set("$schema", "https://example.com/v2.json"), "$.$schema"),
    ("schema_version 2", _set("schema_version", 2), "$.schema_version"),
    ("empty analysis id", _set("analysis_id", ""), "$.analysis_id"),
    ("firmware without sha256", _delete("firmware/sha256"), "$.firmware"),
    ("firmware sha256 not hex", _set("firmware/sha256", "Z" * 64), "$.firmware.sha256"),
    ("firmware sha256 upper case", _set("firmware/sha256", "AB" * 32), "$.firmware.sha256"),
    ("scenario without seed", _delete("scenario/seed"), "$.scenario"),
    ("scenario of negative hours", _set("scenario/hours", -1), "$.scenario.hours"),
    ("scenario hours as text", _set("scenario/hours", "96"), "$.scenario.hours"),
    ("unknown verdict", _set("verdict", "pwned"), "$.verdict"),
    ("clean verdict with findings", _set("verdict", "clean"), "$.findings"),
    ("suspicious verdict with findings", _set("verdict", "suspicious"), "$.findings"),
    ("leak verdict without findings", _set("findings", []), "$.findings"),
    ("reasons not strings", _set("verdict_reasons", [1]), "$.verdict_reasons[0]"),
    ("canary kind unknown", _set("findings/0/canary/kind", "email"), "$.findings[0].canary.kind"),
    ("canary without value", _delete("findings/0/canary/value"), "$.findings[0].canary"),
    ("channel unknown", _set("findings/0/channel", "ftp"), "$.findings[0].channel"),
    ("port out of range", _set("findings/0/destination/port", 70000), "$.findings[0].destination.port"),
    ("port as text", _set("findings/0/destination/port", "443"), "$.findings[0].destination.port"),
    ("destination without host key", _delete("findings/0/destination/host"), "$.findings[0].destination"),
    ("destination without ip", _delete("findings/0/destination/ip"), "$.findings[0].destination"),
    ("encoding as a string", _set("findings/0/encoding", "gzip"), "$.findings[0].encoding"),
    ("device time without T and offset", _set("findings/0/device_time", "2026-11-28 21:51:33"),
     "$.findings[0].device_time"),
    ("device time in words", _set("findings/0/device_time", "yesterday"), "$.findings[0].device_time"),
    ("device time as epoch", _set("findings/0/device_time", 1795638932.8), "$.findings[0].device_time"),
    ("process as text", _set("findings/0/process", "python3"), "$.findings[0].process"),
    ("process without pid", _delete("findings/0/process/pid"), "$.findings[0].process"),
    ("finding without process key", _delete("findings/0/process"), "$.findings[0]"),
    ("finding without evidence", _set("findings/0/evidence", []), "$.findings[0].evidence"),
    ("evidence excerpt not text", _set("findings/0/evidence/0/excerpt", None), "$.findings[0].evidence[0].excerpt"),
    ("timeline event without device time", _delete("timeline/0/device_time"), "$.timeline[0]"),
    ("timeline device time bad", _set("timeline/0/device_time", "soon"), "$.timeline[0].device_time"),
    ("network without tls_failures", _delete("network/tls_failures"), "$.network"),
    ("bytes out negative", lambda r: r["network"]["bytes_out_per_destination"].update({"bigdata.adups.com:443": -1}),
     "$.network.bytes_out_per_destination.bigdata.adups.com:443"),
    ("syscalls without connections", _delete("syscalls/connections"), "$.syscalls"),
    ("store unknown", _set("syscalls/store_readers/0/store", "photos"), "$.syscalls.store_readers[0].store"),
    ("artifact hash bad", _set("artifacts/capture.pcap/sha256", "nope"), "$.artifacts.capture.pcap.sha256"),
    ("artifact without bytes", _delete("artifacts/capture.pcap/bytes"), "$.artifacts.capture.pcap"),
    ("artifact path escapes", lambda r: r["artifacts"].update({"../../etc/passwd": {"sha256": "0" * 64, "bytes": 1}}),
     "$.artifacts"),
    ("artifact path absolute", lambda r: r["artifacts"].update({"/etc/passwd": {"sha256": "0" * 64, "bytes": 1}}),
     "$.artifacts"),
    ("artifact path with a .. segment inside", lambda r: r["artifacts"].update({"a/../../b": {"sha256": "0" * 64,
                                                                                           "bytes": 1}}),
     "$.artifacts"),
    ("artifact path ..", lambda r: r["artifacts"].update({"..": {"sha256": "0" * 64, "bytes": 1}}), "$.artifacts"),
]


@pytest.mark.parametrize(("name", "mutate", "where"), INVALID, ids=[i[0] for i in INVALID])
def test_broken_reports_fail_naming_the_path(name: str, mutate: Mutation, where: str) -> None:
    report = _load()
    mutate(report)
    with pytest.raises(ReportSchemaError) as info:
        validate_report(report)
    paths = [p for p, _ in info.value.problems]
    assert where in paths, (paths, info.value.problems)
    assert SCHEMA_ID in str(info.value)
    assert "fix:" in str(info.value)


def test_error_lists_every_problem_but_stays_short() -> None:
    report = _load()
    for f in report["findings"]:
        f["channel"] = "carrier-pigeon"
        f["evidence"][0]["excerpt"] = "x" * 5000
        f["evidence"][0]["offset"] = "x" * 5000
    with pytest.raises(ReportSchemaError) as info:
        validate_report(report)
    err = info.value
    assert err.total >= 2 * len(report["findings"])
    assert len(err.problems) == 10
    assert f"and {err.total - 10} more" in str(err)
    assert len(str(err)) < 4000  # the 5000-character instances are not quoted whole


def test_verdict_disagreement_is_explained() -> None:
    report = _load()
    report["verdict"] = "clean"
    with pytest.raises(ReportSchemaError, match="verdict and findings disagree"):
        validate_report(report)


def test_validation_does_not_mutate_the_report() -> None:
    report = _load()
    before = copy.deepcopy(report)
    validate_report(report)
    assert report == before


def _clean(report: dict[str, Any], complete: bool) -> dict[str, Any]:
    report["verdict"], report["findings"] = "clean", []
    report["timeline"] = [e for e in report["timeline"] if e["event"] != "finding"]
    report["health"] = {"incidents": [], "detection": {
        "complete": complete, "scan": {"payloads": 3, "failed": 0, "budget_exhausted": 0 if complete else 1,
                                       "errors": [], "complete": complete},
        "sources": {"capture_error": None, "internal_errors": 0, "malformed_frames": 0, "malformed_records": 0},
        "capture_stop_error": None, "strace": {"svc.strace": {"lines": 3, "unparseable": 0}}}}
    return report


def test_clean_verdict_with_a_complete_scan_validates() -> None:
    validate_report(_clean(_load(), complete=True))


def test_clean_verdict_requires_a_complete_scan() -> None:
    with pytest.raises(ReportSchemaError) as info:
        validate_report(_clean(_load(), complete=False))
    assert "$.health.detection.complete" in [p for p, _ in info.value.problems]


def test_clean_verdict_never_rests_on_partial_findings() -> None:
    report = _clean(_load(), complete=True)
    report["findings_partial"] = True
    with pytest.raises(ReportSchemaError):
        validate_report(report)
