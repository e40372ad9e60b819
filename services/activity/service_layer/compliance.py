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
from typing import Any

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


def facts_of(session: Session, row: PartnershipRow) -> PartnershipFacts:
    assert row.started_at is not None
    view = MeetingViewRow.__table__  # type: ignore[attr-defined]
    acts = ActivityRow.__table__  # type: ignore[attr-defined]
    meetings = [
        MeetingFact(as_utc(started_at), minutes, intentional)
        for started_at, minutes, intentional in session.execute(
            core_select(view.c.started_at, view.c.minutes, view.c.intentional)
            .where(view.c.partnership_id == row.partnership_id, view.c.voided.is_(False))
        )
    ]
    activities = [
        ActivityFact(activity_id, kind, occurred_on, stage, pip_id)
        for activity_id, kind, occurred_on, stage, pip_id in session.execute(
            core_select(acts.c.activity_id, acts.c.kind, acts.c.occurred_on, acts.c.stage, acts.c.pip_id)
            .where(acts.c.partnership_id == row.partnership_id)
        )
    ]
    return PartnershipFacts(
        as_utc(row.started_at), as_utc(row.ended_at) if row.ended_at else None, meetings,
        completed_pip_dates(activities),
    )


def evaluate_partnership(session: Session, row: PartnershipRow, now: datetime) -> Compliance | None:
    """None when the partnership cannot be judged: not matched yet or its program not configured."""
    policy = _policy(session, row)
    return evaluate(policy, facts_of(session, row), now) if policy is not None else None


def _policy(session: Session, row: PartnershipRow) -> ProgramPolicy | None:
    if not row.matched or row.started_at is None:
        return None
    program = session.get(ProgramRow, row.program_id)
    return parse_policy(program.policy) if program is not None else None


def refresh(uow: Unit, partnership_id: str, now: datetime) -> Compliance | None:
    """Re-evaluate one partnership; store the status and emit PartnershipAtRisk if it changed.

    Ended partnerships and those of a paused mentor keep their last status (nothing is asked of
    them now)."""
    session = uow.session
    row = session.get(PartnershipRow, partnership_id)
    if row is None or row.ended_at is not None:
        return None
    mentor = session.get(MentorRow, row.mentor_id)
    if mentor is not None and mentor.paused_at is not None:
        return None
    policy = _policy(session, row)
    if policy is None:
        return None
    compliance = evaluate(policy, facts_of(session, row), now)
    today = local_date(now, policy.timezone)
    reasons = json.dumps(compliance.reasons)
    previous = row.status
    new = compliance.status.value
    if previous == new and row.status_reasons == reasons and row.status_checked_on == today:
        return compliance
    same_as_read = (
        col(PartnershipRow.status) == previous if previous is not None else col(PartnershipRow.status).is_(None)
    )
    result = session.execute(
        update(PartnershipRow)
        .where(col(PartnershipRow.partnership_id) == partnership_id, same_as_read)
        .values(status=new, status_reasons=reasons, status_checked_on=today)
        .returning(col(PartnershipRow.partnership_id))
        .execution_options(synchronize_session=False)
    )
    changed_here = result.first() is not None
    session.expire(row)
    first_and_fine = previous is None and new == Status.ON_TRACK
    if changed_here and previous != new and not first_and_fine:
        uow.emit(PartnershipAtRisk(
            partnership_id=partnership_id, program_id=row.program_id, mentor_id=row.mentor_id,
            status=compliance.status.value, previous_status=previous,
            reasons=compliance.reasons,
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


def sweep(db: Any, new_unit: Callable[[], ContextManager[Unit]], now: datetime, *, batch: int = 200,
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
