"""Feedback-quality reviews on a real store (SQLite and PostgreSQL): record, draw the month's
sample (kept: the same on every draw), score, the mentor's history."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.activity.domain.reviews import Criterion, draw_sample
from services.activity.service_layer import reviews
from services.activity.tests.support import PROGRAM, Store, matched, open_store, program_event
from shared.errors import Conflict, DomainError, Forbidden

pytestmark = pytest.mark.integration

RUBRIC = (Criterion("specific", "names what the teacher did"), Criterion("actionable", "gives a next step"))


@pytest.fixture
def store(store_url: str) -> Store:
    s = open_store(store_url, datetime(2026, 11, 5, 18, 0, tzinfo=UTC))
    s.apply(program_event(), matched("pa-1", "mentor-1", datetime(2026, 9, 1, tzinfo=UTC)))
    return s


def test_sample_review_and_history(store: Store) -> None:
    now = store.clock.now()
    with store.unit() as u:
        reviews.set_rubric(u, PROGRAM, RUBRIC, 2, "staff-1", now)
        ids = [reviews.record_feedback(u, PROGRAM, "mentor-1", "pa-1", date(2026, 10, d), f"note {d}", "",
                                       "mentor-1", now).entry_id for d in (2, 9, 16, 23, 30)]
        reviews.record_feedback(u, PROGRAM, "mentor-1", None, date(2026, 11, 1), "", "https://x.example/1",
                                "mentor-1", now)
        with pytest.raises(Forbidden):
            reviews.record_feedback(u, PROGRAM, "mentor-2", "pa-1", date(2026, 10, 2), "x", "", "mentor-2", now)
    with store.unit() as u:
        picked = reviews.draw(u, PROGRAM, "mentor-1", "2026-10", None, "staff-1", now)
    assert picked == draw_sample(ids, 2, PROGRAM, "mentor-1", "2026-10") and len(picked) == 2
    with store.unit() as u:  # a later entry of the month, another count: the kept sample stands
        reviews.record_feedback(u, PROGRAM, "mentor-1", None, date(2026, 10, 31), "late", "", "mentor-1", now)
        assert reviews.draw(u, PROGRAM, "mentor-1", "2026-10", 4, "staff-2", now) == picked
    unsampled = next(i for i in ids if i not in picked)
    with store.unit() as u, pytest.raises(Conflict) as not_sampled:
        reviews.review(u, PROGRAM, "mentor-1", unsampled, {"specific": 3, "actionable": 3}, "", "staff-1", now)
    assert not_sampled.value.problems[0].code == "not_sampled"
    with store.unit() as u, pytest.raises(DomainError):
        reviews.review(u, PROGRAM, "mentor-1", picked[0], {"specific": 0, "actionable": 3}, "", "staff-1", now)
    with store.unit() as u:
        reviews.review(u, PROGRAM, "mentor-1", picked[0], {"specific": 4, "actionable": 2}, "Name the next step.",
                       "staff-1", now)
        reviews.review(u, PROGRAM, "mentor-1", picked[1], {"specific": 3, "actionable": 3}, "Good.", "staff-1", now)
    with store.unit() as u, pytest.raises(Conflict):
        reviews.review(u, PROGRAM, "mentor-1", picked[0], {"specific": 1, "actionable": 1}, "", "staff-1", now)
    [event, _] = store.emitted("FeedbackReviewed")
    assert (event["mentor_id"], event["month"], event["scores"], event["comment"]) == (
        "mentor-1", "2026-10", {"specific": 4, "actionable": 2}, "Name the next step.")
    with store.db.session() as s:
        [month] = reviews.history(s, PROGRAM, "mentor-1")["months"]
    assert month["month"] == "2026-10" and len(month["reviews"]) == 2
    assert month["average_score"] == 3.0  # (4 + 2 + 3 + 3) / 4
