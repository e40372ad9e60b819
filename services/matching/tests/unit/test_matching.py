"""Optimal whole-pool matching: constraints, objectives, and optimality against brute force and
against an independent solver (scipy's Hungarian algorithm on expanded capacity slots)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from services.matching.domain.matching import (
    OBJECTIVES,
    MatchingProblem,
    MenteeCandidate,
    MentorCandidate,
    Objective,
    check_assignment,
    objective_value,
    pair_weight,
    solve,
)
from services.matching.domain.profiles import Profile, align

pytestmark = pytest.mark.unit
WEIGHTS = {"grade_band": 3, "subjects": 3, "role": 2, "site": 1, "region": 1, "languages": 1}


def random_profile(rng: random.Random, variety: int) -> Profile:
    pick = "abcdefgh"[:variety]
    return Profile.of(
        grade_band=rng.choice(pick), subjects=rng.sample(list(pick), rng.randint(0, min(2, variety))), role=rng.choice(pick),
        site=rng.choice(pick), region=rng.choice(pick[:2]), languages=rng.sample(["en", "es"], rng.randint(1, 2)),
    )


def random_problem(rng: random.Random, mentees: int, mentors: int, variety: int, objective: Objective,
                   ban_rate: float) -> MatchingProblem:
    return MatchingProblem(
        mentees=[MenteeCandidate(f"e{i}", random_profile(rng, variety)) for i in range(mentees)],
        mentors=[MentorCandidate(f"m{j}", random_profile(rng, variety), rng.randint(0, 3), rng.random() > 0.15)
                 for j in range(mentors)],
        weights=WEIGHTS,
        objective=objective,
        excluded_pairs=frozenset(
            (f"e{i}", f"m{j}") for i in range(mentees) for j in range(mentors) if rng.random() < ban_rate
        ),
    )


def brute_force(problem: MatchingProblem) -> tuple[int, int]:
    """Try every assignment (each mentee: unmatched or any allowed mentor with a place left)."""
    mentees = list(problem.mentees)
    places = {m.person_id: m.free_places if m.eligible else 0 for m in problem.mentors}
    profiles = {m.person_id: m.profile for m in problem.mentors}
    best = (-1, -1)

    def go(i: int, matched: int, score: int) -> None:
        nonlocal best
        if i == len(mentees):
            best = max(best, objective_value(problem.objective, matched, score))
            return
        go(i + 1, matched, score)
        for mentor_id, left in places.items():
            if left and (mentees[i].person_id, mentor_id) not in problem.excluded_pairs:
                places[mentor_id] -= 1
                go(i + 1, matched + 1, score + align(mentees[i].profile, profiles[mentor_id], WEIGHTS).score)
                places[mentor_id] += 1

    go(0, 0, 0)
    return best


def hungarian(problem: MatchingProblem) -> tuple[int, int]:
    """scipy's linear_sum_assignment over one column per free place plus one 'unmatched' column
    per mentee, with the same lexicographic weights the objective defines."""
    mentees = list(problem.mentees)
    slots = [m for m in problem.mentors if m.eligible for _ in range(m.free_places)]
    scores = np.array(
        [[align(e.profile, s.profile, WEIGHTS).score for s in slots] for e in mentees], dtype=np.int64
    ).reshape(len(mentees), len(slots))
    most = min(len(mentees), len(slots))
    big = most + 1 if problem.objective == "best_total" else most * max(1, int(scores.max(initial=0))) + 1
    weights = np.asarray(pair_weight(problem.objective, scores, big), dtype=np.int64)
    for i, e in enumerate(mentees):
        for j, s in enumerate(slots):
            if (e.person_id, s.person_id) in problem.excluded_pairs:
                weights[i, j] = 0
    matrix = np.zeros((len(mentees), len(slots) + len(mentees)), dtype=np.int64)
    matrix[:, : len(slots)] = weights
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    chosen = [(r, c) for r, c in zip(rows, cols, strict=True) if c < len(slots) and weights[r, c] > 0]
    return objective_value(problem.objective, len(chosen), int(sum(scores[r, c] for r, c in chosen)))


def solved_value(problem: MatchingProblem) -> tuple[int, int]:
    result = solve(problem)
    assert check_assignment(problem, result.pairs) == []
    assert result.total_score == sum(p.score for p in result.pairs)
    return objective_value(problem.objective, result.matched, result.total_score)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), mentees=st.integers(0, 6), mentors=st.integers(0, 3),
       variety=st.integers(1, 4), ban_rate=st.sampled_from([0.0, 0.2, 0.5]), objective=st.sampled_from(OBJECTIVES))
def test_optimal_against_brute_force(seed: int, mentees: int, mentors: int, variety: int, ban_rate: float,
                                     objective: Objective) -> None:
    problem = random_problem(random.Random(seed), mentees, mentors, variety, objective, ban_rate)
    assert solved_value(problem) == brute_force(problem)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_optimal_against_independent_solver_on_larger_pools(seed: int, objective: Objective) -> None:
    rng = random.Random(seed)
    problem = random_problem(rng, rng.randint(80, 250), rng.randint(20, 90), rng.randint(2, 4), objective, 0.01)
    assert solved_value(problem) == hungarian(problem)


def test_the_two_objectives_differ_when_a_strong_pair_blocks_two_weaker_ones() -> None:
    strong = Profile.of(grade_band="6-8", subjects=["math"], role="teacher")
    x = MentorCandidate("x", strong, 1)
    y = MentorCandidate("y", Profile.of(site="far"), 1)
    a = MenteeCandidate("a", strong)
    b = MenteeCandidate("b", Profile.of(region="none"))
    base = dict(mentees=[a, b], mentors=[x, y], weights=WEIGHTS, excluded_pairs=frozenset({("b", "y")}))
    best = solve(MatchingProblem(objective="best_total", **base))  # type: ignore[arg-type]
    most = solve(MatchingProblem(objective="max_participation", **base))  # type: ignore[arg-type]
    assert [(p.mentee_id, p.mentor_id, p.score) for p in best.pairs] == [("a", "x", 8)]
    assert best.unmatched == {"b": "no place left under the chosen objective"}
    assert sorted((p.mentee_id, p.mentor_id) for p in most.pairs) == [("a", "y"), ("b", "x")]


def test_ineligible_and_full_mentors_are_never_matched_automatically() -> None:
    p = Profile.of(grade_band="k-2")
    result = solve(MatchingProblem(
        mentees=[MenteeCandidate("a", p), MenteeCandidate("b", p)],
        mentors=[MentorCandidate("ineligible", p, 5, eligible=False), MentorCandidate("full", p, 0)],
        weights=WEIGHTS,
    ))
    assert result.pairs == []
    assert result.unmatched == {"a": "no eligible mentor with free capacity", "b": "no eligible mentor with free capacity"}


def test_excluded_previous_mentor_is_not_proposed_even_when_best_aligned() -> None:
    p = Profile.of(grade_band="k-2", subjects=["ela"], role="teacher")
    result = solve(MatchingProblem(
        mentees=[MenteeCandidate("a", p), MenteeCandidate("b", p)],
        mentors=[MentorCandidate("previous", p, 2), MentorCandidate("other", Profile.of(), 1)],
        weights=WEIGHTS, excluded_pairs=frozenset({("a", "previous")}),
    ))
    assert {(q.mentee_id, q.mentor_id) for q in result.pairs} == {("a", "other"), ("b", "previous")}


def test_capacity_is_respected_and_reasons_come_with_each_pair() -> None:
    p = Profile.of(grade_band="9-12", subjects=["math"])
    result = solve(MatchingProblem(
        mentees=[MenteeCandidate(f"e{i}", p) for i in range(5)],
        mentors=[MentorCandidate("m", p, 3)], weights=WEIGHTS,
    ))
    assert result.matched == 3 and len(result.unmatched) == 2
    assert all(q.reasons == ("grade_band: 9-12 (+3)", "subjects: math (+3)") and q.score == 6 for q in result.pairs)
    assert result.stats["mentee_classes"] == 1 and result.stats["mentor_classes"] == 1


def test_unknown_criterion_is_refused() -> None:
    with pytest.raises(ValueError, match="shoe_size"):
        solve(MatchingProblem(mentees=[], mentors=[], weights={"shoe_size": 1}))
