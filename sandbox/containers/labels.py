"""Labels put on every Docker object an analysis creates.

Cleanup finds leftovers of crashed runs by these labels alone, so nothing an
analysis creates may go unlabelled.
"""

from __future__ import annotations

from ..settings import Settings


def analysis_labels(settings: Settings, analysis_id: str, role: str) -> dict[str, str]:
    return {
        settings.label_prefix: "1",
        settings.label_analysis: analysis_id,
        settings.label_role: role,
    }


def analysis_filter(settings: Settings, analysis_id: str | None) -> dict[str, list[str]]:
    """A Docker ``filters`` dict matching one analysis, or every Honeyphone object."""
    if analysis_id is None:
        return {"label": [settings.label_prefix]}
    return {"label": [f"{settings.label_analysis}={analysis_id}"]}
