"""Read models for staff screens and the gateway: plain dicts, JSON-ready."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from services.matching.adapters.tables import (
    IncidentRow,
    PartnershipRow,
    PersonRow,
    ProgramRow,
    ProposalPairRow,
    ProposalRow,
    TransitionRow,
    as_utc,
)
from shared.errors import NotFound


def program_view(row: ProgramRow) -> dict[str, Any]:
    return {"program_id": row.program_id, "name": row.name, "revision": row.revision,
            "policy": json.loads(row.policy), "updated_at": as_utc(row.updated_at).isoformat()}


def person_view(row: PersonRow, load: int | None = None, state: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "person_id": row.person_id, "program_id": row.program_id, "kind": row.kind, "name": row.name,
        "email": row.email, "status": row.status, "profile": json.loads(row.profile),
    }
    if row.kind == "mentor":
        out.update(capacity=row.capacity, eligible=row.eligible,
                   ineligible_reasons=json.loads(row.ineligible_reasons), mentees=load or 0)
    if row.kind == "metamentor":
        out["caseload"] = load or 0
    if state is not None:
        out["matching_state"] = state
    return out


def partnership_view(row: PartnershipRow) -> dict[str, Any]:
    return {
        "partnership_id": row.partnership_id, "program_id": row.program_id, "mentor_id": row.mentor_id,
        "mentee_id": row.mentee_id, "metamentor_id": row.metamentor_id, "status": row.status, "score": row.score,
        "reasons": json.loads(row.reasons), "manual": row.manual, "warnings": json.loads(row.warnings),
        "created_by": row.created_by, "started_at": as_utc(row.started_at).isoformat(),
        "ended_at": as_utc(row.ended_at).isoformat() if row.ended_at else None, "end_reason": row.end_reason,
        "previous_partnership_id": row.previous_partnership_id,
    }


def proposal_view(session: Session, proposal_id: str) -> dict[str, Any]:
    row = session.get(ProposalRow, proposal_id)
    if row is None:
        raise NotFound("proposal_id", f"no proposal {proposal_id!r}")
    pairs = session.exec(select(ProposalPairRow).where(ProposalPairRow.proposal_id == proposal_id)
                         .order_by(col(ProposalPairRow.id))).all()
    return {
        "proposal_id": row.proposal_id, "program_id": row.program_id, "objective": row.objective,
        "purpose": row.purpose, "status": row.status, "stats": json.loads(row.stats),
        "pairs": [{"mentee_id": p.mentee_id, "mentor_id": p.mentor_id, "score": p.score,
                   "reasons": json.loads(p.reasons), "partnership_id": p.partnership_id} for p in pairs],
        "unmatched": [{"mentee_id": k, "reason": v} for k, v in json.loads(row.unmatched).items()],
    }


def mentee_state(awaiting_transition: bool, matched: bool) -> str:
    return "awaiting_transition" if awaiting_transition else "matched" if matched else "unmatched"


def people(session: Session, program_id: str, kind: str) -> list[dict[str, Any]]:
    rows = session.exec(select(PersonRow).where(PersonRow.program_id == program_id, PersonRow.kind == kind)
                        .order_by(col(PersonRow.enrolled_at), col(PersonRow.person_id))).all()
    active = session.exec(select(PartnershipRow).where(
        PartnershipRow.program_id == program_id, PartnershipRow.status == "active")).all()
    if kind == "mentor":
        loads = Counter(p.mentor_id for p in active)
        return [person_view(r, loads[r.person_id]) for r in rows]
    if kind == "metamentor":
        loads = Counter(p.metamentor_id for p in active if p.metamentor_id)
        return [person_view(r, loads[r.person_id]) for r in rows]
    awaiting = set(session.exec(select(TransitionRow.mentee_id).where(
        TransitionRow.program_id == program_id, TransitionRow.status == "awaiting")).all())
    matched = {p.mentee_id for p in active}
    return [person_view(r, state=mentee_state(r.person_id in awaiting, r.person_id in matched)) for r in rows]


def person(session: Session, person_id: str) -> dict[str, Any]:
    """One mentor, mentee or metamentor exactly as its program's list shows it (load or matching
    state included), counted for this person alone rather than by loading the program."""
    row = session.get(PersonRow, person_id)
    if row is None:
        raise NotFound("person_id", f"no person {person_id!r}")
    active = select(func.count()).select_from(PartnershipRow).where(
        PartnershipRow.program_id == row.program_id, PartnershipRow.status == "active")
    if row.kind == "mentor":
        return person_view(row, session.exec(active.where(PartnershipRow.mentor_id == person_id)).one())
    if row.kind == "metamentor":
        return person_view(row, session.exec(active.where(PartnershipRow.metamentor_id == person_id)).one())
    awaiting = session.exec(select(func.count()).select_from(TransitionRow).where(
        TransitionRow.program_id == row.program_id, TransitionRow.status == "awaiting",
        TransitionRow.mentee_id == person_id)).one()
    matched = session.exec(active.where(PartnershipRow.mentee_id == person_id)).one()
    return person_view(row, state=mentee_state(awaiting > 0, matched > 0))


def partnership(session: Session, partnership_id: str) -> dict[str, Any]:
    """One partnership, as its program's list shows it."""
    row = session.get(PartnershipRow, partnership_id)
    if row is None:
        raise NotFound("partnership_id", f"no partnership {partnership_id!r}")
    return partnership_view(row)


def partnerships(session: Session, program_id: str, status: str | None) -> list[dict[str, Any]]:
    q = select(PartnershipRow).where(PartnershipRow.program_id == program_id)
    if status:
        q = q.where(PartnershipRow.status == status)
    return [partnership_view(r) for r in session.exec(q.order_by(col(PartnershipRow.started_at))).all()]


def transitions(session: Session, program_id: str, status: str | None) -> list[dict[str, Any]]:
    q = select(TransitionRow).where(TransitionRow.program_id == program_id)
    if status:
        q = q.where(TransitionRow.status == status)
    return [
        {"transition_id": t.transition_id, "partnership_id": t.partnership_id, "mentee_id": t.mentee_id,
         "mentor_id": t.mentor_id, "leaving": t.leaving, "status": t.status, "proposal_id": t.proposal_id}
        for t in session.exec(q.order_by(col(TransitionRow.created_at))).all()
    ]


def incidents(session: Session, program_id: str, status: str | None) -> list[dict[str, Any]]:
    q = select(IncidentRow).where(IncidentRow.program_id == program_id)
    if status:
        q = q.where(IncidentRow.status == status)
    return [
        {"incident_id": i.incident_id, "partnership_id": i.partnership_id, "reported_by": i.reported_by,
         "description": i.description, "status": i.status, "reported_at": as_utc(i.reported_at).isoformat(),
         "resolution": i.resolution}
        for i in session.exec(q.order_by(col(IncidentRow.reported_at))).all()
    ]
