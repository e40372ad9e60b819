"""The monthly newsletter's computed parts: highlights from the month's events and the important
dates ahead, from the program's policy. Pure: no I/O."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from shared.contracts.program import ProgramPolicy
from shared.errors import DomainError

PIP_STAGE_COUNT = 3


@dataclass(frozen=True)
class ActivityFact:
    """One countable happening: kind meeting | pip | pip_stage | match | recognition."""

    kind: str
    month: str
    minutes: int = 0
    detail: str = ""


def parse_month(month: str) -> tuple[int, int]:
    try:
        year_s, month_s = month.split("-")
        year, number = int(year_s), int(month_s)
        if len(year_s) != 4 or len(month_s) != 2 or not 1 <= number <= 12:
            raise ValueError
    except ValueError as exc:
        raise DomainError("month", "must be a month written YYYY-MM", "invalid_month") from exc
    return year, number


def month_name(month: str) -> str:
    year, number = parse_month(month)
    return f"{calendar.month_name[number]} {year}"


def next_month_start(month: str) -> date:
    year, number = parse_month(month)
    return date(year + (number == 12), number % 12 + 1, 1)


def first_working_day(year: int, month: int) -> date:
    day = date(year, month, 1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def pay_day_for(policy: ProgramPolicy, month: str) -> date:
    """The day the month's work is paid: early in the following month."""
    start = next_month_start(month)
    if policy.pay.pay_day == "first_working_day":
        return first_working_day(start.year, start.month)
    last = calendar.monthrange(start.year, start.month)[1]
    return date(start.year, start.month, min(int(policy.pay.pay_day), last))


def highlights(facts: Iterable[ActivityFact], month: str, names: dict[str, str]) -> dict[str, Any]:
    """Meetings held (and hours), PIPs completed, new matches, recognitions in `month`.

    A PIP counts in the month of its last stage (all three stages done); a book study counts as
    one PIP. `names` maps person ids to names for recognitions."""
    facts = list(facts)
    meetings = [f for f in facts if f.kind == "meeting" and f.month == month]
    stages: dict[str, list[str]] = {}
    for f in facts:
        if f.kind == "pip_stage":
            stages.setdefault(f.detail, []).append(f.month)
    pips = sum(1 for months in stages.values() if len(months) >= PIP_STAGE_COUNT and max(months) == month)
    pips += sum(1 for f in facts if f.kind == "pip" and f.month == month)
    recognitions = []
    for f in facts:
        if f.kind == "recognition" and f.month == month:
            nominee, _, reason = f.detail.partition("\t")
            who = names.get(nominee, nominee)
            recognitions.append(f"{who}: {reason}" if reason else who)
    minutes = sum(f.minutes for f in meetings)
    return {
        "meetings": len(meetings),
        "meeting_hours": f"{minutes / 60:.1f}",
        "pips": pips,
        "matches": sum(1 for f in facts if f.kind == "match" and f.month == month),
        "recognitions": sorted(recognitions),
    }


def important_dates(
    policy: ProgramPolicy, month: str, staff_dates: Sequence[tuple[date, str]] = (), horizon_days: int = 62
) -> list[dict[str, str]]:
    """Dates from the start of the next month to `horizon_days` later: pay day, semester ends
    (the PIP deadline), the end of the school year, and dates staff added."""
    start = next_month_start(month)
    end = start + timedelta(days=horizon_days)
    found: list[tuple[date, str]] = [(pay_day_for(policy, month), f"pay day for {month_name(month)}")]
    per_semester = policy.cadence.pips_per_semester
    for semester in policy.school_year.semesters:
        if start <= semester.end <= end:
            what = f"{semester.name} semester ends"
            if per_semester:
                what += f": last day to complete {per_semester} PIPs for the semester"
            found.append((semester.end, what))
    if start <= policy.school_year.end <= end:
        found.append((policy.school_year.end, "school year ends"))
    found.extend((d, what) for d, what in staff_dates if start <= d <= end or d.strftime("%Y-%m") == month)
    return [{"date": d.isoformat(), "what": what} for d, what in sorted(found)]
