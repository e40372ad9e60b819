"""Program health figures from the activity service's own records. Pure: no I/O.

Months are the program's local months; hours are exact (Decimal, 2 places); a PIP is completed
when its `application` stage is recorded, counted in the semester of that day.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import Any

from services.activity.domain.calendar import month_of_instant, semester_of
from shared.contracts.program import SchoolYear

STATUSES = ("on_track", "behind", "at_risk")


@dataclass(frozen=True)
class MeetingFact:
    started_at: datetime
    minutes: int
    intentional: bool


def hours(minutes: int) -> str:
    return str((Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def meetings_per_month(meetings: Iterable[MeetingFact], tz: str) -> list[dict[str, Any]]:
    count: Counter[str] = Counter()
    intentional: Counter[str] = Counter()
    minutes: Counter[str] = Counter()
    for m in meetings:
        month = month_of_instant(m.started_at, tz)
        count[month] += 1
        intentional[month] += int(m.intentional)
        minutes[month] += m.minutes
    return [{"month": month, "meetings": count[month], "intentional_meetings": intentional[month],
             "hours": hours(minutes[month])} for month in sorted(count)]


def pips_completed_per_semester(completions: Iterable[tuple[date, str]], school_year: SchoolYear
                                ) -> list[dict[str, Any]]:
    """(day, pip id) of each `application` stage -> distinct PIPs completed per semester."""
    by_semester: dict[str, set[str]] = defaultdict(set)
    for day, pip_id in completions:
        semester = semester_of(day, school_year)
        by_semester[semester.name if semester else "outside semesters"].add(pip_id)
    order = [s.name for s in school_year.semesters] + ["outside semesters"]
    return [{"semester": name, "pips_completed": len(by_semester[name])} for name in order if name in by_semester]


def time_to_first_meeting(pairs: Iterable[tuple[datetime, datetime | None]]) -> dict[str, Any]:
    """(matched at, first meeting at or None) per partnership -> days from match to first meeting."""
    days: list[float] = []
    waiting = 0
    for matched_at, first in pairs:
        if first is None:
            waiting += 1
        else:
            days.append(max(0.0, (first - matched_at).total_seconds() / 86400))
    return {"partnerships_met": len(days), "not_met_yet": waiting,
            "average_days": round(sum(days) / len(days), 1) if days else None,
            "median_days": round(median(days), 1) if days else None}


def status_counts(rows: Iterable[tuple[str | None, str | None]]) -> list[dict[str, Any]]:
    """(group, status) per partnership -> per group: on_track / behind / at_risk / unknown."""
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for group, status in rows:
        groups[group or "(none)"][status if status in STATUSES else "unknown"] += 1
    return [{"group": g, **{s: c[s] for s in (*STATUSES, "unknown")}, "total": sum(c.values())}
            for g, c in sorted(groups.items())]
