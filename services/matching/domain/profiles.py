"""Profiles, mentor eligibility and alignment scoring: pure rules, no I/O.

A program matches on criteria (grade band, subjects, role, site, region, languages, availability)
with integer weights from its ProgramPolicy. A single-valued criterion matches when both people
name the same value; a many-valued one when they share at least one value. A pair's score is the
sum of the weights of the criteria that match, and the reasons name those criteria and values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from shared.contracts.program import Eligibility

CriterionKind = Literal["one", "many"]

# The attributes a program can match on, and whether a person has one value or several.
CRITERIA: dict[str, CriterionKind] = {
    "grade_band": "one",
    "subjects": "many",
    "role": "one",
    "site": "one",
    "region": "one",
    "languages": "many",
    "availability": "many",
}


def normalise(value: str) -> str:
    """Values compare case- and space-insensitively ("Math " == "math")."""
    return " ".join(value.split()).casefold()


def _one(value: str | None) -> str | None:
    if value is None:
        return None
    v = normalise(value)
    return v or None


def _many(values: Iterable[str] | None) -> frozenset[str]:
    return frozenset(v for v in (normalise(x) for x in values or ()) if v)


@dataclass(frozen=True, slots=True)
class Profile:
    """What a person brings to matching and to mentor eligibility."""

    grade_band: str | None = None
    subjects: frozenset[str] = frozenset()
    role: str | None = None
    site: str | None = None
    region: str | None = None
    languages: frozenset[str] = frozenset()
    availability: frozenset[str] = frozenset()
    years_in_position: int | None = None
    years_in_program: int | None = None
    training_completed: bool = False

    @classmethod
    def of(
        cls,
        *,
        grade_band: str | None = None,
        subjects: Iterable[str] | None = None,
        role: str | None = None,
        site: str | None = None,
        region: str | None = None,
        languages: Iterable[str] | None = None,
        availability: Iterable[str] | None = None,
        years_in_position: int | None = None,
        years_in_program: int | None = None,
        training_completed: bool = False,
    ) -> Profile:
        return cls(
            grade_band=_one(grade_band),
            subjects=_many(subjects),
            role=_one(role),
            site=_one(site),
            region=_one(region),
            languages=_many(languages),
            availability=_many(availability),
            years_in_position=years_in_position,
            years_in_program=years_in_program,
            training_completed=training_completed,
        )

    def value(self, criterion: str) -> str | frozenset[str] | None:
        return getattr(self, criterion)


def unknown_criteria(weights: Mapping[str, int]) -> list[str]:
    return sorted(set(weights) - set(CRITERIA))


# -- eligibility -------------------------------------------------------------------------------
def ineligibility_reasons(profile: Profile, rules: Eligibility) -> list[str]:
    """Why a mentor may not be matched automatically under these rules ([] = eligible)."""
    reasons: list[str] = []
    if rules.min_years_in_position is not None:
        years = profile.years_in_position
        if years is None:
            reasons.append(
                f"years_in_position unknown; the program requires at least {rules.min_years_in_position}"
            )
        elif years < rules.min_years_in_position:
            reasons.append(
                f"years_in_position is {years}; the program requires at least {rules.min_years_in_position}"
            )
    if rules.min_years_in_program is not None:
        years = profile.years_in_program
        if years is None:
            reasons.append(
                f"years_in_program unknown; the program requires at least {rules.min_years_in_program}"
            )
        elif years < rules.min_years_in_program:
            reasons.append(
                f"years_in_program is {years}; the program requires at least {rules.min_years_in_program}"
            )
    if rules.training_required and not profile.training_completed:
        reasons.append("training not completed; the program requires it")
    return reasons


# -- alignment ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Alignment:
    score: int
    reasons: tuple[str, ...] = field(default_factory=tuple)


def criterion_match(criterion: str, a: Profile, b: Profile) -> str | None:
    """The shared value(s) if the criterion matches, else None."""
    kind = CRITERIA[criterion]
    va, vb = a.value(criterion), b.value(criterion)
    if kind == "one":
        if va is not None and va == vb:
            return str(va)
        return None
    assert isinstance(va, frozenset) and isinstance(vb, frozenset)
    shared = va & vb
    return ", ".join(sorted(shared)) if shared else None


def align(mentee: Profile, mentor: Profile, weights: Mapping[str, int]) -> Alignment:
    """The pair's score (sum of the weights of matching criteria) and the reasons."""
    score = 0
    reasons: list[str] = []
    for criterion in sorted(weights):
        weight = weights[criterion]
        if weight <= 0:
            continue
        shared = criterion_match(criterion, mentee, mentor)
        if shared is not None:
            score += weight
            reasons.append(f"{criterion}: {shared} (+{weight})")
    return Alignment(score, tuple(reasons))
