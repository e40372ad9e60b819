"""The role rules, exhaustively: every role against its own, another mentor's and another
program's partnership, for every kind of action."""

from __future__ import annotations

import pytest

from services.gateway.domain.access import (
    PartnershipFacts,
    Principal,
    Role,
    can_act_as_mentor,
    can_log_for_partnership,
    can_manage_user,
    can_report_incident,
    can_request_rematch,
    can_view_partnership,
    can_view_person,
)

pytestmark = pytest.mark.unit

OWN = PartnershipFacts("pa-1", "prog-a", mentor_id="mentor-1", mentee_id="mentee-1", metamentor_id="meta-1")
OTHER_MENTOR = PartnershipFacts("pa-2", "prog-a", mentor_id="mentor-2", mentee_id="mentee-2", metamentor_id="meta-2")
OTHER_PROGRAM = PartnershipFacts("pb-1", "prog-b", mentor_id="mentor-1", mentee_id="mentee-1", metamentor_id="meta-1")

PEOPLE = {
    "admin": Principal("u0", "Ada", Role.ADMIN),
    "coordinator": Principal("u1", "Cy", Role.COORDINATOR, frozenset({"prog-a"})),
    "metamentor": Principal("u2", "Mo", Role.METAMENTOR, frozenset({"prog-a"}), "meta-1"),
    "mentor": Principal("u3", "Mia", Role.MENTOR, frozenset({"prog-a"}), "mentor-1"),
    "mentee": Principal("u4", "Ed", Role.MENTEE, frozenset({"prog-a"}), "mentee-1"),
}

# (who, partnership) -> allowed, for each rule. OTHER_PROGRAM reuses the same person ids on purpose:
# ids that collide across programs must not open another program's data.
EXPECTED = {
    can_view_partnership: {"admin": (1, 1, 1), "coordinator": (1, 1, 0), "metamentor": (1, 0, 0),
                           "mentor": (1, 0, 0), "mentee": (1, 0, 0)},
    can_log_for_partnership: {"admin": (1, 1, 1), "coordinator": (1, 1, 0), "metamentor": (0, 0, 0),
                              "mentor": (1, 0, 0), "mentee": (0, 0, 0)},
    can_request_rematch: {"admin": (1, 1, 1), "coordinator": (1, 1, 0), "metamentor": (0, 0, 0),
                          "mentor": (0, 0, 0), "mentee": (1, 0, 0)},
    can_report_incident: {"admin": (1, 1, 1), "coordinator": (1, 1, 0), "metamentor": (0, 0, 0),
                          "mentor": (1, 0, 0), "mentee": (1, 0, 0)},
}


@pytest.mark.parametrize("rule", list(EXPECTED), ids=lambda r: r.__name__)
@pytest.mark.parametrize("who", list(PEOPLE))
def test_partnership_rules(rule, who: str) -> None:
    got = tuple(int(rule(PEOPLE[who], f)) for f in (OWN, OTHER_MENTOR, OTHER_PROGRAM))
    assert got == EXPECTED[rule][who]


def test_a_coordinator_of_two_programs_reaches_both_and_nothing_else() -> None:
    both = Principal("u9", "Bo", Role.COORDINATOR, frozenset({"prog-a", "prog-b"}))
    assert can_view_partnership(both, OWN) and can_view_partnership(both, OTHER_PROGRAM)
    assert not both.is_staff_of("prog-c")


def test_a_mentor_acts_only_on_their_own_records_in_their_program() -> None:
    mentor = PEOPLE["mentor"]
    assert can_act_as_mentor(mentor, "prog-a", "mentor-1")
    assert not can_act_as_mentor(mentor, "prog-a", "mentor-2")
    assert not can_act_as_mentor(mentor, "prog-b", "mentor-1")
    # a mentee whose id equals a mentor id is still not that mentor
    assert not can_act_as_mentor(Principal("u5", "X", Role.MENTEE, frozenset({"prog-a"}), "mentor-1"),
                                 "prog-a", "mentor-1")


def test_people_see_their_own_person_record_only() -> None:
    assert can_view_person(PEOPLE["mentee"], "prog-a", "mentee-1")
    assert not can_view_person(PEOPLE["mentee"], "prog-a", "mentor-1")
    assert not can_view_person(PEOPLE["mentee"], "prog-b", "mentee-1")
    assert can_view_person(PEOPLE["coordinator"], "prog-a", "anyone")
    assert not can_view_person(PEOPLE["coordinator"], "prog-b", "anyone")


@pytest.mark.parametrize(
    ("who", "role", "programs", "allowed"),
    [
        ("admin", Role.ADMIN, [], True),
        ("admin", Role.COORDINATOR, ["prog-z"], True),
        ("coordinator", Role.MENTOR, ["prog-a"], True),
        ("coordinator", Role.MENTOR, ["prog-b"], False),
        ("coordinator", Role.MENTOR, ["prog-a", "prog-b"], False),
        ("coordinator", Role.MENTEE, [], False),
        ("coordinator", Role.COORDINATOR, ["prog-a"], False),
        ("coordinator", Role.ADMIN, [], False),
        ("mentor", Role.MENTEE, ["prog-a"], False),
        ("metamentor", Role.MENTOR, ["prog-a"], False),
    ],
)
def test_who_manages_which_users(who: str, role: Role, programs: list[str], allowed: bool) -> None:
    assert can_manage_user(PEOPLE[who], role, programs) is allowed
