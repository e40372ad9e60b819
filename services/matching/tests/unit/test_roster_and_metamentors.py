"""CSV roster parsing and metamentor caseload balancing."""

from __future__ import annotations

import pytest

from services.matching.domain.metamentors import plan_metamentors
from services.matching.domain.roster import RowError, parse_roster

pytestmark = pytest.mark.unit

GOOD = "name,email,grade_band,subjects,years_in_position,training_completed,capacity\n"


def test_a_clean_roster_parses_every_row() -> None:
    text = GOOD + "Ana,ana@x.org,6-8,Math;Science,3,yes,2\nBo,bo@x.org,k-2,,1,no,\n"
    roster = parse_roster(text, kind="mentor")
    assert roster.errors == []
    assert [(r.line, r.name, r.capacity) for r in roster.rows] == [(2, "Ana", 2), (3, "Bo", None)]
    assert roster.rows[0].profile.subjects == frozenset({"math", "science"})
    assert roster.rows[0].profile.training_completed is True


def test_every_bad_row_is_reported_with_line_field_and_reason() -> None:
    text = GOOD + (
        "Ana,ana@x.org,6-8,Math,3,yes,2\n"
        ",not-an-email,6-8,Math,three,maybe,99\n"
        "Ana again,ANA@x.org,6-8,Math,2,yes,1\n"
        "Cy,cy@x.org,6-8,Math,2,yes,1\n"
    )
    roster = parse_roster(text, kind="mentor", existing_emails={"cy@x.org"})
    assert roster.errors == [
        RowError(3, "name", "required"),
        RowError(3, "email", "'not-an-email' is not an email address"),
        RowError(3, "years_in_position", "'three' is not a whole number"),
        RowError(3, "capacity", "must be between 0 and 50, got 99"),
        RowError(3, "training_completed", "'maybe' is not yes or no"),
        RowError(4, "email", "duplicate of line 2"),
        RowError(5, "email", "already enrolled as a mentor in this program"),
    ]
    assert [r.line for r in roster.rows] == [2]


def test_header_problems_are_reported_on_line_one() -> None:
    roster = parse_roster("name,shoe_size,capacity\nA,1,2\n", kind="mentee")
    assert roster.errors == [
        RowError(1, "email", "required column is missing"),
        RowError(1, "shoe_size", "unknown column"),
        RowError(1, "capacity", "only mentors have a capacity, not mentees"),
    ]
    assert parse_roster("", kind="mentee").errors == [RowError(1, "header", "the file is empty; a header row is required")]


def test_metamentors_get_the_least_loaded_first_and_stay_balanced() -> None:
    plan = plan_metamentors([f"p{i}" for i in range(7)], {"a": 3, "b": 0, "c": 1}, minimum=2, maximum=5)
    assert sorted(plan.caseloads.values()) == [3, 4, 4]
    assert plan.unassigned == [] and plan.warnings == []
    assert plan.assignments["p0"] == "b"


def test_metamentor_range_that_cannot_be_met_is_reported() -> None:
    full = plan_metamentors(["p1", "p2"], {"a": 40}, minimum=30, maximum=40)
    assert full.unassigned == ["p1", "p2"]
    assert full.warnings == ["2 partnership(s) left without a metamentor: every metamentor is at the maximum caseload of 40"]
    low = plan_metamentors(["p1"], {"a": 0, "b": 0}, minimum=30, maximum=40)
    assert low.warnings == [
        "metamentor a has 1 partnership(s), below the minimum of 30",
        "metamentor b has 0 partnership(s), below the minimum of 30",
    ]
    none = plan_metamentors(["p1"], {}, minimum=30, maximum=40)
    assert none.warnings == ["1 partnership(s) left without a metamentor: the program has no metamentor"]
