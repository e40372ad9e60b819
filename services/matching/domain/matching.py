"""Whole-pool matching: hard constraints, the two objectives, and an exact optimal assignment.

Hard constraints: only people of one program are in a pool (the caller builds one pool per
program); an ineligible mentor or one without free places is never matched automatically;
an excluded pair (a banned pair, or the previous mentor of a mentee being rematched) is never
proposed; no mentor gets more mentees than their free capacity.

Objectives (lexicographic, both exact):
- "best_total": the largest total alignment score; among those, as many mentees as possible.
- "max_participation": as many mentees matched as possible; among those, the largest score.
Both become one integer weight per pair, so one max-weight solver serves both:
best_total uses score * B + 1 with B larger than any possible number of matches, and
max_participation uses B' + score with B' larger than any possible total score.

Scale: scores depend only on the criterion values, so people with the same values are
interchangeable. We solve over *profile classes* (mentees with the same values, mentors with the
same values; a mentor class offers the sum of its members' free places) and then hand the class
flows out to individuals. A person named in an excluded pair is kept as a class of their own,
so exclusions stay exact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from services.matching.domain.profiles import CRITERIA, Alignment, Profile, align
from services.matching.domain.transport import IntArray, solve_transport

Objective = Literal["best_total", "max_participation"]
OBJECTIVES: tuple[Objective, ...] = ("best_total", "max_participation")


@dataclass(frozen=True, slots=True)
class MenteeCandidate:
    person_id: str
    profile: Profile


@dataclass(frozen=True, slots=True)
class MentorCandidate:
    person_id: str
    profile: Profile
    free_places: int
    eligible: bool = True


@dataclass(frozen=True)
class MatchingProblem:
    mentees: Sequence[MenteeCandidate]
    mentors: Sequence[MentorCandidate]
    weights: Mapping[str, int]
    objective: Objective = "max_participation"
    excluded_pairs: frozenset[tuple[str, str]] = frozenset()  # (mentee_id, mentor_id)


@dataclass(frozen=True, slots=True)
class ProposedPair:
    mentee_id: str
    mentor_id: str
    score: int
    reasons: tuple[str, ...]


@dataclass
class MatchingResult:
    pairs: list[ProposedPair]
    unmatched: dict[str, str]  # mentee_id -> why
    total_score: int
    objective: Objective
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def matched(self) -> int:
        return len(self.pairs)


def objective_value(objective: Objective, matched: int, total_score: int) -> tuple[int, int]:
    """What an objective compares, most important first."""
    if objective == "best_total":
        return (total_score, matched)
    return (matched, total_score)


def pair_weight(objective: Objective, score: IntArray | int, big: int) -> IntArray | int:
    if objective == "best_total":
        return score * big + 1
    return score + big


def _class_key(profile: Profile, criteria: Sequence[str]) -> tuple[object, ...]:
    return tuple(profile.value(c) for c in criteria)


def class_score_matrix(
    mentee_profiles: Sequence[Profile], mentor_profiles: Sequence[Profile], weights: Mapping[str, int]
) -> IntArray:
    """Score of every (mentee class, mentor class), vectorised per criterion."""
    scores = np.zeros((len(mentee_profiles), len(mentor_profiles)), dtype=np.int64)
    for criterion in sorted(weights):
        weight = weights[criterion]
        if weight <= 0:
            continue
        a = [p.value(criterion) for p in mentee_profiles]
        b = [p.value(criterion) for p in mentor_profiles]
        if CRITERIA[criterion] == "one":
            codes: dict[object, int] = {}
            ca = np.array([codes.setdefault(v, len(codes)) if v is not None else -1 for v in a], dtype=np.int64)
            cb = np.array([codes.setdefault(v, len(codes)) if v is not None else -2 for v in b], dtype=np.int64)
            match = ca[:, None] == cb[None, :]
        else:
            vocab: dict[str, int] = {}
            for values in (*a, *b):
                assert isinstance(values, frozenset)
                for v in values:
                    vocab.setdefault(v, len(vocab))
            words = max(1, (len(vocab) + 63) // 64)
            ma = _bitsets(a, vocab, words)
            mb = _bitsets(b, vocab, words)
            match = np.zeros(scores.shape, dtype=bool)
            for w in range(words):
                match |= (ma[:, w][:, None] & mb[:, w][None, :]) != 0
        np.add(scores, weight, out=scores, where=match)
    return scores


def _bitsets(values: Sequence[object], vocab: Mapping[str, int], words: int) -> np.ndarray:
    out = np.zeros((len(values), words), dtype=np.uint64)
    for row, vs in enumerate(values):
        assert isinstance(vs, frozenset)
        for v in vs:
            bit = vocab[v]
            out[row, bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
    return out


def solve(problem: MatchingProblem) -> MatchingResult:
    """The optimal assignment for the problem's objective."""
    criteria = sorted(c for c, w in problem.weights.items() if w > 0)
    unknown = sorted(set(criteria) - set(CRITERIA))
    if unknown:
        raise ValueError(f"unknown criteria: {', '.join(unknown)}")
    unmatched: dict[str, str] = {}
    pool = [m for m in problem.mentors if m.eligible and m.free_places > 0]
    mentees = list(problem.mentees)
    excluded_mentees = {a for a, _ in problem.excluded_pairs}
    excluded_mentors = {b for _, b in problem.excluded_pairs}

    # Profile classes; people named in an exclusion stay alone.
    row_of: dict[tuple[object, ...], int] = {}
    row_members: list[list[MenteeCandidate]] = []
    row_profiles: list[Profile] = []
    for m in mentees:
        key: tuple[object, ...] = (
            ("person", m.person_id) if m.person_id in excluded_mentees else _class_key(m.profile, criteria)
        )
        r = row_of.get(key)
        if r is None:
            r = row_of[key] = len(row_members)
            row_members.append([])
            row_profiles.append(m.profile)
        row_members[r].append(m)
    col_of: dict[tuple[object, ...], int] = {}
    col_members: list[list[MentorCandidate]] = []
    col_profiles: list[Profile] = []
    for t in pool:
        key = ("person", t.person_id) if t.person_id in excluded_mentors else _class_key(t.profile, criteria)
        c = col_of.get(key)
        if c is None:
            c = col_of[key] = len(col_members)
            col_members.append([])
            col_profiles.append(t.profile)
        col_members[c].append(t)

    supply = np.array([len(ms) for ms in row_members], dtype=np.int64)
    capacity = np.array([sum(t.free_places for t in ts) for ts in col_members], dtype=np.int64)
    scores = class_score_matrix(row_profiles, col_profiles, problem.weights)
    allowed = np.ones(scores.shape, dtype=bool)
    for mentee_id, mentor_id in problem.excluded_pairs:
        r = row_of.get(("person", mentee_id))
        c = col_of.get(("person", mentor_id))
        if r is not None and c is not None:
            allowed[r, c] = False

    most = int(min(supply.sum(), capacity.sum())) if len(supply) and len(capacity) else 0
    max_score = int(scores.max()) if scores.size else 0
    big = most + 1 if problem.objective == "best_total" else most * max_score + 1
    weight = np.asarray(pair_weight(problem.objective, scores, big), dtype=np.int64)
    result = solve_transport(weight, allowed, supply, capacity)

    # Hand class flows out to people: mentees in enrolment order, mentors' places in order.
    pairs: list[ProposedPair] = []
    next_mentee = [0] * len(row_members)
    left: list[list[int]] = [[t.free_places for t in ts] for ts in col_members]
    next_place = [0] * len(col_members)
    alignments: dict[tuple[int, int], Alignment] = {}
    rows, cols = np.nonzero(result.flow)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        count = int(result.flow[r, c])
        key2 = (r, c)
        if key2 not in alignments:
            alignments[key2] = align(row_profiles[r], col_profiles[c], problem.weights)
        alignment = alignments[key2]
        for _ in range(count):
            mentee = row_members[r][next_mentee[r]]
            next_mentee[r] += 1
            k = next_place[c]
            mentor_id = col_members[c][k].person_id
            left[c][k] -= 1
            if left[c][k] == 0:
                next_place[c] += 1
            pairs.append(ProposedPair(mentee.person_id, mentor_id, alignment.score, alignment.reasons))

    placed = {p.mentee_id for p in pairs}
    reason = "no eligible mentor with free capacity" if not pool else "no place left under the chosen objective"
    for m in mentees:
        if m.person_id not in placed:
            unmatched[m.person_id] = reason
    total = sum(p.score for p in pairs)
    return MatchingResult(
        pairs=pairs,
        unmatched=unmatched,
        total_score=total,
        objective=problem.objective,
        stats={
            "mentee_classes": len(row_members),
            "mentor_classes": len(col_members),
            "phases": result.phases,
            "augmentations": result.augmentations,
        },
    )


def check_assignment(problem: MatchingProblem, pairs: Iterable[ProposedPair]) -> list[str]:
    """Every hard constraint the pairs break (empty = valid). Used by tests and manual matching."""
    problems: list[str] = []
    mentors = {m.person_id: m for m in problem.mentors}
    mentee_ids = {m.person_id for m in problem.mentees}
    load: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    for p in pairs:
        if p.mentee_id not in mentee_ids:
            problems.append(f"{p.mentee_id} is not in the pool")
        if p.mentee_id in seen:
            problems.append(f"{p.mentee_id} matched twice")
        seen.add(p.mentee_id)
        mentor = mentors.get(p.mentor_id)
        if mentor is None:
            problems.append(f"{p.mentor_id} is not in the pool")
            continue
        if not mentor.eligible:
            problems.append(f"{p.mentor_id} is not eligible")
        if (p.mentee_id, p.mentor_id) in problem.excluded_pairs:
            problems.append(f"{p.mentee_id}-{p.mentor_id} is an excluded pair")
        load[p.mentor_id] += 1
    for mentor_id, n in load.items():
        if n > mentors[mentor_id].free_places:
            problems.append(f"{mentor_id} has {n} mentees for {mentors[mentor_id].free_places} places")
    return problems
