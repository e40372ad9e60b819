"""Month boundaries in the program's zone, and which entries a month close takes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.activity.domain.calendar import (
    add_months,
    month_bounds,
    month_of_instant,
    months_between,
    next_month,
    parse_month,
    previous_month,
    semester_of,
)
from services.activity.domain.month_close import (
    OpenEntry,
    close_due_at,
    latest_due_month,
    month_closed,
    months_to_close,
    select_for_close,
)
from shared.contracts.program import SchoolYear, TimeEntryKind

pytestmark = pytest.mark.unit
DENVER = "America/Denver"


def test_a_meeting_at_2330_local_on_the_31st_belongs_to_that_month() -> None:
    instant = datetime(2027, 2, 1, 6, 30, tzinfo=UTC)  # 23:30 MST on 31 January
    assert month_of_instant(instant, DENVER) == "2027-01"
    assert month_of_instant(instant, "UTC") == "2027-02"
    assert month_of_instant(datetime(2026, 12, 31, 15, 30, tzinfo=UTC), "Pacific/Auckland") == "2027-01"


def test_month_bounds_follow_daylight_saving() -> None:
    start, end = month_bounds("2026-11", DENVER)
    assert start == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # MDT, UTC-6
    assert end == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # MST, UTC-7


def test_month_arithmetic() -> None:
    assert next_month("2026-12") == "2027-01"
    assert previous_month("2027-01") == "2026-12"
    assert months_between("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert months_between("2027-02", "2027-01") == []
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2026, 1, 15), -1) == date(2025, 12, 15)
    with pytest.raises(ValueError, match="not a month"):
        parse_month("2026-1")


def test_semester_of_a_day() -> None:
    sy = SchoolYear()
    fall = semester_of(date(2027, 1, 15), sy)
    assert fall is not None and fall.name == "Fall"
    spring = semester_of(date(2027, 1, 16), sy)
    assert spring is not None and spring.name == "Spring"
    assert semester_of(date(2027, 8, 1), sy) is None


def test_close_is_due_grace_days_after_the_month_ends_in_the_zone() -> None:
    assert close_due_at("2026-11", DENVER, 3) == datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
    assert close_due_at("2026-11", "UTC", 0) == datetime(2026, 12, 1, tzinfo=UTC)
    just_before = datetime(2026, 12, 4, 6, 59, tzinfo=UTC)
    assert latest_due_month(just_before, DENVER, 3) == "2026-10"
    assert latest_due_month(datetime(2026, 12, 4, 7, 0, tzinfo=UTC), DENVER, 3) == "2026-11"


def test_months_to_close_start_after_the_last_close_or_at_the_first_entry() -> None:
    assert months_to_close("2026-09", None, "2026-11") == ["2026-10", "2026-11"]
    assert months_to_close(None, date(2026, 10, 5), "2026-11") == ["2026-10", "2026-11"]
    assert months_to_close(None, None, "2026-11") == []
    assert months_to_close("2026-11", date(2026, 1, 1), "2026-11") == []


def entry(eid: str, mentor: str, day: date, minutes: int, kind: TimeEntryKind = TimeEntryKind.PLANNING,
          voided: bool = False) -> OpenEntry:
    return OpenEntry(eid, mentor, kind, day, minutes, voided)


def test_close_takes_the_month_and_late_entries_not_later_or_voided_ones() -> None:
    entries = [
        entry("a", "m1", date(2026, 11, 30), 60),
        entry("late", "m1", date(2026, 10, 12), 30, TimeEntryKind.WORKSHOP),
        entry("next", "m1", date(2026, 12, 1), 45),
        entry("void", "m2", date(2026, 11, 3), 45, voided=True),
        entry("b", "m2", date(2026, 11, 1), 90, TimeEntryKind.MEETING),
    ]
    taken = select_for_close("2026-11", entries)
    assert {m: [(e.entry_id, e.late) for e in es] for m, es in taken.items()} == {
        "m1": [("a", False), ("late", True)],
        "m2": [("b", False)],
    }
    event = month_closed("p", "m1", "2026-11", taken["m1"])
    assert event.minutes_by_kind == {TimeEntryKind.PLANNING: 60, TimeEntryKind.WORKSHOP: 30}
    assert event.month == "2026-11" and event.aggregate_key() == "m1"
