"""Compliance of partnerships: evaluate the cadence rules on the stored facts, keep the status,
and emit PartnershipAtRisk when it changes (to behind / at risk, or back on track).

The status is changed with a compare-and-set (UPDATE ... WHERE status = <the one we read>), so
when two instances evaluate the same partnership at once only one of them emits the change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, or_, update
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

_VIEW = MeetingViewRow.__table__  # type: ignore[attr-defined]
_ACTS = ActivityRow.__table__  # type: ignore[attr-defined]
_P = PartnershipRow.__table__  # type: ignore[attr-defined]
_M = MentorRow.__table__  # type: ignore[attr-defined]
_IDS: Any = bindparam("ids", expanding=True)
# Built once: a consumer batch re-evaluates hundreds of partnerships, and building the statements
# per partnership cost more than running them.
_MEETINGS = core_select(_VIEW.c.partnership_id, _VIEW.c.started_at, _VIEW.c.minutes, _VIEW.c.intentional).where(
    _VIEW.c.partnership_id.in_(_IDS), _VIEW.c.voided.is_(False))
_ACTIVITIES = core_select(_ACTS.c.partnership_id, _ACTS.c.activity_id, _ACTS.c.kind, _ACTS.c.occurred_on,
                          _ACTS.c.stage, _ACTS.c.pip_id).where(_ACTS.c.partnership_id.in_(_IDS))
_PARTNERSHIPS = core_select(
    _P.c.partnership_id, _P.c.program_id, _P.c.mentor_id, _P.c.matched, _P.c.started_at, _P.c.ended_at,
    _P.c.status, _P.c.status_reasons, _P.c.status_checked_on, _M.c.paused_at,
).select_from(_P.outerjoin(_M, _M.c.mentor_id == _P.c.mentor_id)).where(_P.c.partnership_id.in_(_IDS))
_NEW_STATUS: dict[str, Any] = {"status": bindparam("new_status"), "status_reasons": bindparam("new_reasons"),
               "status_checked_on": bindparam("today")}
# Compare-and-set on the status read: (previous status was a value, previous status was none).
_SET_STATUS = (
    update(_P).where(_P.c.partnership_id == bindparam("pid"), _P.c.status == bindparam("previous"))
    .values(**_NEW_STATUS),
    update(_P).where(_P.c.partnership_id == bindparam("pid"), _P.c.status.is_(None)).values(**_NEW_STATUS),
)
CHUNK = 500  # partnerships per IN list


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def facts_many(session: Session, spans: Mapping[str, tuple[datetime, datetime | None]]
               ) -> dict[str, PartnershipFacts]:
    """The facts of many partnerships (id -> (started_at, ended_at)), read with one statement per
    kind of fact and chunk of partnerships."""
    meetings: dict[str, list[MeetingFact]] = {pid: [] for pid in spans}
    activities: dict[str, list[ActivityFact]] = {pid: [] for pid in spans}
    for chunk in _chunks(list(spans)):
        for pid, at, minutes, intentional in session.execute(_MEETINGS, {"ids": chunk}):
            meetings[pid].append(MeetingFact(as_utc(at), minutes, intentional))
        for pid, activity_id, kind, occurred_on, stage, pip_id in session.execute(_ACTIVITIES, {"ids": chunk}):
            activities[pid].append(ActivityFact(activity_id, kind, occurred_on, stage, pip_id))
    return {
        pid: PartnershipFacts(as_utc(started_at), as_utc(ended_at) if ended_at else None, meetings[pid],
                              completed_pip_dates(activities[pid]) if activities[pid] else [])
        for pid, (started_at, ended_at) in spans.items()
    }


def facts_of(session: Session, partnership_id: str, started_at: datetime, ended_at: datetime | None
             ) -> PartnershipFacts:
    return facts_many(session, {partnership_id: (started_at, ended_at)})[partnership_id]


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
    return refresh_many(uow.session, {partnership_id: uow}, now).get(partnership_id)


def refresh_many(session: Session, units: Mapping[str, Unit], now: datetime) -> dict[str, Compliance | None]:
    """`refresh` for many partnerships at once, each emitting through its own unit (a consumer
    gives the context of the event that made the partnership change, so it is the cause).

    The same as refreshing them one by one, with the reads done per chunk of partnerships: the
    partnerships and mentors, their meetings and their activities, one statement each."""
    found: dict[str, Any] = {}
    for chunk in _chunks(list(units)):
        for read in session.execute(_PARTNERSHIPS, {"ids": chunk}):
            found[read.partnership_id] = read
    out: dict[str, Compliance | None] = dict.fromkeys(units)
    judged: dict[str, tuple[Any, ProgramPolicy]] = {}
    for pid in units:  # in the callers' order, so events are emitted in it
        row = found.get(pid)
        if row is None:
            continue
        if not row.matched or row.started_at is None or row.ended_at is not None or row.paused_at is not None:
            continue
        policy = policy_in(session, row.program_id)
        if policy is not None:
            judged[pid] = (row, policy)
    facts = facts_many(session, {pid: (row.started_at, None) for pid, (row, _) in judged.items()})
    unchanged: list[dict[str, Any]] = []
    for pid, (row, policy) in judged.items():
        compliance = evaluate(policy, facts[pid], now)
        out[pid] = compliance
        today = local_date(now, policy.timezone)
        reasons = json.dumps(compliance.reasons)
        new, previous = compliance.status.value, row.status
        if previous == new and row.status_reasons == reasons and row.status_checked_on == today:
            continue
        values = {"pid": pid, "previous": previous, "new_status": new, "new_reasons": reasons, "today": today}
        if previous == new:
            unchanged.append(values)  # no event hangs on it: written below in one executemany
            continue
        cas = _SET_STATUS[previous is None]
        changed_here = session.execute(cas.returning(_P.c.partnership_id), values).first() is not None
        first_and_fine = previous is None and new == Status.ON_TRACK
        if changed_here and not first_and_fine:
            units[pid].emit(PartnershipAtRisk(
                partnership_id=pid, program_id=row.program_id, mentor_id=row.mentor_id,
                status=compliance.status.value, previous_status=previous, reasons=compliance.reasons,
            ))
    for cas, group in ((_SET_STATUS[False], [v for v in unchanged if v["previous"] is not None]),
                       (_SET_STATUS[True], [v for v in unchanged if v["previous"] is None])):
        if group:
            session.execute(cas, group)
    return out


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
            chunk = todo[i:i + batch]
            with new_unit() as uow:
                results = refresh_many(uow.session, dict.fromkeys(chunk, uow), now)
                unjudged = [pid for pid in chunk if results.get(pid) is None]
                if unjudged:
                    # Not judged now (paused mentor...): still checked for today.
                    uow.session.execute(
                        update(PartnershipRow)
                        .where(col(PartnershipRow.partnership_id).in_(unjudged))
                        .values(status_checked_on=today)
                        .execution_options(synchronize_session=False)
                    )
            checked += len(chunk)
    return checked
