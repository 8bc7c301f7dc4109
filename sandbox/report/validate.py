"""Checking a report against its versioned JSON Schema.

The schema is the contract with everything that reads reports (the CLI,
the farm, people's scripts); validating every report as it is built means a
report that breaks the contract is a failed analysis with a precise message,
never a file that some reader chokes on later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from ..errors import HoneyphoneError

__all__ = ["SCHEMA_ID", "SCHEMA_RESOURCE", "ReportSchemaError", "load_schema", "validate_report"]

SCHEMA_ID = "https://honeyphone.dev/schemas/report/v1.json"
SCHEMA_RESOURCE = "report-v1.schema.json"
_MAX_LISTED = 10


class ReportSchemaError(HoneyphoneError):
    """A report does not match its schema; ``problems`` lists each violation
    as ``(json path, message)``, deepest first, at most ten."""

    def __init__(self, problems: list[tuple[str, str]], total: int) -> None:
        self.problems = problems
        self.total = total
        lines = [f"  {path}: {msg}" for path, msg in problems]
        more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__(
            f"report does not match schema {SCHEMA_ID} ({total} problem(s)):\n" + "\n".join(lines) + more,
            fix="this is a bug in the report builder: the report and the schema disagree; "
                "fix one of them (a changed shape needs a new schema version)",
        )


@cache
def load_schema() -> dict[str, Any]:
    """The v1 schema, read from package data once, on first use."""
    text = resources.files("sandbox.report").joinpath("schema", SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def validate_report(report: Mapping[str, Any]) -> None:
    """Raise :class:`ReportSchemaError` naming every violation (path and
    reason) when ``report`` does not match the v1 schema; return otherwise."""
    errors = sorted(_validator().iter_errors(report), key=lambda e: (-len(e.absolute_path), _path(e.absolute_path)))
    if not errors:
        return
    problems = [(_path(e.absolute_path), _message(e)) for e in errors[:_MAX_LISTED]]
    raise ReportSchemaError(problems, len(errors))


def _message(err: Any) -> str:
    """jsonschema's message, unless it would quote a big instance (a whole
    findings list, a long excerpt): then what failed, briefly; the path
    already says where."""
    if list(err.schema_path)[:1] == ["allOf"] and list(err.absolute_path) == ["findings"]:
        return (f"verdict and findings disagree ({len(err.instance)} finding(s)): a leak verdict needs "
                "at least one finding, clean and suspicious none")
    msg = str(err.message)
    if len(msg) <= 200:
        return msg
    return f"{_short(err.instance)} fails {err.validator!s} {_short(err.validator_value)}"


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"array of {len(value)} item(s)"
    if isinstance(value, dict):
        keys = ", ".join(sorted(str(k) for k in value)[:6])
        return f"object {{{keys}{', ...' if len(value) > 6 else ''}}}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
