"""Activity's program health figures on a small fixed program, every number worked out by hand.

Program prog-1, America/Denver, default school year (Fall 2026-08-01..2027-01-15, Spring after).
  pa-1 mentor-1, metamentor meta-1, matched 2026-09-01 15:00Z; meetings: 09-04 15:00Z 60 min
       intentional, 10-01 03:00Z (= 09-30 21:00 Denver) 30 min not intentional, 10-10 16:00Z 45 min
       intentional, 10-20 16:00Z 60 min intentional but then voided.
  pa-2 mentor-2, metamentor meta-1, matched 2026-09-05 15:00Z; meeting 09-15 15:00Z 90 min intentional.
  pa-3 mentor-3, no metamentor, matched 2026-10-01 15:00Z; no meeting.
  PIPs: pip-1 (pa-1) exploration 10-01, application 10-20 and again 10-21; pip-2 (pa-2) application
       2027-02-01.
  Statuses as compliance left them: pa-1 on_track, pa-2 at_risk, pa-3 behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest

from services.activity.adapters.tables import PartnershipRow
from services.activity.domain.surveys import Question, QuestionKind, ScheduleKind, SurveyDraft
from services.activity.service_layer import surveys
from services.activity.service_layer.health import program_health
from services.activity.tests.support import PROGRAM, Store, StoreUnit, matched, open_store, program_event
from shared.contracts.activity import ActivityRecorded, MeetingCorrected, MeetingLogged
from shared.contracts.matching import MetamentorAssigned

pytestmark = pytest.mark.integration


def meeting(mid: str, pa: str, at: datetime, minutes: int, intentional: bool) -> MeetingLogged:
    return MeetingLogged(meeting_id=mid, partnership_id=pa, program_id=PROGRAM, mentor_id="x", mentee_id="y",
                         started_at=at, duration_minutes=minutes, mode="video", intentional=intentional)


def pip(aid: str, pa: str, pip_id: str, stage: str, day: date) -> ActivityRecorded:
    return ActivityRecorded(activity_id=aid, partnership_id=pa, program_id=PROGRAM, kind="pip_stage", stage=stage,
                            occurred_on=day, details={"pip_id": pip_id})


@pytest.fixture
def store(store_url: str) -> Store:
    s = open_store(store_url, datetime(2026, 11, 20, 18, 0, tzinfo=UTC))
    z = UTC
    s.apply(program_event(),
            matched("pa-1", "mentor-1", datetime(2026, 9, 1, 15, tzinfo=z)),
            matched("pa-2", "mentor-2", datetime(2026, 9, 5, 15, tzinfo=z)),
            matched("pa-3", "mentor-3", datetime(2026, 10, 1, 15, tzinfo=z)),
            MetamentorAssigned(partnership_id="pa-1", program_id=PROGRAM, metamentor_id="meta-1"),
            MetamentorAssigned(partnership_id="pa-2", program_id=PROGRAM, metamentor_id="meta-1"),
            meeting("m1", "pa-1", datetime(2026, 9, 4, 15, tzinfo=z), 60, True),
            meeting("m2", "pa-1", datetime(2026, 10, 1, 3, tzinfo=z), 30, False),
            meeting("m3", "pa-1", datetime(2026, 10, 10, 16, tzinfo=z), 45, True),
            meeting("m4", "pa-1", datetime(2026, 10, 20, 16, tzinfo=z), 60, True),
            MeetingCorrected(meeting_id="m4", partnership_id="pa-1", program_id=PROGRAM,
                             started_at=datetime(2026, 10, 20, 16, tzinfo=z), duration_minutes=60, mode="video",
                             intentional=True, voided=True, reason="logged twice"),
            meeting("m5", "pa-2", datetime(2026, 9, 15, 15, tzinfo=z), 90, True),
            pip("a1", "pa-1", "pip-1", "exploration", date(2026, 10, 1)),
            pip("a2", "pa-1", "pip-1", "application", date(2026, 10, 20)),
            pip("a3", "pa-1", "pip-1", "application", date(2026, 10, 21)),
            pip("a4", "pa-2", "pip-2", "application", date(2027, 2, 1)))
    with s.db.session() as session:
        for pa, status in (("pa-1", "on_track"), ("pa-2", "at_risk"), ("pa-3", "behind")):
            row = session.get(PartnershipRow, pa)
            assert row is not None
            row.status = status
            session.add(row)
        session.commit()
    return s


def test_every_activity_figure_of_the_fixed_program(store: Store) -> None:
    with store.unit() as u:
        surveys.create_survey(u, SurveyDraft(PROGRAM, "Fit", (Question("r", QuestionKind.RATING, "How?"),),
                                             ScheduleKind.FIRST_MEETING), "mentor", "staff-1", store.clock.now())

    @contextmanager
    def units() -> Iterator[StoreUnit]:
        with store.unit() as u:
            yield u
    assert surveys.run_surveys(units, store.clock.now())["rounds_opened"] == 2  # pa-1 and pa-2 have met
    round_of_mentor_1 = next(e["round_id"] for e in store.emitted("SurveyInvited") if e["person_id"] == "mentor-1")
    with store.unit() as u:
        surveys.answer(u, PROGRAM, round_of_mentor_1, "mentor-1", {"r": 4}, store.clock.now())

    with store.db.session() as s:
        h = program_health(s, PROGRAM)

    assert h["status_by_metamentor"] == [
        {"group": "(none)", "on_track": 0, "behind": 1, "at_risk": 0, "unknown": 0, "total": 1},
        {"group": "meta-1", "on_track": 1, "behind": 0, "at_risk": 1, "unknown": 0, "total": 2},
    ]
    assert [(p["partnership_id"], p["status"]) for p in h["partnerships"]] == [
        ("pa-1", "on_track"), ("pa-2", "at_risk"), ("pa-3", "behind")]
    # September (Denver): m1 60 + m2 30 (09-30 21:00 local) + m5 90 = 3 meetings, 2 intentional, 180 min.
    # October: m3 45 min (m4 voided).
    assert h["meetings_per_month"] == [
        {"month": "2026-09", "meetings": 3, "intentional_meetings": 2, "hours": "3.00"},
        {"month": "2026-10", "meetings": 1, "intentional_meetings": 1, "hours": "0.75"},
    ]
    # pip-1 completed in Fall (its application recorded twice counts once), pip-2 in Spring.
    assert h["pips_completed_per_semester"] == [{"semester": "Fall", "pips_completed": 1},
                                                {"semester": "Spring", "pips_completed": 1}]
    # pa-1: 09-01 15:00 -> 09-04 15:00 = 3 days; pa-2: 09-05 -> 09-15 = 10 days; pa-3 has not met.
    assert h["time_to_first_meeting"] == {"partnerships_met": 2, "not_met_yet": 1, "average_days": 6.5,
                                          "median_days": 6.5}
    [survey] = h["surveys"]
    assert (survey["rounds"], survey["invited"], survey["answered"], survey["response_rate"],
            survey["average_rating"]) == (2, 2, 1, 0.5, 4.0)
