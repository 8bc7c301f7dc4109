"""Record an event and the analysis state it implies in the same transaction.

Keeping the two writes together is what lets a WatchAnalysis stream and a
GetAnalysis call never disagree about where an analysis is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sandbox.model import Stage

from .events import EventBus
from .model import AnalysisRecord, EventRecord
from .store import StoreTx


@dataclass
class Journal:
    """Collects the events of one transaction; publish them after it commits."""

    tx: StoreTx
    now: float
    events: list[EventRecord] = field(default_factory=list)

    def emit(
        self, rec: AnalysisRecord, stage: Stage, message: str, device_hours: float | None = None, **changes: object
    ) -> AnalysisRecord:
        """Append the event, apply ``changes`` to the analysis, store it and return it."""
        ev = self.tx.append_event(rec.id, stage, message, device_hours, self.now)
        self.events.append(ev)
        hours = device_hours if device_hours is not None else rec.device_hours
        rec = replace(rec, stage=stage, device_hours=hours, updated_at=self.now, **changes)  # type: ignore[arg-type]
        self.tx.update_analysis(rec)
        return rec

    def publish(self, bus: EventBus) -> None:
        for ev in self.events:
            bus.publish(ev.analysis_id, ev.sequence)
