"""Eligibility and alignment scoring."""

from __future__ import annotations

import pytest

from services.matching.domain.profiles import Profile, align, ineligibility_reasons, unknown_criteria
from shared.contracts.program import Eligibility

pytestmark = pytest.mark.unit

ST_VRAIN = Eligibility(min_years_in_position=2)
MOZILLA = Eligibility(min_years_in_program=1, training_required=True)
WEIGHTS = {"grade_band": 3, "subjects": 3, "role": 2, "site": 1, "region": 1, "languages": 1}


def test_mentor_with_enough_years_and_training_is_eligible() -> None:
    p = Profile.of(years_in_position=2, years_in_program=1, training_completed=True)
    assert ineligibility_reasons(p, ST_VRAIN) == []
    assert ineligibility_reasons(p, MOZILLA) == []


def test_fewer_than_two_years_in_position_is_refused_with_the_reason() -> None:
    reasons = ineligibility_reasons(Profile.of(years_in_position=1), ST_VRAIN)
    assert reasons == ["years_in_position is 1; the program requires at least 2"]


def test_unknown_years_count_as_not_meeting_a_minimum() -> None:
    [reason] = ineligibility_reasons(Profile.of(), ST_VRAIN)
    assert reason.startswith("years_in_position unknown")


def test_every_failed_rule_is_listed() -> None:
    reasons = ineligibility_reasons(Profile.of(years_in_program=0, training_completed=False), MOZILLA)
    assert reasons == [
        "years_in_program is 0; the program requires at least 1",
        "training not completed; the program requires it",
    ]


def test_a_program_without_rules_accepts_everyone() -> None:
    assert ineligibility_reasons(Profile.of(), Eligibility()) == []


def test_score_sums_the_weights_of_matching_criteria_with_reasons() -> None:
    mentee = Profile.of(grade_band="6-8", subjects=["Math", "Science"], role="teacher", site="A",
                        region="north", languages=["en"])
    mentor = Profile.of(grade_band="6-8", subjects=["math "], role="coach", site="B",
                        region="North", languages=["es", "en"])
    result = align(mentee, mentor, WEIGHTS)
    assert result.score == 3 + 3 + 1 + 1
    assert result.reasons == (
        "grade_band: 6-8 (+3)", "languages: en (+1)", "region: north (+1)", "subjects: math (+3)",
    )


def test_missing_values_never_match_and_zero_weights_are_ignored() -> None:
    assert align(Profile.of(), Profile.of(), WEIGHTS).score == 0
    a = Profile.of(grade_band="k-2", role="teacher")
    assert align(a, a, {"grade_band": 0, "role": 2}).score == 2


def test_unknown_criteria_are_named() -> None:
    assert unknown_criteria({"grade_band": 1, "shoe_size": 2}) == ["shoe_size"]
