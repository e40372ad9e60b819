"""Who may do what: pure rules over a principal (the authenticated user) and the facts about a
resource that the owning service reports (a partnership's program, mentor, mentee, metamentor).

Staff of a program (its coordinators, and admins everywhere) may do everything in it; the people
in a partnership see it and act on their own part of it; nobody reaches another program.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    METAMENTOR = "metamentor"
    MENTOR = "mentor"
    MENTEE = "mentee"


PARTICIPANT_ROLES = frozenset({Role.METAMENTOR, Role.MENTOR, Role.MENTEE})
STAFF_ROLES = frozenset({Role.ADMIN, Role.COORDINATOR})


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    role: Role
    program_ids: frozenset[str] = field(default_factory=frozenset)
    # The matching service's id of this mentor / mentee / metamentor (None for staff).
    person_id: str | None = None

    @property
    def actor_id(self) -> str:
        """The id services record as the actor: the person for participants, the user for staff."""
        return self.person_id or self.user_id

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def in_program(self, program_id: str) -> bool:
        return self.is_admin or program_id in self.program_ids

    def is_staff_of(self, program_id: str) -> bool:
        return self.is_admin or (self.role is Role.COORDINATOR and program_id in self.program_ids)

    def is_person(self, role: Role, person_id: str | None) -> bool:
        """This principal is the given participant (role and id both match)."""
        return self.role is role and self.person_id is not None and self.person_id == person_id


@dataclass(frozen=True)
class PartnershipFacts:
    """What the matching service says about one partnership; the gateway keeps no copy."""

    partnership_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    metamentor_id: str | None = None


def can_view_partnership(p: Principal, f: PartnershipFacts) -> bool:
    if p.is_staff_of(f.program_id):
        return True
    if not p.in_program(f.program_id):
        return False
    return (
        p.is_person(Role.MENTOR, f.mentor_id)
        or p.is_person(Role.MENTEE, f.mentee_id)
        or p.is_person(Role.METAMENTOR, f.metamentor_id)
    )


def can_log_for_partnership(p: Principal, f: PartnershipFacts) -> bool:
    """Meetings, activities and time entries of a partnership: its mentor, or staff."""
    if p.is_staff_of(f.program_id):
        return True
    return p.in_program(f.program_id) and p.is_person(Role.MENTOR, f.mentor_id)


def can_request_rematch(p: Principal, f: PartnershipFacts) -> bool:
    """"Changing your mentor": the mentee asks, or staff."""
    if p.is_staff_of(f.program_id):
        return True
    return p.in_program(f.program_id) and p.is_person(Role.MENTEE, f.mentee_id)


def can_report_incident(p: Principal, f: PartnershipFacts) -> bool:
    """A disrespectful interaction is reported by either partner (or staff on their behalf)."""
    if p.is_staff_of(f.program_id):
        return True
    return p.in_program(f.program_id) and (
        p.is_person(Role.MENTEE, f.mentee_id) or p.is_person(Role.MENTOR, f.mentor_id)
    )


def can_act_as_mentor(p: Principal, program_id: str, mentor_id: str) -> bool:
    """A mentor's own records (time entries, statements, capacity, reimbursements): the mentor, or staff."""
    if p.is_staff_of(program_id):
        return True
    return p.in_program(program_id) and p.is_person(Role.MENTOR, mentor_id)


def can_view_person(p: Principal, program_id: str, person_id: str) -> bool:
    """A person's own record (messages, preferences): that person, or staff."""
    if p.is_staff_of(program_id):
        return True
    return p.in_program(program_id) and p.person_id == person_id and p.role in PARTICIPANT_ROLES


def visible_partnerships(p: Principal, items: Iterable[PartnershipFacts]) -> list[PartnershipFacts]:
    return [f for f in items if can_view_partnership(p, f)]


def can_manage_user(p: Principal, role: Role, program_ids: Iterable[str]) -> bool:
    """Admins manage everyone; a coordinator manages participants of their own programs only."""
    if p.is_admin:
        return True
    programs = set(program_ids)
    return (
        p.role is Role.COORDINATOR
        and role in PARTICIPANT_ROLES
        and bool(programs)
        and programs <= p.program_ids
    )
