"""What people and programs read of an analysis: the report's versioned
JSON Schema (``schema/report-v1.schema.json``), its validation, and the
self-contained HTML rendering.

Submodules are imported where used (``sandbox.report.validate``,
``sandbox.report.html``): importing this package loads nothing, so the
schema file and ``jsonschema`` cost nothing to code that never validates.
"""
