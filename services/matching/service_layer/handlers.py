"""Command handlers: each takes the request's unit of work (session + outbox), the actor and the
time, changes the store and emits the events of that change in the same transaction."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import func
from sqlmodel import Session, col, select

from services.matching.adapters.tables import (
    ExclusionRow,
    IncidentRow,
    PartnershipRow,
    PersonRow,
    ProgramRow,
    ProposalPairRow,
    ProposalRow,
    TransitionRow,
)
from services.matching.domain.matching import (
    MatchingProblem,
    MenteeCandidate,
    MentorCandidate,
    Objective,
    solve,
)
from services.matching.domain.metamentors import plan_metamentors
from services.matching.domain.profiles import Profile, align, ineligibility_reasons, unknown_criteria
from services.matching.domain.roster import Roster, RowError, parse_roster, valid_email
from services.matching.service_layer import commands as cmd
from services.matching.service_layer import roster_file
from shared.contracts.base import Event
from shared.contracts.matching import (
    IncidentReported,
    MenteeEnrolled,
    MenteeMatched,
    MentorCapacityChanged,
    MentorEnrolled,
    MentorPaused,
    MentorProfileUpdated,
    MentorResumed,
    MetamentorAssigned,
    MetamentorEnrolled,
    PartnershipEnded,
    ProgramConfigured,
    RematchRequested,
)
from shared.contracts.program import ProgramPolicy
from shared.errors import Conflict, DomainError, NotFound, Problem


class UnitOfWork(Protocol):
    """What a handler needs: shared.service.Transaction satisfies it."""

    session: Session

    def emit(self, event: Event, *, topic: str | None = None) -> Any: ...


@dataclass(frozen=True)
class Actor:
    actor_id: str = ""
    role: str = ""


class RosterRejected(DomainError):
    """A CSV import refused because of bad rows: every row problem with its line."""

    status = 422

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        # A file of 10,000 bad rows must not answer with 10,000 problems (megabytes nobody reads).
        shown, self.more = roster_file.reported(errors)
        problems = [Problem(e.field, f"line {e.line}: {e.reason}", "invalid_row") for e in shown]
        if self.more:
            problems.append(self._more_problem())
        super().__init__("file", "the file has errors", "invalid_rows", problems=problems)

    def _more_problem(self) -> Problem:
        lines = len({e.line for e in self.errors})
        return Problem("file", f"{self.more} more problems not shown ({len(self.errors)} in all, on {lines} "
                       "lines); fix these and import again", "more_invalid_rows")

    def body(self) -> dict[str, Any]:
        shown, _ = roster_file.reported(self.errors)
        detail: list[dict[str, Any]] = [
            {"line": e.line, "field": e.field, "reason": e.reason, "code": "invalid_row"} for e in shown]
        if self.more:
            detail.append(self._more_problem().as_dict())
        return {"detail": detail}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# -- loading -----------------------------------------------------------------------------------
def get_program(session: Session, program_id: str) -> ProgramRow:
    row = session.get(ProgramRow, program_id)
    if row is None:
        raise NotFound("program_id", f"no program {program_id!r}")
    return row


def policy_of(program: ProgramRow) -> ProgramPolicy:
    return ProgramPolicy.model_validate_json(program.policy)


def get_person(session: Session, person_id: str, kind: str, field: str | None = None) -> PersonRow:
    row = session.get(PersonRow, person_id)
    if row is None or row.kind != kind:
        raise NotFound(field or f"{kind}_id", f"no {kind} {person_id!r}")
    return row


def get_partnership(session: Session, partnership_id: str) -> PartnershipRow:
    row = session.get(PartnershipRow, partnership_id)
    if row is None:
        raise NotFound("partnership_id", f"no partnership {partnership_id!r}")
    return row


def profile_of(person: PersonRow) -> Profile:
    data = json.loads(person.profile)
    return Profile.of(**data)


def _profile_json(c: cmd.EnrolPerson | Profile) -> str:
    return _dumps({
        "grade_band": c.grade_band, "subjects": sorted(c.subjects), "role": c.role, "site": c.site,
        "region": c.region, "languages": sorted(c.languages), "availability": sorted(c.availability),
        "years_in_position": c.years_in_position, "years_in_program": c.years_in_program,
        "training_completed": c.training_completed,
    })


def active_load(session: Session, mentor_id: str) -> int:
    return int(session.exec(
        select(func.count()).select_from(PartnershipRow).where(
            PartnershipRow.mentor_id == mentor_id, PartnershipRow.status == "active")
    ).one())


def active_partnership_of(session: Session, mentee_id: str) -> PartnershipRow | None:
    return session.exec(select(PartnershipRow).where(
        PartnershipRow.mentee_id == mentee_id, PartnershipRow.status == "active")).first()


# -- programs ----------------------------------------------------------------------------------
def _check_policy(policy: ProgramPolicy) -> None:
    unknown = unknown_criteria(policy.matching.criteria_weights)
    if unknown:
        raise DomainError("policy.matching.criteria_weights", f"unknown criteria: {', '.join(unknown)}",
                          "unknown_criterion")
    if any(w < 0 for w in policy.matching.criteria_weights.values()):
        raise DomainError("policy.matching.criteria_weights", "weights must not be negative", "negative_weight")
    m = policy.matching
    if m.metamentor_caseload_min > m.metamentor_caseload_max:
        raise DomainError("policy.matching.metamentor_caseload_min",
                          "the minimum caseload must not exceed the maximum", "invalid_range")


def configure_program(uow: UnitOfWork, c: cmd.ConfigureProgram, actor: Actor, now: datetime) -> ProgramRow:
    _check_policy(c.policy)
    program_id = c.program_id or new_id("program")
    if uow.session.get(ProgramRow, program_id) is not None:
        raise Conflict("program_id", f"program {program_id!r} already exists", "exists")
    row = ProgramRow(program_id=program_id, name=c.name, revision=1, policy=c.policy.model_dump_json(),
                     created_at=now, updated_at=now, updated_by=actor.actor_id)
    uow.session.add(row)
    uow.emit(ProgramConfigured(program_id=program_id, name=c.name, revision=1, policy=c.policy))
    return row


def change_program(uow: UnitOfWork, program_id: str, c: cmd.ChangeProgram, actor: Actor, now: datetime) -> ProgramRow:
    row = get_program(uow.session, program_id)
    if c.name is None and c.policy is None:
        raise DomainError("body", "nothing to change: give a name or a policy", "empty")
    policy = c.policy or policy_of(row)
    _check_policy(policy)
    row.name = c.name or row.name
    row.policy = policy.model_dump_json()
    row.revision += 1
    row.updated_at = now
    row.updated_by = actor.actor_id
    uow.session.add(row)
    uow.emit(ProgramConfigured(program_id=program_id, name=row.name, revision=row.revision, policy=policy))
    # Eligibility follows the rules: re-judge every mentor and say whose standing changed.
    mentors = uow.session.exec(select(PersonRow).where(
        PersonRow.program_id == program_id, PersonRow.kind == "mentor")).all()
    for mentor in mentors:
        reasons = ineligibility_reasons(profile_of(mentor), policy.matching.eligibility)
        if (not reasons) != mentor.eligible or _dumps(reasons) != mentor.ineligible_reasons:
            mentor.eligible = not reasons
            mentor.ineligible_reasons = _dumps(reasons)
            uow.session.add(mentor)
            uow.emit(MentorProfileUpdated(person_id=mentor.person_id, program_id=program_id,
                                          changed_fields=["eligible", "ineligible_reasons"]))
    return row


# -- enrolment ---------------------------------------------------------------------------------
def _emails(session: Session, program_id: str, kind: str) -> set[str]:
    rows = session.exec(select(PersonRow.email).where(PersonRow.program_id == program_id, PersonRow.kind == kind))
    return {e.casefold() for e in rows.all()}


def _enrol(uow: UnitOfWork, program: ProgramRow, kind: cmd.PersonKind, *, person_id: str | None, name: str,
           email: str, profile_json: str, capacity: int | None, actor: Actor, now: datetime) -> PersonRow:
    policy = policy_of(program)
    profile = Profile.of(**json.loads(profile_json))
    reasons = ineligibility_reasons(profile, policy.matching.eligibility) if kind == "mentor" else []
    cap = (policy.matching.default_capacity if capacity is None else capacity) if kind == "mentor" else 0
    row = PersonRow(
        person_id=person_id or new_id(kind), program_id=program.program_id, kind=kind, name=name, email=email,
        profile=profile_json, capacity=cap, eligible=not reasons, ineligible_reasons=_dumps(reasons),
        enrolled_at=now, enrolled_by=actor.actor_id,
    )
    uow.session.add(row)
    common = dict(person_id=row.person_id, program_id=program.program_id, name=name, email=email)
    if kind == "mentor":
        uow.emit(MentorEnrolled(**common, capacity=cap, eligible=not reasons, ineligible_reasons=reasons))
    elif kind == "mentee":
        uow.emit(MenteeEnrolled(**common))
    else:
        uow.emit(MetamentorEnrolled(**common))
    return row


def enrol(uow: UnitOfWork, program_id: str, kind: cmd.PersonKind, c: cmd.EnrolPerson, actor: Actor,
          now: datetime) -> PersonRow:
    program = get_program(uow.session, program_id)
    if not valid_email(c.email):
        raise DomainError("email", f"{c.email!r} is not an email address")
    if kind != "mentor" and c.capacity is not None:
        raise DomainError("capacity", f"only mentors have a capacity, not {kind}s")
    if c.email.casefold() in _emails(uow.session, program_id, kind):
        raise Conflict("email", f"already enrolled as a {kind} in this program", "exists")
    if c.person_id and uow.session.get(PersonRow, c.person_id) is not None:
        raise Conflict("person_id", f"{c.person_id!r} is already taken", "exists")
    return _enrol(uow, program, kind, person_id=c.person_id, name=c.name, email=c.email,
                  profile_json=_profile_json(c), capacity=c.capacity, actor=actor, now=now)


def import_roster(uow: UnitOfWork, program_id: str, kind: cmd.PersonKind, text: str, *, import_good_rows: bool,
                  actor: Actor, now: datetime) -> tuple[list[PersonRow], Roster]:
    """Import a CSV roster: nothing if any row is bad, unless asked to import the good rows."""
    program = get_program(uow.session, program_id)
    text = roster_file.normalise_newlines(text)
    roster_file.check_file(text)
    roster = parse_roster(text, kind=kind, existing_emails=_emails(uow.session, program_id, kind))
    roster_file.long_values(text, roster)
    header_broken = any(e.line == 1 for e in roster.errors)
    if roster.errors and (not import_good_rows or header_broken):
        raise RosterRejected(roster.errors)
    people = [
        _enrol(uow, program, kind, person_id=None, name=r.name, email=r.email,
               profile_json=_profile_json(r.profile), capacity=r.capacity, actor=actor, now=now)
        for r in roster.rows
    ]
    return people, roster


def update_profile(uow: UnitOfWork, person_id: str, c: cmd.UpdateProfile, now: datetime) -> PersonRow:
    session = uow.session
    person = session.get(PersonRow, person_id)
    if person is None:
        raise NotFound("person_id", f"no person {person_id!r}")
    given = c.model_dump(exclude_unset=True)
    if not given:
        raise DomainError("body", "nothing to change", "empty")
    changed: list[str] = []
    if "name" in given and c.name and c.name != person.name:
        person.name = c.name
        changed.append("name")
    if "email" in given and c.email and c.email != person.email:
        if not valid_email(c.email):
            raise DomainError("email", f"{c.email!r} is not an email address")
        if c.email.casefold() in _emails(session, person.program_id, person.kind):
            raise Conflict("email", f"already enrolled as a {person.kind} in this program", "exists")
        person.email = c.email
        changed.append("email")
    profile = json.loads(person.profile)
    for field, value in given.items():
        if field in ("name", "email"):
            continue
        if isinstance(value, list):
            value = sorted(value)
        if profile.get(field) != value:
            profile[field] = value
            changed.append(field)
    person.profile = _dumps(profile)
    if person.kind == "mentor":
        policy = policy_of(get_program(session, person.program_id))
        reasons = ineligibility_reasons(profile_of(person), policy.matching.eligibility)
        if _dumps(reasons) != person.ineligible_reasons:
            person.eligible = not reasons
            person.ineligible_reasons = _dumps(reasons)
            changed += ["eligible", "ineligible_reasons"]
        if changed:
            uow.emit(MentorProfileUpdated(
                person_id=person_id, program_id=person.program_id, changed_fields=changed,
                name=person.name if "name" in changed else None, email=person.email if "email" in changed else None,
            ))
    session.add(person)
    return person


def change_capacity(uow: UnitOfWork, mentor_id: str, c: cmd.ChangeCapacity, now: datetime) -> PersonRow:
    mentor = get_person(uow.session, mentor_id, "mentor")
    if mentor.status != "active":
        raise Conflict("capacity", f"the mentor is {mentor.status}; resume them to change capacity", mentor.status)
    previous = mentor.capacity
    mentor.capacity = c.capacity
    uow.session.add(mentor)
    uow.emit(MentorCapacityChanged(person_id=mentor_id, program_id=mentor.program_id, capacity=c.capacity,
                                   previous_capacity=previous))
    return mentor


def ban_pair(uow: UnitOfWork, program_id: str, c: cmd.BanPair, now: datetime) -> ExclusionRow:
    get_program(uow.session, program_id)
    for pid, kind, field in ((c.mentee_id, "mentee", "mentee_id"), (c.mentor_id, "mentor", "mentor_id")):
        person = get_person(uow.session, pid, kind, field)
        if person.program_id != program_id:
            raise Conflict(field, "belongs to another program", "other_program")
    row = uow.session.get(ExclusionRow, (program_id, c.mentee_id, c.mentor_id))
    if row is None:
        row = ExclusionRow(program_id=program_id, mentee_id=c.mentee_id, mentor_id=c.mentor_id,
                           reason=c.reason, created_at=now)
        uow.session.add(row)
    return row


# -- proposals ---------------------------------------------------------------------------------
def former_mentors(session: Session, mentee_ids: list[str]) -> set[tuple[str, str]]:
    if not mentee_ids:
        return set()
    rows = session.exec(select(PartnershipRow.mentee_id, PartnershipRow.mentor_id).where(
        col(PartnershipRow.mentee_id).in_(mentee_ids), PartnershipRow.status == "ended"))
    return {(a, b) for a, b in rows.all()}


def _lock_people(session: Session, person_ids: list[str]) -> None:
    """Lock these people's rows until the transaction ends, in one order (no deadlock between two
    publishes). Two publishes at once must not both take a mentor's last place: under PostgreSQL's
    read committed each would count the mentor's partnerships without seeing the other's; the
    second now waits here and counts after the first commits. (SQLite's write transactions are
    serial already; FOR UPDATE is left out there.)"""
    if person_ids:
        session.exec(select(PersonRow.person_id).where(col(PersonRow.person_id).in_(sorted(set(person_ids))))
                     .order_by(col(PersonRow.person_id)).with_for_update()).all()


def _loads(session: Session, program_id: str) -> Counter[str]:
    rows = session.exec(select(PartnershipRow.mentor_id).where(
        PartnershipRow.program_id == program_id, PartnershipRow.status == "active"))
    return Counter(rows.all())


def propose(uow: UnitOfWork, program_id: str, c: cmd.ProposeMatches, actor: Actor, now: datetime,
            purpose: Literal["pool", "rematch", "transition"] = "pool") -> ProposalRow:
    session = uow.session
    program = get_program(session, program_id)
    policy = policy_of(program)
    objective: Objective = c.objective or policy.matching.objective
    mentees = session.exec(select(PersonRow).where(
        PersonRow.program_id == program_id, PersonRow.kind == "mentee", PersonRow.status == "active")).all()
    matched = set(session.exec(select(PartnershipRow.mentee_id).where(
        PartnershipRow.program_id == program_id, PartnershipRow.status == "active")).all())
    if c.mentee_ids is not None:
        by_id = {m.person_id: m for m in mentees}
        problems = [Problem("mentee_ids", f"{m!r} is not an active mentee of this program", "not_found")
                    for m in c.mentee_ids if m not in by_id]
        problems += [Problem("mentee_ids", f"{m!r} already has an active partnership", "matched")
                     for m in c.mentee_ids if m in by_id and m in matched]
        if problems:
            raise Conflict("mentee_ids", problems[0].reason, problems=problems)
        pool = [by_id[m] for m in dict.fromkeys(c.mentee_ids)]
    else:
        pool = [m for m in mentees if m.person_id not in matched]
    mentors = session.exec(select(PersonRow).where(
        PersonRow.program_id == program_id, PersonRow.kind == "mentor", PersonRow.status == "active")).all()
    loads = _loads(session, program_id)
    excluded = {(e.mentee_id, e.mentor_id) for e in session.exec(
        select(ExclusionRow).where(ExclusionRow.program_id == program_id)).all()}
    excluded |= former_mentors(session, [m.person_id for m in pool])
    problem = MatchingProblem(
        mentees=[MenteeCandidate(m.person_id, profile_of(m)) for m in pool],
        mentors=[MentorCandidate(t.person_id, profile_of(t), max(0, t.capacity - loads[t.person_id]), t.eligible)
                 for t in mentors],
        weights=policy.matching.criteria_weights,
        objective=objective,
        excluded_pairs=frozenset(excluded),
    )
    result = solve(problem)
    proposal = ProposalRow(
        proposal_id=new_id("proposal"), program_id=program_id, objective=objective, purpose=purpose,
        unmatched=_dumps(result.unmatched),
        stats=_dumps({**result.stats, "matched": result.matched, "total_score": result.total_score,
                      "pool": len(pool)}),
        created_at=now, created_by=actor.actor_id,
    )
    session.add(proposal)
    for p in result.pairs:
        session.add(ProposalPairRow(proposal_id=proposal.proposal_id, mentee_id=p.mentee_id,
                                    mentor_id=p.mentor_id, score=p.score, reasons=_dumps(list(p.reasons))))
    return proposal


def _start_partnership(uow: UnitOfWork, program_id: str, mentee_id: str, mentor_id: str, *, score: int,
                       reasons: list[str], manual: bool, warnings: list[str], actor: Actor,
                       now: datetime) -> PartnershipRow:
    previous = uow.session.exec(select(PartnershipRow).where(
        PartnershipRow.mentee_id == mentee_id, PartnershipRow.status == "ended",
    ).order_by(col(PartnershipRow.ended_at).desc())).first()
    row = PartnershipRow(
        partnership_id=new_id("partnership"), program_id=program_id, mentor_id=mentor_id, mentee_id=mentee_id,
        score=score, reasons=_dumps(reasons), manual=manual, warnings=_dumps(warnings),
        previous_partnership_id=previous.partnership_id if previous else None,
        started_at=now, created_by=actor.actor_id,
    )
    uow.session.add(row)
    uow.emit(MenteeMatched(
        partnership_id=row.partnership_id, program_id=program_id, mentor_id=mentor_id, mentee_id=mentee_id,
        started_at=now, score=score, reasons=reasons, manual=manual, warnings=warnings,
        previous_partnership_id=row.previous_partnership_id,
    ))
    return row


def publish(uow: UnitOfWork, proposal_id: str, c: cmd.PublishProposal, actor: Actor,
            now: datetime) -> tuple[list[PartnershipRow], list[str]]:
    session = uow.session
    proposal = session.get(ProposalRow, proposal_id)
    if proposal is None:
        raise NotFound("proposal_id", f"no proposal {proposal_id!r}")
    pairs = session.exec(select(ProposalPairRow).where(ProposalPairRow.proposal_id == proposal_id)
                         .order_by(col(ProposalPairRow.id))).all()
    if c.mentee_ids is not None:
        by_mentee = {p.mentee_id: p for p in pairs}
        missing = [Problem("mentee_ids", f"{m!r} is not in this proposal", "not_found")
                   for m in c.mentee_ids if m not in by_mentee]
        done = [Problem("mentee_ids", f"{m!r} is already published", "published")
                for m in c.mentee_ids if m in by_mentee and by_mentee[m].partnership_id]
        if missing or done:
            raise Conflict("mentee_ids", (missing + done)[0].reason, problems=missing + done)
        chosen = [by_mentee[m] for m in dict.fromkeys(c.mentee_ids)]
    else:
        chosen = [p for p in pairs if not p.partnership_id]
    _lock_people(session, [p.mentor_id for p in chosen])
    loads = _loads(session, proposal.program_id)
    excluded = {(e.mentee_id, e.mentor_id) for e in session.exec(
        select(ExclusionRow).where(ExclusionRow.program_id == proposal.program_id)).all()}
    excluded |= former_mentors(session, [p.mentee_id for p in chosen])
    problems: list[Problem] = []
    for p in chosen:  # the store may have moved on since the proposal was made
        mentor = session.get(PersonRow, p.mentor_id)
        if active_partnership_of(session, p.mentee_id) is not None:
            problems.append(Problem("mentee_ids", f"{p.mentee_id!r} was matched since the proposal", "stale"))
        elif mentor is None or mentor.status != "active" or not mentor.eligible:
            problems.append(Problem("mentee_ids", f"mentor {p.mentor_id!r} of {p.mentee_id!r} is no longer available",
                                    "stale"))
        elif loads[p.mentor_id] >= mentor.capacity:
            problems.append(Problem("mentee_ids", f"mentor {p.mentor_id!r} of {p.mentee_id!r} has no place left",
                                    "stale"))
        elif (p.mentee_id, p.mentor_id) in excluded:
            problems.append(Problem("mentee_ids", f"{p.mentee_id!r} and {p.mentor_id!r} may not be paired",
                                    "stale"))
        loads[p.mentor_id] += 1
    if problems:
        raise Conflict("mentee_ids", problems[0].reason, problems=problems)
    created = []
    for p in chosen:
        row = _start_partnership(uow, proposal.program_id, p.mentee_id, p.mentor_id, score=p.score,
                                 reasons=json.loads(p.reasons), manual=False, warnings=[], actor=actor, now=now)
        p.partnership_id = row.partnership_id
        session.add(p)
        created.append(row)
    if all(p.partnership_id for p in pairs):
        proposal.status = "published"
        session.add(proposal)
    session.flush()
    warnings = assign_metamentors(uow, proposal.program_id, [r.partnership_id for r in created])
    _settle_transitions(session, [r.mentee_id for r in created])
    return created, warnings


def _settle_transitions(session: Session, mentee_ids: list[str]) -> None:
    """A mentee reassigned after their mentor paused or left is no longer in transition."""
    if not mentee_ids:
        return
    for t in session.exec(select(TransitionRow).where(
            col(TransitionRow.mentee_id).in_(mentee_ids), TransitionRow.status == "reassign")).all():
        t.status = "reassigned"
        session.add(t)


def manual_warnings(session: Session, mentee: PersonRow, mentor: PersonRow) -> list[str]:
    warnings = []
    if not mentor.eligible:
        warnings.append("mentor is not eligible: " + "; ".join(json.loads(mentor.ineligible_reasons)))
    if mentor.status != "active":
        warnings.append(f"mentor is {mentor.status}")
    load = active_load(session, mentor.person_id)
    if load >= mentor.capacity:
        warnings.append(f"mentor is at capacity ({load} of {mentor.capacity})")
    ban = session.get(ExclusionRow, (mentee.program_id, mentee.person_id, mentor.person_id))
    if ban is not None:
        warnings.append("the pair is banned" + (f": {ban.reason}" if ban.reason else ""))
    if (mentee.person_id, mentor.person_id) in former_mentors(session, [mentee.person_id]):
        warnings.append("mentor was this mentee's previous mentor")
    return warnings


def manual_match(uow: UnitOfWork, program_id: str, c: cmd.ManualMatch, actor: Actor,
                 now: datetime) -> tuple[PartnershipRow, list[str], list[str]]:
    session = uow.session
    program = get_program(session, program_id)
    mentee = get_person(session, c.mentee_id, "mentee", "mentee_id")
    mentor = get_person(session, c.mentor_id, "mentor", "mentor_id")
    for person, field in ((mentee, "mentee_id"), (mentor, "mentor_id")):
        if person.program_id != program_id:
            raise Conflict(field, "belongs to another program; partners must be in the same program",
                           "other_program")
    if mentor.status == "left":
        raise Conflict("mentor_id", "the mentor has left the program", "left")
    if active_partnership_of(session, mentee.person_id) is not None:
        raise Conflict("mentee_id", "the mentee already has an active partnership", "matched")
    warnings = manual_warnings(session, mentee, mentor)
    if warnings and not c.confirm_warnings:
        raise Conflict("confirm_warnings", warnings[0], "unconfirmed_warning",
                       problems=[Problem("confirm_warnings", w, "unconfirmed_warning") for w in warnings])
    alignment = align(profile_of(mentee), profile_of(mentor), policy_of(program).matching.criteria_weights)
    row = _start_partnership(uow, program_id, mentee.person_id, mentor.person_id, score=alignment.score,
                             reasons=list(alignment.reasons), manual=True, warnings=warnings, actor=actor, now=now)
    session.flush()
    meta = assign_metamentors(uow, program_id, [row.partnership_id])
    _settle_transitions(session, [mentee.person_id])
    return row, warnings, meta


# -- metamentors -------------------------------------------------------------------------------
def assign_metamentors(uow: UnitOfWork, program_id: str, partnership_ids: list[str] | None = None) -> list[str]:
    """Give partnerships without a metamentor one, balancing caseloads; return the range warnings."""
    session = uow.session
    policy = policy_of(get_program(session, program_id))
    if partnership_ids is None:
        partnership_ids = list(session.exec(select(PartnershipRow.partnership_id).where(
            PartnershipRow.program_id == program_id, PartnershipRow.status == "active",
            col(PartnershipRow.metamentor_id).is_(None)).order_by(col(PartnershipRow.started_at))).all())
    metamentors = session.exec(select(PersonRow.person_id).where(
        PersonRow.program_id == program_id, PersonRow.kind == "metamentor", PersonRow.status == "active")).all()
    caseloads = dict.fromkeys(metamentors, 0)
    for mid in session.exec(select(PartnershipRow.metamentor_id).where(
            PartnershipRow.program_id == program_id, PartnershipRow.status == "active",
            col(PartnershipRow.metamentor_id).is_not(None))).all():
        if mid in caseloads:
            caseloads[mid] += 1
    plan = plan_metamentors(partnership_ids, caseloads, policy.matching.metamentor_caseload_min,
                            policy.matching.metamentor_caseload_max)
    for pid, mid in plan.assignments.items():
        p = get_partnership(session, pid)
        previous = p.metamentor_id
        p.metamentor_id = mid
        session.add(p)
        uow.emit(MetamentorAssigned(partnership_id=pid, program_id=program_id, metamentor_id=mid,
                                    previous_metamentor_id=previous))
    return plan.warnings


# -- ending, rematch, pause, transitions ---------------------------------------------------------
def end_partnership(uow: UnitOfWork, p: PartnershipRow, reason: str, actor: Actor, now: datetime) -> None:
    if p.status != "active":
        raise Conflict("partnership_id", f"the partnership is already {p.status}", p.status)
    p.status = "ended"
    p.ended_at = now
    p.end_reason = reason
    p.ended_by = actor.actor_id
    uow.session.add(p)
    uow.emit(PartnershipEnded(partnership_id=p.partnership_id, program_id=p.program_id, mentor_id=p.mentor_id,
                              mentee_id=p.mentee_id, ended_at=now, reason=reason))


def _rematch(uow: UnitOfWork, p: PartnershipRow, requested_by: str, reason: str, actor: Actor,
             now: datetime) -> ProposalRow:
    end_partnership(uow, p, reason, actor, now)
    uow.emit(RematchRequested(partnership_id=p.partnership_id, program_id=p.program_id, mentee_id=p.mentee_id,
                              previous_mentor_id=p.mentor_id, requested_by=requested_by, reason=reason))
    uow.session.flush()
    return propose(uow, p.program_id, cmd.ProposeMatches(mentee_ids=[p.mentee_id]), actor, now, purpose="rematch")


def request_rematch(uow: UnitOfWork, partnership_id: str, c: cmd.RequestRematch, actor: Actor,
                    now: datetime) -> ProposalRow:
    p = get_partnership(uow.session, partnership_id)
    reason = f"rematch requested by the {c.requested_by}" + (f": {c.reason}" if c.reason else "")
    return _rematch(uow, p, actor.actor_id or c.requested_by, reason, actor, now)


def pause_mentor(uow: UnitOfWork, mentor_id: str, c: cmd.PauseMentor, actor: Actor,
                 now: datetime) -> list[TransitionRow]:
    session = uow.session
    mentor = get_person(session, mentor_id, "mentor")
    if mentor.status == "left" or (mentor.status == "paused" and not c.leaving):
        raise Conflict("mentor_id", f"the mentor is already {mentor.status}", mentor.status)
    mentor.status = "left" if c.leaving else "paused"
    mentor.capacity = 0
    session.add(mentor)
    partnerships = session.exec(select(PartnershipRow).where(
        PartnershipRow.mentor_id == mentor_id, PartnershipRow.status == "active")).all()
    transitions = []
    for p in partnerships:
        existing = session.exec(select(TransitionRow).where(
            TransitionRow.partnership_id == p.partnership_id,
            col(TransitionRow.status).in_(["awaiting", "hold"]))).first()
        t = existing or TransitionRow(transition_id=new_id("transition"), program_id=p.program_id,
                                      partnership_id=p.partnership_id, mentee_id=p.mentee_id, mentor_id=mentor_id,
                                      created_at=now)
        t.leaving = c.leaving
        t.status = "awaiting"  # a held mentee whose mentor now leaves needs a new decision
        session.add(t)
        transitions.append(t)
    uow.emit(MentorPaused(person_id=mentor_id, program_id=mentor.program_id, reason=c.reason, leaving=c.leaving,
                          partnership_ids=[p.partnership_id for p in partnerships]))
    return transitions


def resume_mentor(uow: UnitOfWork, mentor_id: str, c: cmd.ResumeMentor, now: datetime) -> PersonRow:
    session = uow.session
    mentor = get_person(session, mentor_id, "mentor")
    if mentor.status != "paused":
        raise Conflict("mentor_id", f"only a paused mentor can resume; this one is {mentor.status}", mentor.status)
    policy = policy_of(get_program(session, mentor.program_id))
    mentor.status = "active"
    mentor.capacity = policy.matching.default_capacity if c.capacity is None else c.capacity
    session.add(mentor)
    for t in session.exec(select(TransitionRow).where(
            TransitionRow.mentor_id == mentor_id, TransitionRow.status == "hold")).all():
        t.status = "resumed"
        session.add(t)
    uow.emit(MentorResumed(person_id=mentor_id, program_id=mentor.program_id, capacity=mentor.capacity))
    return mentor


def decide_transition(uow: UnitOfWork, transition_id: str, c: cmd.DecideTransition, actor: Actor,
                      now: datetime) -> tuple[TransitionRow, ProposalRow | None]:
    session = uow.session
    t = session.get(TransitionRow, transition_id)
    if t is None:
        raise NotFound("transition_id", f"no transition {transition_id!r}")
    if t.status not in ("awaiting", "hold"):
        raise Conflict("decision", f"already decided: {t.status}", "decided")
    if c.decision == "hold" and t.leaving:
        raise Conflict("decision", "the mentor has left the program: choose reassign or end", "mentor_left")
    p = get_partnership(session, t.partnership_id)
    why = "mentor left the program" if t.leaving else "mentor paused"
    proposal = None
    if c.decision == "reassign":
        end_partnership(uow, p, f"{why}: mentee reassigned" + (f" ({c.note})" if c.note else ""), actor, now)
        session.flush()
        proposal = propose(uow, t.program_id, cmd.ProposeMatches(mentee_ids=[t.mentee_id]), actor, now,
                           purpose="transition")
        t.proposal_id = proposal.proposal_id
    elif c.decision == "end":
        end_partnership(uow, p, f"{why}: partnership ended" + (f" ({c.note})" if c.note else ""), actor, now)
    t.status = c.decision
    t.decided_at = now
    t.decided_by = actor.actor_id
    session.add(t)
    return t, proposal


# -- incidents ---------------------------------------------------------------------------------
def report_incident(uow: UnitOfWork, partnership_id: str, c: cmd.ReportIncident, now: datetime) -> IncidentRow:
    p = get_partnership(uow.session, partnership_id)
    if c.reported_by not in (p.mentor_id, p.mentee_id):
        raise DomainError("reported_by", "only the mentor or the mentee of the partnership can report on it",
                          "not_a_partner")
    row = IncidentRow(incident_id=new_id("incident"), program_id=p.program_id, partnership_id=partnership_id,
                      reported_by=c.reported_by, description=c.description, reported_at=now)
    uow.session.add(row)
    uow.emit(IncidentReported(incident_id=row.incident_id, partnership_id=partnership_id, program_id=p.program_id,
                              reported_by=c.reported_by, description=c.description))
    return row


def resolve_incident(uow: UnitOfWork, incident_id: str, c: cmd.ResolveIncident, actor: Actor,
                     now: datetime) -> tuple[IncidentRow, ProposalRow | None]:
    session = uow.session
    incident = session.get(IncidentRow, incident_id)
    if incident is None:
        raise NotFound("incident_id", f"no incident {incident_id!r}")
    if incident.status != "open":
        raise Conflict("incident_id", "the incident is already closed", "closed")
    proposal = None
    if c.action == "end_and_rematch":
        p = get_partnership(session, incident.partnership_id)
        reason = "incident reported" + (f": {c.note}" if c.note else "")
        proposal = _rematch(uow, p, actor.actor_id or "staff", reason, actor, now)
    incident.status = "closed"
    incident.resolution = c.action + (f": {c.note}" if c.note else "")
    incident.resolved_by = actor.actor_id
    incident.resolved_at = now
    session.add(incident)
    return incident, proposal
