"""Time entries (planning capped by workshops) and activities (PIP stages, book studies...)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.activity.domain.activities import (
    ActivityDraft,
    ActivityFact,
    completed_pip_dates,
    pip_progress,
    validate_activity,
)
from services.activity.domain.time_entries import (
    TimeEntryDraft,
    WorkshopEntry,
    check_fields,
    check_planning_cap,
    check_workshop_shrink,
    planning_allowance,
)
from shared.contracts.program import TimeEntryKind
from shared.errors import DomainError

pytestmark = pytest.mark.unit
TODAY = date(2026, 11, 20)
K = TimeEntryKind


def codes(exc: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, str]]:
    return [(p["field"], p["code"]) for p in exc.value.body()["detail"]]


def entry(**kw: object) -> TimeEntryDraft:
    values: dict[str, object] = {"mentor_id": "m1", "program_id": "p", "kind": K.PLANNING,
                                 "work_date": TODAY, "minutes": 60}
    values.update(kw)
    return TimeEntryDraft(**values)  # type: ignore[arg-type]


def test_entry_fields() -> None:
    check_fields(entry(), TODAY)
    check_fields(entry(kind=K.MEETING), TODAY, manual=False)
    with pytest.raises(DomainError) as exc:
        check_fields(entry(kind=K.MEETING, minutes=0, work_date=date(2026, 11, 21)), TODAY)
    assert codes(exc) == [("kind", "meeting_via_log"), ("minutes", "too_short"), ("work_date", "in_future")]
    with pytest.raises(DomainError) as exc:
        check_fields(entry(kind=K.TRAVEL, minutes=24 * 60 + 1, workshop_entry_id="w"), TODAY)
    assert codes(exc) == [("minutes", "too_long"), ("workshop_entry_id", "not_planning")]


def test_planning_allowance_is_the_program_multiple_rounded_down() -> None:
    assert planning_allowance(90, Decimal("2")) == 180
    assert planning_allowance(45, Decimal("2.5")) == 112
    assert planning_allowance(0, Decimal("2")) == 0


def test_planning_linked_to_a_workshop_is_capped_at_the_multiple() -> None:
    ws = WorkshopEntry("w1", "m1", K.WORKSHOP, 60)
    check_planning_cap(entry(workshop_entry_id="w1", minutes=120), ws, 0, Decimal("2"))
    check_planning_cap(entry(workshop_entry_id="w1", minutes=20), ws, 100, Decimal("2"))
    with pytest.raises(DomainError) as exc:
        check_planning_cap(entry(workshop_entry_id="w1", minutes=21), ws, 100, Decimal("2"))
    assert exc.value.status == 409 and codes(exc) == [("minutes", "planning_cap")]
    assert "121 minutes" in str(exc.value) and "= 120" in str(exc.value)
    check_planning_cap(entry(workshop_entry_id="w1", minutes=180), ws, 0, Decimal("3"))
    check_planning_cap(entry(minutes=900), None, 0, Decimal("2"))  # unlinked planning is not capped


@pytest.mark.parametrize(
    ("workshop", "code"),
    [
        (None, "not_found"),
        (WorkshopEntry("w1", "m1", K.WORKSHOP, 60, voided=True), "not_found"),
        (WorkshopEntry("w1", "m1", K.TRAINING, 60), "not_workshop"),
        (WorkshopEntry("w1", "m2", K.WORKSHOP, 60), "not_owner"),
    ],
)
def test_planning_must_link_to_the_mentors_own_workshop(workshop: WorkshopEntry | None, code: str) -> None:
    with pytest.raises(DomainError) as exc:
        check_planning_cap(entry(workshop_entry_id="w1"), workshop, 0, Decimal("2"))
    assert codes(exc) == [("workshop_entry_id", code)]


def test_a_workshop_cannot_shrink_below_its_linked_planning() -> None:
    check_workshop_shrink(60, 120, Decimal("2"))
    with pytest.raises(DomainError) as exc:
        check_workshop_shrink(59, 120, Decimal("2"))
    assert codes(exc) == [("minutes", "planning_cap")]


def stage(pip: str, st: str, day: date) -> ActivityFact:
    return ActivityFact(f"{pip}-{st}", "pip_stage", day, st, pip)


def test_a_pip_is_complete_when_all_three_stages_are_done_and_book_studies_count() -> None:
    facts = [
        stage("pip-a", "exploration", date(2026, 9, 1)),
        stage("pip-a", "application", date(2026, 10, 20)),
        stage("pip-a", "collaboration", date(2026, 10, 1)),
        stage("pip-b", "exploration", date(2026, 9, 3)),
        ActivityFact("bs", "book_study", date(2026, 11, 2)),
        ActivityFact("sv", "site_visit", date(2026, 11, 3)),
    ]
    progress = {p.pip_id: p for p in pip_progress(facts)}
    assert progress["pip-a"].complete and progress["pip-a"].completed_on == date(2026, 10, 20)
    assert not progress["pip-b"].complete and progress["pip-b"].missing == ["collaboration", "application"]
    assert completed_pip_dates(facts) == [date(2026, 10, 20), date(2026, 11, 2)]


def activity(kind: str, stage: str | None = None, **details: str) -> ActivityDraft:
    return ActivityDraft("p1", kind, TODAY, stage, tuple(details.items()))


def test_activities_need_their_details_and_a_known_kind_and_stage() -> None:
    validate_activity(activity("pip_stage", "exploration", pip_id="pip-1"), TODAY, [])
    validate_activity(activity("reflection", question="What went well?", answer="Exit tickets"), TODAY, [])
    validate_activity(activity("recognition", nominee_id="mentee-1", reason="Led a workshop"), TODAY, [])
    validate_activity(activity("agreement"), TODAY, [])
    cases = [
        (activity("pip_stage", "planning", pip_id="x"), [("stage", "unknown_stage")]),
        (activity("pip_stage", "exploration"), [("details.pip_id", "missing_detail")]),
        (activity("site_visit", "exploration", place="School"), [("stage", "unexpected_stage")]),
        (activity("checklist"), [("details.item", "missing_detail")]),
        (activity("reflection", question="q"), [("details.answer", "missing_detail")]),
        (activity("party"), [("kind", "unknown_kind")]),
        (ActivityDraft("p1", "orientation", date(2026, 11, 21)), [("occurred_on", "in_future")]),
    ]
    for draft, expected in cases:
        with pytest.raises(DomainError) as exc:
            validate_activity(draft, TODAY, [])
        assert codes(exc) == expected, draft


def test_a_stage_or_an_orientation_is_recorded_once() -> None:
    facts = [stage("pip-1", "exploration", TODAY), ActivityFact("o", "orientation", TODAY)]
    with pytest.raises(DomainError) as exc:
        validate_activity(activity("pip_stage", "exploration", pip_id="pip-1"), TODAY, facts)
    assert exc.value.status == 409 and codes(exc) == [("stage", "already_recorded")]
    validate_activity(activity("pip_stage", "exploration", pip_id="pip-2"), TODAY, facts)
    with pytest.raises(DomainError) as exc:
        validate_activity(activity("orientation"), TODAY, facts)
    assert codes(exc) == [("kind", "already_recorded")]
    validate_activity(activity("checklist", item="Classroom management"), TODAY, facts)
