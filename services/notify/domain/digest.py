"""The metamentor digest: a caseload with each partnership's status and what changed. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from services.notify.domain.messages import STATUS_WORDS

SEVERITY = {"at_risk": 0, "behind": 1, "on_track": 2}


@dataclass(frozen=True)
class CaseloadEntry:
    partnership_id: str
    mentor_name: str
    mentee_name: str
    status: str
    changes: Sequence[str] = field(default_factory=tuple)
    ended: bool = False


def digest_due(today: date, weekday: int) -> bool:
    return today.weekday() == weekday


def week_window(now: datetime) -> tuple[datetime, datetime]:
    return now - timedelta(days=7), now


def digest_facts(entries: Sequence[CaseloadEntry], week_ending: date) -> dict[str, Any]:
    """Facts of one digest: the most urgent partnerships first, then by mentor."""
    ordered = sorted(entries, key=lambda e: (SEVERITY.get(e.status, 3), e.mentor_name, e.mentee_name))
    counts = {s: sum(1 for e in entries if e.status == s) for s in SEVERITY}
    return {
        "week_ending": week_ending.isoformat(),
        "counts": counts,
        "partnerships": [
            {
                "partnership_id": e.partnership_id, "mentor_name": e.mentor_name, "mentee_name": e.mentee_name,
                "status": e.status, "status_words": "ended" if e.ended else STATUS_WORDS.get(e.status, e.status),
                "changes": list(e.changes),
            }
            for e in ordered
        ],
        "people": {},
    }
