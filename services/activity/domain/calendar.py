"""The program's calendar: months, semesters and school years, always in the program's time zone.

A month is named "YYYY-MM". An instant belongs to the month of its local date in the program's
zone, so a meeting at 23:30 local on the 31st belongs to that month even when it is already the
1st in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.clock import local_date
from shared.contracts.program import SchoolYear, Semester


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_of_instant(instant: datetime, tz: str) -> str:
    return month_of(local_date(instant, tz))


def parse_month(month: str) -> date:
    """The first day of a "YYYY-MM" month; ValueError when it is not one."""
    try:
        year, mon = month.split("-")
        if len(year) != 4 or len(mon) != 2:
            raise ValueError
        return date(int(year), int(mon), 1)
    except ValueError as exc:
        raise ValueError(f"{month!r} is not a month (YYYY-MM)") from exc


def first_day(month: str) -> date:
    return parse_month(month)


def next_month(month: str) -> str:
    return month_of(add_months(parse_month(month), 1))


def previous_month(month: str) -> str:
    return month_of(add_months(parse_month(month), -1))


def last_day(month: str) -> date:
    return parse_month(next_month(month)) - timedelta(days=1)


def months_between(first: str, last: str) -> list[str]:
    """Every month from `first` to `last`, both included (empty when last < first)."""
    out: list[str] = []
    current = first
    while current <= last:
        out.append(current)
        current = next_month(current)
    return out


def add_months(day: date, months: int) -> date:
    """The same day `months` later (clamped to the end of a shorter month)."""
    index = day.year * 12 + (day.month - 1) + months
    year, mon = divmod(index, 12)
    mon += 1
    first_of_next = date(year + (mon == 12), 1 if mon == 12 else mon + 1, 1)
    return date(year, mon, min(day.day, (first_of_next - timedelta(days=1)).day))


def local_midnight(day: date, tz: str) -> datetime:
    """The instant (UTC) a local calendar day begins in the zone."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def month_bounds(month: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of the month as UTC instants."""
    return local_midnight(parse_month(month), tz), local_midnight(parse_month(next_month(month)), tz)


def semester_of(day: date, school_year: SchoolYear) -> Semester | None:
    for semester in school_year.semesters:
        if semester.start <= day <= semester.end:
            return semester
    return None


def in_school_year(day: date, school_year: SchoolYear) -> bool:
    return school_year.start <= day <= school_year.end
