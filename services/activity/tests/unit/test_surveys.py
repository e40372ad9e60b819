"""Survey rules: schedules, answers, reminders (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.activity.domain.surveys import (
    Question,
    QuestionKind,
    ScheduleKind,
    SurveyDraft,
    average_rating,
    check_answers,
    check_survey,
    due_round_key,
    reminder_due,
)
from shared.errors import DomainError

pytestmark = pytest.mark.unit

FIT = Question("fit", QuestionKind.CHOICE, "Good fit?", ("yes", "no"), flag_answer="no")
RATE = Question("r", QuestionKind.RATING, "Rate it")
NOTE = Question("note", QuestionKind.TEXT, "Anything else?", required=False)


def test_periodic_rounds_fall_every_n_days_from_the_start() -> None:
    start = date(2026, 9, 10)
    assert due_round_key(ScheduleKind.PERIODIC, start, 30, date(2026, 9, 9)) is None
    assert due_round_key(ScheduleKind.PERIODIC, start, 30, start) == "periodic:2026-09-10"
    assert due_round_key(ScheduleKind.PERIODIC, start, 30, date(2026, 10, 9)) == "periodic:2026-09-10"
    assert due_round_key(ScheduleKind.PERIODIC, start, 30, date(2026, 10, 10)) == "periodic:2026-10-10"
    # a service down for two periods opens only the latest round, not a backlog
    assert due_round_key(ScheduleKind.PERIODIC, start, 30, date(2026, 12, 1)) == "periodic:2026-11-09"
    assert due_round_key(ScheduleKind.ON_DATE, date(2027, 6, 1), None, date(2027, 6, 3)) == "on:2027-06-01"
    assert due_round_key(ScheduleKind.FIRST_MEETING, start, None, start) is None


def test_answers_are_checked_per_question_and_a_bad_fit_flags() -> None:
    ok = check_answers((FIT, RATE, NOTE), {"fit": "no", "r": 3})
    assert ok.answers == {"fit": "no", "r": 3} and ok.flagged_by == "fit"
    assert check_answers((FIT, RATE), {"fit": "yes", "r": 5}).flagged_by is None
    with pytest.raises(DomainError) as bad:
        check_answers((FIT, RATE), {"fit": "maybe", "r": 6, "x": 1})
    assert {p.field for p in bad.value.problems} == {"answers.fit", "answers.r", "answers.x"}
    with pytest.raises(DomainError) as missing:
        check_answers((FIT, RATE), {"fit": "yes"})
    assert missing.value.problems[0].field == "answers.r"
    with pytest.raises(DomainError):
        check_answers((RATE,), {"r": True})  # a bool is not a rating
    assert average_rating((RATE, Question("s", QuestionKind.RATING, "x")), {"r": 2, "s": 5}) == 3.5
    assert average_rating((FIT,), {"fit": "yes"}) is None


def test_a_survey_names_what_is_wrong_with_it() -> None:
    check_survey(SurveyDraft("p", "Fit", (FIT,), ScheduleKind.FIRST_MEETING, remind_after_days=3))
    with pytest.raises(DomainError) as bad:
        check_survey(SurveyDraft("p", " ", (FIT, Question("fit", QuestionKind.CHOICE, "?", ("a",))),
                                 ScheduleKind.PERIODIC, remind_after_days=0))
    fields = {p.field for p in bad.value.problems}
    assert {"title", "questions[1].question_id", "questions[1].options", "questions[0].flag_answer",
            "every_days", "start_date", "remind_after_days"} <= fields


def test_a_reminder_is_due_n_days_after_the_invitation() -> None:
    at = datetime(2026, 9, 10, tzinfo=UTC)
    assert not reminder_due(at, 5, at + timedelta(days=4, hours=23))
    assert reminder_due(at, 5, at + timedelta(days=5))
    assert not reminder_due(at, None, at + timedelta(days=500))
