"""Local dates in a program's zone, as the compliance rules and the calendar read them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.clock import local_date


def test_an_instant_belongs_to_the_date_it_has_in_the_programs_zone() -> None:
    late_evening_in_chicago = datetime(2026, 11, 1, 4, 30, tzinfo=UTC)  # 23:30 on 31 October there
    assert local_date(late_evening_in_chicago, "America/Chicago") == date(2026, 10, 31)
    assert local_date(late_evening_in_chicago, "Europe/Berlin") == date(2026, 11, 1)


def test_the_offset_an_instant_carries_does_not_change_its_local_date() -> None:
    utc = datetime(2026, 3, 8, 7, 59, tzinfo=UTC)  # 23:59 on 7 March in Los Angeles (PST)
    same_instant_elsewhere = utc.astimezone(timezone(timedelta(hours=9)))
    assert local_date(same_instant_elsewhere, "America/Los_Angeles") == date(2026, 3, 7)
    assert local_date(utc + timedelta(minutes=1), "America/Los_Angeles") == date(2026, 3, 8)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2026, 11, 1, 4, 30), "America/Chicago")
