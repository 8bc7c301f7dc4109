"""Honeyphone: a behavioral sandbox that catches phone firmware stealing personal data.

The import package is ``sandbox``; the distribution and CLI are ``honeyphone``.
Layers point one way, outermost first: cli -> campaign -> api -> orchestrator
-> core -> detect/clock/canary -> adapters (containers, device, network, images)
-> formats (bundle, monitor, report) -> settings/errors; docs/architecture.md
has the table and tests/unit/test_layering.py enforces it.  Nothing here runs
at import time.
"""

__version__ = "0.1.0"
