"""Compliance of partnerships: evaluate the cadence rules on the stored facts, keep the status,
and emit PartnershipAtRisk when it changes (to behind / at risk, or back on track).

The status is changed with a compare-and-set (UPDATE ... WHERE status = <the one we read>), so
when two instances evaluate the same partnership at once only one of them emits the change.

Each partnership keeps a MeetingSummary of its meetings in the view (`meeting_summary`): a new
meeting is added to it, so judging a partnership does not read its meetings again. It is
rebuilt from the view when it is missing (a correction clears it), when it is of another zone or
school year than the program's policy now, or when it holds a meeting after now. It too is
written with a compare-and-set on the value read; an instance that loses clears it instead, so a
summary is never left missing a meeting.
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
from services.activity.domain.cadence import (
    Compliance,
    MeetingFact,
    MeetingSummary,
    PartnershipFacts,
    Status,
    evaluate,
)
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
    _P.c.status, _P.c.status_reasons, _P.c.status_checked_on, _P.c.meeting_summary, _M.c.paused_at,
).select_from(_P.outerjoin(_M, _M.c.mentor_id == _P.c.mentor_id)).where(_P.c.partnership_id.in_(_IDS))
_NEW_STATUS: dict[str, Any] = {"status": bindparam("new_status"), "status_reasons": bindparam("new_reasons"),
               "status_checked_on": bindparam("today")}
# Compare-and-set on the status read: (previous status was a value, previous status was none).
_SET_STATUS = (
    update(_P).where(_P.c.partnership_id == bindparam("pid"), _P.c.status == bindparam("previous"))
    .values(**_NEW_STATUS),
    update(_P).where(_P.c.partnership_id == bindparam("pid"), _P.c.status.is_(None)).values(**_NEW_STATUS),
)
_SET_SUMMARY = update(_P).where(
    _P.c.partnership_id == bindparam("pid"), _P.c.meeting_summary.is_not_distinct_from(bindparam("old"))
).values(meeting_summary=bindparam("new"))
_CLEAR_SUMMARY = update(_P).where(_P.c.partnership_id.in_(_IDS)).values(meeting_summary=None)
CHUNK = 500  # partnerships per IN list


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def meetings_many(session: Session, ids: Sequence[str]) -> dict[str, list[MeetingFact]]:
    """The standing meetings in the view of many partnerships (one statement per chunk)."""
    meetings: dict[str, list[MeetingFact]] = {pid: [] for pid in ids}
    for chunk in _chunks(ids):
        for pid, at, minutes, intentional in session.execute(_MEETINGS, {"ids": chunk}):
            meetings[pid].append(MeetingFact(as_utc(at), minutes, intentional))
    return meetings


def pips_many(session: Session, ids: Sequence[str]) -> dict[str, list[date]]:
    """The days PIPs were completed, of many partnerships (one statement per chunk)."""
    activities: dict[str, list[ActivityFact]] = {}
    for chunk in _chunks(ids):
        for pid, activity_id, kind, occurred_on, stage, pip_id in session.execute(_ACTIVITIES, {"ids": chunk}):
            activities.setdefault(pid, []).append(ActivityFact(activity_id, kind, occurred_on, stage, pip_id))
    return {pid: completed_pip_dates(activities[pid]) if pid in activities else [] for pid in ids}


def facts_many(session: Session, spans: Mapping[str, tuple[datetime, datetime | None]]
               ) -> dict[str, PartnershipFacts]:
    """The facts of many partnerships (id -> (started_at, ended_at)), their meetings read from the view."""
    ids = list(spans)
    meetings, pips = meetings_many(session, ids), pips_many(session, ids)
    return {
        pid: PartnershipFacts(as_utc(started_at), as_utc(ended_at) if ended_at else None, meetings[pid], pips[pid])
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


def forget_summaries(session: Session, partnership_ids: Sequence[str]) -> None:
    """Their meetings in the view changed other than by a new meeting (a correction, a void):
    the summaries are rebuilt from the view when next judged."""
    for chunk in _chunks(list(partnership_ids)):
        session.execute(_CLEAR_SUMMARY, {"ids": chunk})


def _kept_summary(raw: str | None, policy: ProgramPolicy | None, added: Sequence[MeetingFact] | None
                  ) -> MeetingSummary | None:
    """The stored summary with the new meetings added, or None when it must be rebuilt."""
    if raw is None or policy is None:
        return None
    summary = MeetingSummary.from_json(raw)
    if summary.timezone != policy.timezone or summary.school_year != MeetingSummary.empty(policy).school_year:
        return None
    if added:
        summary.add(policy, added)
    return summary


def refresh_many(session: Session, units: Mapping[str, Unit], now: datetime,
                 added: Mapping[str, Sequence[MeetingFact]] | None = None) -> dict[str, Compliance | None]:
    """`refresh` for many partnerships at once, each emitting through its own unit (a consumer
    gives the context of the event that made the partnership change, so it is the cause).

    `added`: the meetings each partnership got in the view in this transaction (only new ones;
    any other change to its meetings must `forget_summaries` first).

    The same as refreshing them one by one, with the reads done per chunk of partnerships: the
    partnerships and mentors, the meetings of those whose summary must be rebuilt, and their
    activities, one statement each."""
    added = added or {}
    found: dict[str, Any] = {}
    for chunk in _chunks(list(units)):
        for read in session.execute(_PARTNERSHIPS, {"ids": chunk}):
            found[read.partnership_id] = read
    out: dict[str, Compliance | None] = dict.fromkeys(units)
    judged: dict[str, tuple[Any, ProgramPolicy, MeetingSummary | None]] = {}
    summaries: dict[str, tuple[str | None, str | None]] = {}  # pid -> (read, to write)
    for pid in units:  # in the callers' order, so events are emitted in it
        row = found.get(pid)
        if row is None:
            continue
        policy = policy_in(session, row.program_id)
        kept = _kept_summary(row.meeting_summary, policy, added.get(pid))
        if not row.matched or row.started_at is None or row.ended_at is not None or row.paused_at is not None \
                or policy is None:
            if pid in added and row.meeting_summary is not None:  # not judged, but kept (or cleared)
                summaries[pid] = (row.meeting_summary, kept.to_json() if kept is not None else None)
            continue
        judged[pid] = (row, policy, kept if kept is not None and kept.fits(policy, now) else None)
    rebuild = [pid for pid, (_, _, kept) in judged.items() if kept is None]
    meetings = meetings_many(session, rebuild) if rebuild else {}
    pips = pips_many(session, list(judged))
    unchanged: list[dict[str, Any]] = []
    changes: list[tuple[dict[str, Any], Any, Compliance]] = []
    for pid, (row, policy, kept) in judged.items():
        if kept is None:
            summary = MeetingSummary.of(policy, meetings[pid])
            facts = PartnershipFacts(as_utc(row.started_at), None, meetings[pid], pips[pid])
        else:
            summary = kept
            facts = PartnershipFacts(as_utc(row.started_at), None, kept, pips[pid])
        if pid in added or kept is None:
            summaries[pid] = (row.meeting_summary, summary.to_json())
        compliance = evaluate(policy, facts, now)
        out[pid] = compliance
        today = local_date(now, policy.timezone)
        reasons = json.dumps(compliance.reasons)
        new, previous = compliance.status.value, row.status
        if previous == new and row.status_reasons == reasons and row.status_checked_on == today:
            continue
        values = {"pid": pid, "previous": previous, "new_status": new, "new_reasons": reasons, "today": today}
        if previous == new:
            unchanged.append(values)  # no event hangs on it: written below in one executemany
        else:
            changes.append((values, row, compliance))
    changed_here = set_statuses(session, [values for values, _, _ in changes])
    for values, row, compliance in changes:  # in the callers' order
        first_and_fine = values["previous"] is None and values["new_status"] == Status.ON_TRACK
        if values["pid"] in changed_here and not first_and_fine:
            units[values["pid"]].emit(PartnershipAtRisk(
                partnership_id=values["pid"], program_id=row.program_id, mentor_id=row.mentor_id,
                status=compliance.status.value, previous_status=values["previous"], reasons=compliance.reasons,
            ))
    for cas, group in ((_SET_STATUS[False], [v for v in unchanged if v["previous"] is not None]),
                       (_SET_STATUS[True], [v for v in unchanged if v["previous"] is None])):
        if group:
            session.execute(cas, group)
    write_summaries(session, summaries)
    return out


def set_statuses(session: Session, changes: Sequence[Mapping[str, Any]]) -> set[str]:
    """Compare-and-set the changed statuses; the partnerships whose status this transaction
    changed (only those emit PartnershipAtRisk). One executemany per kind of previous status, in
    a savepoint: when every row matched (no other instance changed one meanwhile, always so on
    SQLite, whose writers take turns) that is the answer; otherwise the savepoint is undone and
    each is set alone, with RETURNING saying whether it was this one."""
    if not changes:
        return set()
    groups = [(cas, [v for v in changes if (v["previous"] is None) == is_none])
              for is_none, cas in ((False, _SET_STATUS[False]), (True, _SET_STATUS[True]))]
    savepoint = session.begin_nested()
    connection = session.connection()
    if sum(connection.execute(cas, group).rowcount for cas, group in groups if group) == len(changes):
        savepoint.commit()
        return {v["pid"] for v in changes}
    savepoint.rollback()
    return {v["pid"] for cas, group in groups for v in group
            if session.execute(cas.returning(_P.c.partnership_id), v).first() is not None}


def write_summaries(session: Session, summaries: Mapping[str, tuple[str | None, str | None]]) -> None:
    """Compare-and-set each summary on the value read. If any was changed meanwhile by another
    transaction (another instance judged the partnership), those that are not ours now are
    cleared: the next judgement rebuilds them from the view."""
    params = [{"pid": pid, "old": old, "new": new} for pid, (old, new) in summaries.items() if old != new]
    if not params:
        return
    written = session.connection().execute(_SET_SUMMARY, params).rowcount
    if written == len(params):
        return
    ours = {p["pid"]: p["new"] for p in params}
    lost = [pid for pid, now_stored in session.execute(
        core_select(_P.c.partnership_id, _P.c.meeting_summary).where(_P.c.partnership_id.in_(_IDS)),
        {"ids": list(ours)}) if now_stored != ours[pid]]
    forget_summaries(session, lost)


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
