"""Which meetings are refused, and why (field + reason)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.activity.domain.meetings import (
    Actor,
    LoggedMeeting,
    MeetingChange,
    MeetingDraft,
    Partnership,
    validate_correction,
    validate_new_meeting,
)
from shared.errors import DomainError

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
P = Partnership("p1", "prog", "mentor-1", "mentee-1", datetime(2026, 9, 1, 15, 0, tzinfo=UTC))
MENTOR = Actor("mentor-1", "mentor")
STAFF = Actor("staff-9", "staff")


def draft(**kw: object) -> MeetingDraft:
    values: dict[str, object] = {
        "partnership_id": "p1", "started_at": NOW - timedelta(days=1), "duration_minutes": 60,
        "mode": "video", "intentional": True,
    }
    values.update(kw)
    return MeetingDraft(**values)  # type: ignore[arg-type]


def refusal(exc: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, str]]:
    return [(p["field"], p["code"]) for p in exc.value.body()["detail"]]


def test_a_valid_meeting_by_its_mentor_or_staff_is_accepted() -> None:
    assert validate_new_meeting(draft(), MENTOR, P, NOW, []) == P
    assert validate_new_meeting(draft(duration_minutes=480), STAFF, P, NOW, []) == P


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"started_at": NOW + timedelta(minutes=1)}, [("started_at", "in_future")]),
        ({"duration_minutes": 481}, [("duration_minutes", "too_long")]),
        ({"duration_minutes": 0}, [("duration_minutes", "too_short")]),
        ({"mode": "carrier pigeon"}, [("mode", "unknown_mode")]),
        ({"started_at": datetime(2026, 9, 1, 14, 59, tzinfo=UTC)}, [("started_at", "before_partnership")]),
        ({"started_at": NOW + timedelta(days=1), "duration_minutes": 600},
         [("started_at", "in_future"), ("duration_minutes", "too_long")]),
    ],
)
def test_invalid_meetings_name_the_field_and_reason(kw: dict[str, object], expected: list[tuple[str, str]]) -> None:
    with pytest.raises(DomainError) as exc:
        validate_new_meeting(draft(**kw), MENTOR, P, NOW, [])
    assert exc.value.status == 400
    assert refusal(exc) == expected
    assert all(p["reason"] for p in exc.value.body()["detail"])


def test_another_mentors_partnership_is_forbidden() -> None:
    with pytest.raises(DomainError) as exc:
        validate_new_meeting(draft(), Actor("mentor-2", "mentor"), P, NOW, [])
    assert exc.value.status == 403 and refusal(exc) == [("partnership_id", "forbidden")]
    with pytest.raises(DomainError) as exc:
        validate_new_meeting(draft(), Actor("mentee-1", "mentee"), P, NOW, [])
    assert exc.value.status == 403


def test_unknown_or_ended_partnership_is_refused() -> None:
    with pytest.raises(DomainError) as exc:
        validate_new_meeting(draft(), MENTOR, None, NOW, [])
    assert exc.value.status == 404 and refusal(exc) == [("partnership_id", "not_found")]
    ended = Partnership("p1", "prog", "mentor-1", "mentee-1", P.started_at, ended_at=NOW - timedelta(days=3))
    with pytest.raises(DomainError) as exc:
        validate_new_meeting(draft(), MENTOR, ended, NOW, [])
    assert exc.value.status == 409 and refusal(exc) == [("partnership_id", "not_active")]


def test_an_exact_duplicate_is_refused_but_a_voided_one_or_a_different_one_is_not() -> None:
    d = draft()
    logged = [LoggedMeeting("meet-1", d.fingerprint())]
    with pytest.raises(DomainError) as exc:
        validate_new_meeting(d, MENTOR, P, NOW, logged)
    assert exc.value.status == 409 and refusal(exc) == [("started_at", "duplicate")]
    assert "meet-1" in str(exc.value)
    validate_new_meeting(d, MENTOR, P, NOW, [LoggedMeeting("meet-1", d.fingerprint(), voided=True)])
    validate_new_meeting(draft(duration_minutes=61), MENTOR, P, NOW, logged)
    validate_new_meeting(draft(intentional=False), MENTOR, P, NOW, logged)


def test_a_correction_must_stay_valid_and_change_something() -> None:
    d = draft()
    fixed = validate_correction(d, MeetingChange(duration_minutes=45), MENTOR, P, NOW, [], "meet-1")
    assert fixed.duration_minutes == 45 and fixed.mode == "video"
    with pytest.raises(DomainError) as exc:
        validate_correction(d, MeetingChange(duration_minutes=500), MENTOR, P, NOW, [], "meet-1")
    assert refusal(exc) == [("duration_minutes", "too_long")]
    with pytest.raises(DomainError) as exc:
        validate_correction(d, MeetingChange(duration_minutes=60), MENTOR, P, NOW, [], "meet-1")
    assert refusal(exc) == [("body", "no_change")]
    with pytest.raises(DomainError) as exc:
        validate_correction(d, MeetingChange(voided=True), MENTOR, P, NOW, [], "meet-1")
    assert refusal(exc) == [("reason", "reason_required")]
    assert validate_correction(d, MeetingChange(voided=True, reason="logged twice"), MENTOR, P, NOW, [], "m") == d
    other = draft(duration_minutes=45)
    with pytest.raises(DomainError) as exc:
        validate_correction(d, MeetingChange(duration_minutes=45), MENTOR, P, NOW,
                            [LoggedMeeting("meet-2", other.fingerprint())], "meet-1")
    assert refusal(exc) == [("started_at", "duplicate")]
