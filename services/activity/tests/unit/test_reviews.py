"""Feedback-quality review rules: the reproducible sample, rubric scores (pure)."""

from __future__ import annotations

import pytest

from services.activity.domain.reviews import (
    Criterion,
    check_feedback,
    check_rubric,
    check_scores,
    draw_sample,
)
from shared.errors import DomainError

pytestmark = pytest.mark.unit

ENTRIES = [f"fb-{i:02d}" for i in range(20)]
RUBRIC = (Criterion("specific", "names what the teacher did"), Criterion("actionable", "a next step"))


def test_the_sample_is_the_same_on_every_draw_and_independent_of_entry_order() -> None:
    first = draw_sample(ENTRIES, 3, "prog-1", "mentor-1", "2026-10")
    assert len(first) == 3 and set(first) <= set(ENTRIES)
    assert draw_sample(list(reversed(ENTRIES)), 3, "prog-1", "mentor-1", "2026-10") == first
    assert all(draw_sample(ENTRIES, 3, "prog-1", "mentor-1", "2026-10") == first for _ in range(10))


def test_the_sample_differs_by_month_and_mentor_and_takes_all_when_few() -> None:
    samples = {tuple(draw_sample(ENTRIES, 3, "prog-1", m, month))
               for m in ("mentor-1", "mentor-2") for month in ("2026-10", "2026-11", "2026-12")}
    assert len(samples) > 1  # seeded by program+mentor+month, not one fixed pick
    assert draw_sample(["b", "a"], 3, "prog-1", "mentor-1", "2026-10") == ["a", "b"]
    assert draw_sample([], 3, "prog-1", "mentor-1", "2026-10") == []


def test_scores_are_1_to_4_for_every_criterion() -> None:
    assert check_scores(RUBRIC, {"specific": 4, "actionable": 1}) == {"specific": 4, "actionable": 1}
    with pytest.raises(DomainError) as bad:
        check_scores(RUBRIC, {"specific": 5, "tone": 2})
    assert {p.field for p in bad.value.problems} == {"scores.specific", "scores.actionable", "scores.tone"}


def test_feedback_needs_text_or_a_link_and_a_rubric_criteria() -> None:
    check_feedback("", "https://docs.example/fb")
    with pytest.raises(DomainError):
        check_feedback(" ", "")
    with pytest.raises(DomainError):
        check_feedback("", "javascript:alert(1)")
    with pytest.raises(DomainError) as bad:
        check_rubric((), 0)
    assert {p.field for p in bad.value.problems} == {"criteria", "sample_size"}
