"""Compliance of partnerships: evaluate the cadence rules on the stored facts, keep the status,
and emit PartnershipAtRisk when it changes (to behind / at risk, or back on track).

The status is changed with a compare-and-set (UPDATE ... WHERE status = <the one we read>), so
when two instances evaluate the same partnership at once only one of them emits the change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from datetime import date, datetime

from sqlalchemy import or_, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from services.activity.adapters.tables import (
    ActivityRow,
    MeetingViewRow,
    MentorRow,
    PartnershipRow,
    ProgramRow,
    as_utc,
)
from services.activity.domain.activities import ActivityFact, completed_pip_dates
from services.activity.domain.cadence import Compliance, MeetingFact, PartnershipFacts, Status, evaluate
from services.activity.service_layer.unit import Unit, parse_policy
from shared.clock import local_date
from shared.contracts.activity import PartnershipAtRisk
from shared.contracts.program import ProgramPolicy
from shared.db import Database


def facts_of(session: Session, partnership_id: str, started_at: datetime, ended_at: datetime | None
             ) -> PartnershipFacts:
    view = MeetingViewRow.__table__  # type: ignore[attr-defined]
    acts = ActivityRow.__table__  # type: ignore[attr-defined]
    meetings = [
        MeetingFact(as_utc(at), minutes, intentional)
        for at, minutes, intentional in session.execute(
            core_select(view.c.started_at, view.c.minutes, view.c.intentional)
            .where(view.c.partnership_id == partnership_id, view.c.voided.is_(False))
        )
    ]
    activities = [
        ActivityFact(activity_id, kind, occurred_on, stage, pip_id)
        for activity_id, kind, occurred_on, stage, pip_id in session.execute(
            core_select(acts.c.activity_id, acts.c.kind, acts.c.occurred_on, acts.c.stage, acts.c.pip_id)
            .where(acts.c.partnership_id == partnership_id)
        )
    ]
    return PartnershipFacts(as_utc(started_at), as_utc(ended_at) if ended_at else None, meetings,
                            completed_pip_dates(activities))


def policy_in(session: Session, program_id: str) -> ProgramPolicy | None:
    """The program's policy, read once per transaction (a consumer batch handles hundreds of events)."""
    cache: dict[str, ProgramPolicy | None] = session.info.setdefault("activity.policies", {})
    if program_id not in cache:
        raw = session.execute(
            core_select(ProgramRow.__table__.c.policy)  # type: ignore[attr-defined]
            .where(ProgramRow.__table__.c.program_id == program_id)  # type: ignore[attr-defined]
        ).scalar()
        cache[program_id] = parse_policy(raw) if raw is not None else None
    return cache[program_id]


def evaluate_partnership(session: Session, row: PartnershipRow, now: datetime) -> Compliance | None:
    """None when the partnership cannot be judged: not matched yet or its program not configured."""
    if not row.matched or row.started_at is None:
        return None
    policy = policy_in(session, row.program_id)
    if policy is None:
        return None
    return evaluate(policy, facts_of(session, row.partnership_id, row.started_at, row.ended_at), now)


def refresh(uow: Unit, partnership_id: str, now: datetime) -> Compliance | None:
    """Re-evaluate one partnership; store the status and emit PartnershipAtRisk if it changed.

    Ended partnerships and those of a paused mentor keep their last status (nothing is asked of
    them now)."""
    session = uow.session
    p = PartnershipRow.__table__  # type: ignore[attr-defined]
    m = MentorRow.__table__  # type: ignore[attr-defined]
    found = session.execute(
        core_select(p.c.program_id, p.c.mentor_id, p.c.matched, p.c.started_at, p.c.ended_at, p.c.status,
                    p.c.status_reasons, p.c.status_checked_on, m.c.paused_at)
        .select_from(p.outerjoin(m, m.c.mentor_id == p.c.mentor_id))
        .where(p.c.partnership_id == partnership_id)
    ).first()
    if found is None:
        return None
    program_id, mentor_id, matched, started_at, ended_at, previous, old_reasons, checked_on, paused_at = found
    if not matched or started_at is None or ended_at is not None or paused_at is not None:
        return None
    policy = policy_in(session, program_id)
    if policy is None:
        return None
    compliance = evaluate(policy, facts_of(session, partnership_id, started_at, None), now)
    today = local_date(now, policy.timezone)
    reasons = json.dumps(compliance.reasons)
    new = compliance.status.value
    if previous == new and old_reasons == reasons and checked_on == today:
        return compliance
    same_as_read = p.c.status == previous if previous is not None else p.c.status.is_(None)
    changed_here = session.execute(
        update(p).where(p.c.partnership_id == partnership_id, same_as_read)
        .values(status=new, status_reasons=reasons, status_checked_on=today)
        .returning(p.c.partnership_id)
    ).first() is not None
    first_and_fine = previous is None and new == Status.ON_TRACK
    if changed_here and previous != new and not first_and_fine:
        uow.emit(PartnershipAtRisk(
            partnership_id=partnership_id, program_id=program_id, mentor_id=mentor_id,
            status=compliance.status.value, previous_status=previous, reasons=compliance.reasons,
        ))
    return compliance


def due_for_check(session: Session, program_id: str, today_local: date, limit: int) -> list[str]:
    """Active partnerships of a program not yet checked today (the daily sweep's work list)."""
    return list(session.exec(
        select(PartnershipRow.partnership_id).where(
            PartnershipRow.program_id == program_id,
            col(PartnershipRow.matched).is_(True),
            col(PartnershipRow.ended_at).is_(None),
            or_(col(PartnershipRow.status_checked_on).is_(None), col(PartnershipRow.status_checked_on) < today_local),
        ).order_by(col(PartnershipRow.partnership_id)).limit(limit)
    ).all())


def sweep(db: Database, new_unit: Callable[[], ContextManager[Unit]], now: datetime, *, batch: int = 200,
          limit_per_program: int = 100_000) -> int:
    """The daily re-evaluation (statuses change with time alone: a month ends, a gap grows).
    Each partnership is checked once per local day; returns how many were checked now."""
    with db.session() as s:
        programs = [(p.program_id, parse_policy(p.policy).timezone) for p in s.exec(select(ProgramRow)).all()]
    checked = 0
    for program_id, tz in programs:
        today = local_date(now, tz)
        with db.session() as s:
            todo = due_for_check(s, program_id, today, limit_per_program)
        for i in range(0, len(todo), batch):
            with new_unit() as uow:
                for partnership_id in todo[i:i + batch]:
                    if refresh(uow, partnership_id, now) is None:
                        # Not judged now (paused mentor...): still checked for today.
                        uow.session.execute(
                            update(PartnershipRow)
                            .where(col(PartnershipRow.partnership_id) == partnership_id)
                            .values(status_checked_on=today)
                            .execution_options(synchronize_session=False)
                        )
                    checked += 1
    return checked
