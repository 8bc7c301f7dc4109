"""Errors the orchestrator raises on purpose; the API layer maps each to a status code.

They live here rather than in ``sandbox.errors`` because they describe the
outcome of a request (not found, over a limit, wrong state), which only the
orchestrator's callers care about.
"""

from __future__ import annotations

from sandbox.errors import HoneyphoneError


class OrchestratorError(HoneyphoneError):
    """Base class of request errors."""


class InvalidArgument(OrchestratorError):
    """A request field is malformed or out of bounds; the message names the field."""


class NotFound(OrchestratorError):
    """The analysis, firmware, worker, lease, report or artifact does not exist."""


class LimitExceeded(OrchestratorError):
    """An upload or a report is larger than the configured limit."""


class PreconditionFailed(OrchestratorError):
    """The request is valid but the object is in the wrong state for it."""


class StoreUnavailable(OrchestratorError):
    """The shared database does not answer; the request may be retried once it is back."""
