"""Survey scheduling, answers and flags on a real store (SQLite and PostgreSQL), no broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest

from services.activity.domain.surveys import Question, QuestionKind, ScheduleKind, SurveyDraft
from services.activity.service_layer import surveys
from services.activity.tests.support import PROGRAM, Store, StoreUnit, matched, open_store, program_event
from shared.contracts.activity import MeetingLogged
from shared.contracts.matching import MentorEnrolled, MentorPaused, PartnershipEnded
from shared.errors import Conflict, DomainError, Forbidden

pytestmark = pytest.mark.integration

START = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
FIT = Question("fit", QuestionKind.CHOICE, "Is this a good fit?", ("good fit", "not sure", "not a good fit"),
               flag_answer="not a good fit")
RATE = Question("overall", QuestionKind.RATING, "How is it going?")


@pytest.fixture
def store(store_url: str) -> Store:
    s = open_store(store_url, START)
    s.apply(program_event())
    return s


def _run(store: Store) -> dict[str, int]:
    @contextmanager
    def units() -> Iterator[StoreUnit]:
        with store.unit() as u:
            yield u
    return surveys.run_surveys(units, store.clock.now())


def _survey(store: Store, draft: SurveyDraft, audience: str = "mentor") -> str:
    with store.unit() as u:
        return surveys.create_survey(u, draft, audience, "staff-1", store.clock.now()).survey_id


def _meeting(pa: str, mentor: str, at: datetime, n: int = 1) -> MeetingLogged:
    return MeetingLogged(meeting_id=f"m-{pa}-{n}", partnership_id=pa, program_id=PROGRAM, mentor_id=mentor,
                         mentee_id=f"mentee-of-{pa}", started_at=at, duration_minutes=45, mode="video",
                         intentional=True)


def test_first_meeting_survey_fires_once_per_partnership_and_flags_a_bad_fit(store: Store) -> None:
    store.apply(matched("pa-1", "mentor-1", START), matched("pa-2", "mentor-2", START))
    _survey(store, SurveyDraft(PROGRAM, "First meeting", (FIT, RATE), ScheduleKind.FIRST_MEETING),
            audience="mentor_and_mentee")
    assert _run(store)["rounds_opened"] == 0  # nobody has met yet
    store.apply(_meeting("pa-1", "mentor-1", START + timedelta(days=2)))
    store.clock.advance(timedelta(days=3))
    assert _run(store)["rounds_opened"] == 1
    store.apply(_meeting("pa-1", "mentor-1", START + timedelta(days=9), 2))  # a second meeting: no new round
    assert _run(store)["rounds_opened"] == 0
    invited = store.emitted("SurveyInvited")
    assert sorted(e["person_id"] for e in invited) == ["mentee-of-pa-1", "mentor-1"]
    round_id = invited[0]["round_id"]

    with store.unit() as u:
        surveys.answer(u, PROGRAM, round_id, "mentee-of-pa-1", {"fit": "not a good fit", "overall": 2}, store.clock.now())
    with store.unit() as u:
        surveys.answer(u, PROGRAM, round_id, "mentor-1", {"fit": "good fit", "overall": 4}, store.clock.now())
    with store.unit() as u, pytest.raises(Conflict) as second:
        surveys.answer(u, PROGRAM, round_id, "mentor-1", {"fit": "good fit", "overall": 5}, store.clock.now())
    assert second.value.problems[0].field == "person_id"
    with store.unit() as u, pytest.raises(Forbidden):
        surveys.answer(u, PROGRAM, round_id, "mentor-2", {"fit": "good fit", "overall": 5}, store.clock.now())

    flagged = store.emitted("PartnershipFlagged")
    assert [(f["partnership_id"], f["person_id"]) for f in flagged] == [("pa-1", "mentee-of-pa-1")]
    with store.db.session() as s:
        assert [f["partnership_id"] for f in surveys.partnership_flags(s, PROGRAM)["flags"]] == ["pa-1"]
        result = surveys.survey_results(s, PROGRAM)["surveys"][0]
    assert (result["rounds"], result["invited"], result["answered"]) == (1, 2, 2)
    assert result["response_rate"] == 1.0 and result["average_rating"] == 3.0  # (2 + 4) / 2


def test_periodic_rounds_follow_the_injected_clock_and_remind_once(store: Store) -> None:
    store.apply(matched("pa-1", "mentor-1", START), matched("pa-2", "mentor-2", START),
                matched("pa-3", "mentor-2", START),  # mentor-2 has two mentees: asked once
                MentorEnrolled(person_id="mentor-9", program_id=PROGRAM, name="N", email="n@example.org"),
                MentorPaused(person_id="mentor-9", program_id=PROGRAM, reason="moving", leaving=True),
                MentorEnrolled(person_id="mentor-3", program_id=PROGRAM, name="U", email="u@example.org"))
    _survey(store, SurveyDraft(PROGRAM, "Experience", (RATE,), ScheduleKind.PERIODIC, every_days=30,
                               start_date=date(2026, 9, 10), remind_after_days=5))
    assert _run(store)["rounds_opened"] == 0  # 2026-09-01: before the start date
    store.clock.set(datetime(2026, 9, 10, 18, 0, tzinfo=UTC))  # noon in Denver on the start date
    assert _run(store) == {"rounds_opened": 1, "reminders": 0}
    assert _run(store) == {"rounds_opened": 0, "reminders": 0}
    # enrolled (mentor-3, no mentee yet) or partnered; not mentor-9, who is leaving
    assert sorted(e["person_id"] for e in store.emitted("SurveyInvited")) == ["mentor-1", "mentor-2", "mentor-3"]
    round_1 = store.emitted("SurveyInvited")[0]["round_id"]
    with store.unit() as u:
        surveys.answer(u, PROGRAM, round_1, "mentor-1", {"overall": 5}, store.clock.now())
    store.clock.advance(timedelta(days=5))
    assert _run(store) == {"rounds_opened": 0, "reminders": 2}  # mentor-2 and mentor-3 have not answered
    assert _run(store)["reminders"] == 0  # once per invitation
    reminders = [e for e in store.emitted("SurveyInvited") if e["reminder"]]
    assert sorted(e["person_id"] for e in reminders) == ["mentor-2", "mentor-3"]
    store.clock.set(datetime(2026, 10, 10, 18, 0, tzinfo=UTC))  # day 30: the second round
    assert _run(store)["rounds_opened"] == 1
    rounds = {e["round_id"] for e in store.emitted("SurveyInvited")}
    assert len(rounds) == 2


def test_a_survey_that_cannot_be_answered_is_refused_naming_the_field(store: Store) -> None:
    with pytest.raises(DomainError) as bad:
        _survey(store, SurveyDraft(PROGRAM, "x", (RATE,), ScheduleKind.PERIODIC))
    assert {p.field for p in bad.value.problems} == {"every_days", "start_date"}


def test_end_of_partnership_and_dated_surveys_open_once(store: Store) -> None:
    store.apply(matched("pa-1", "mentor-1", START), matched("pa-2", "mentor-2", START))
    _survey(store, SurveyDraft(PROGRAM, "Looking back", (RATE,), ScheduleKind.PARTNERSHIP_END))
    _survey(store, SurveyDraft(PROGRAM, "End of the school year", (RATE,), ScheduleKind.ON_DATE,
                               start_date=date(2027, 6, 1)))
    assert _run(store)["rounds_opened"] == 0
    store.apply(PartnershipEnded(partnership_id="pa-2", program_id=PROGRAM, mentor_id="mentor-2",
                                 mentee_id="mentee-of-pa-2", ended_at=START + timedelta(days=40), reason="moved"))
    assert _run(store)["rounds_opened"] == 1 and _run(store)["rounds_opened"] == 0
    assert [(e["title"], e["person_id"], e["partnership_id"]) for e in store.emitted("SurveyInvited")] == [
        ("Looking back", "mentor-2", "pa-2")]
    store.clock.set(datetime(2027, 6, 1, 18, 0, tzinfo=UTC))
    assert _run(store)["rounds_opened"] == 1 and _run(store)["rounds_opened"] == 0
    dated = [e["person_id"] for e in store.emitted("SurveyInvited") if e["title"] == "End of the school year"]
    assert dated == ["mentor-1"]  # mentor-2's only partnership has ended
