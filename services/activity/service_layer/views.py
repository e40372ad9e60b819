"""Read models for the HTTP API (no changes here)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from services.activity.adapters.tables import (
    ActivityRow,
    MeetingRow,
    MentorMonthCloseRow,
    MonthCloseRow,
    PartnershipRow,
    TimeEntryRow,
    as_utc,
)
from services.activity.domain.activities import ActivityFact, pip_progress
from services.activity.domain.calendar import first_day, next_month
from services.activity.service_layer.compliance import evaluate_partnership
from services.activity.service_layer.month_close import close_state
from services.activity.service_layer.unit import require_policy
from shared.errors import NotFound


def meeting_view(row: MeetingRow) -> dict[str, Any]:
    return {
        "meeting_id": row.meeting_id, "partnership_id": row.partnership_id, "program_id": row.program_id,
        "mentor_id": row.mentor_id, "mentee_id": row.mentee_id, "started_at": as_utc(row.started_at).isoformat(),
        "duration_minutes": row.duration_minutes, "mode": row.mode, "intentional": row.intentional,
        "topics": json.loads(row.topics), "notes": row.notes, "voided": row.voided, "void_reason": row.void_reason,
        "logged_by": row.logged_by, "revision": row.revision,
    }


def entry_view(row: TimeEntryRow) -> dict[str, Any]:
    return {
        "entry_id": row.entry_id, "program_id": row.program_id, "mentor_id": row.mentor_id,
        "partnership_id": row.partnership_id, "meeting_id": row.meeting_id,
        "workshop_entry_id": row.workshop_entry_id, "kind": row.kind,
        "work_date": row.work_date.isoformat(), "minutes": row.minutes, "voided": row.voided,
        "reason": row.reason, "closed_month": row.closed_month,
        "late": row.closed_month is not None and row.work_date < first_day(row.closed_month),
    }


def activity_view(row: ActivityRow) -> dict[str, Any]:
    return {
        "activity_id": row.activity_id, "partnership_id": row.partnership_id, "kind": row.kind,
        "stage": row.stage, "occurred_on": row.occurred_on.isoformat(), "details": json.loads(row.details),
    }


def partnership_meetings(s: Session, partnership_id: str) -> list[dict[str, Any]]:
    rows = s.exec(select(MeetingRow).where(MeetingRow.partnership_id == partnership_id)
                  .order_by(col(MeetingRow.started_at))).all()
    return [meeting_view(r) for r in rows]


def mentor_entries(s: Session, mentor_id: str, month: str | None) -> list[dict[str, Any]]:
    q = select(TimeEntryRow).where(TimeEntryRow.mentor_id == mentor_id)
    if month is not None:
        q = q.where(col(TimeEntryRow.work_date) >= first_day(month),
                    col(TimeEntryRow.work_date) < first_day(next_month(month)))
    return [entry_view(r) for r in s.exec(q.order_by(col(TimeEntryRow.work_date), col(TimeEntryRow.entry_id)))]


def partnership_activities(s: Session, partnership_id: str) -> dict[str, Any]:
    rows = list(s.exec(select(ActivityRow).where(ActivityRow.partnership_id == partnership_id)
                       .order_by(col(ActivityRow.occurred_on))).all())
    facts = [ActivityFact(a.activity_id, a.kind, a.occurred_on, a.stage, a.pip_id) for a in rows]
    pips = [
        {"pip_id": p.pip_id, "stages": {k: v.isoformat() for k, v in p.stages.items()}, "complete": p.complete,
         "completed_on": p.completed_on.isoformat() if p.completed_on else None, "missing": p.missing}
        for p in pip_progress(facts)
    ]
    return {"partnership_id": partnership_id, "activities": [activity_view(r) for r in rows], "pips": pips}


def partnership_compliance(s: Session, partnership_id: str, now: datetime) -> dict[str, Any]:
    row = s.get(PartnershipRow, partnership_id)
    if row is None or not row.matched:
        raise NotFound("partnership_id", f"no partnership {partnership_id!r} is known")
    require_policy(s, row.program_id, "partnership_id")
    compliance = evaluate_partnership(s, row, now)
    assert compliance is not None
    return {
        "partnership_id": partnership_id, "program_id": row.program_id, "mentor_id": row.mentor_id,
        "active": row.ended_at is None, "status": compliance.status.value, "reasons": compliance.reasons,
        "findings": [f.as_dict() for f in compliance.findings], "recorded_status": row.status,
        "evaluated_at": now.isoformat(),
    }


def program_compliance(s: Session, program_id: str, status: str | None, limit: int | None = None,
                       offset: int = 0, mentor_id: str | None = None, metamentor_id: str | None = None
                       ) -> dict[str, Any]:
    require_policy(s, program_id)
    base = select(PartnershipRow).where(PartnershipRow.program_id == program_id,
                                        col(PartnershipRow.matched).is_(True), col(PartnershipRow.ended_at).is_(None))
    counts = dict(s.exec(
        select(PartnershipRow.status, func.count()).where(
            PartnershipRow.program_id == program_id, col(PartnershipRow.matched).is_(True),
            col(PartnershipRow.ended_at).is_(None)).group_by(col(PartnershipRow.status))
    ).all())
    if status is not None:
        base = base.where(PartnershipRow.status == status)
    if mentor_id is not None:
        base = base.where(PartnershipRow.mentor_id == mentor_id)
    if metamentor_id is not None:
        base = base.where(PartnershipRow.metamentor_id == metamentor_id)
    rows = s.exec(base.order_by(col(PartnershipRow.partnership_id)).offset(offset).limit(limit)).all()
    return {
        "program_id": program_id, "limit": limit, "offset": offset,
        "counts": {(k or "not_evaluated"): v for k, v in counts.items()},
        "partnerships": [
            {"partnership_id": r.partnership_id, "mentor_id": r.mentor_id, "mentee_id": r.mentee_id,
             "metamentor_id": r.metamentor_id, "status": r.status, "reasons": json.loads(r.status_reasons),
             "checked_on": r.status_checked_on.isoformat() if r.status_checked_on else None}
            for r in rows
        ],
    }


def month_closes(s: Session, program_id: str, now: datetime) -> dict[str, Any]:
    require_policy(s, program_id)
    state = close_state(s, program_id, now)
    rows = s.exec(select(MonthCloseRow).where(MonthCloseRow.program_id == program_id)
                  .order_by(col(MonthCloseRow.month).desc())).all()
    return {
        "program_id": program_id,
        "closed": [
            {"month": r.month, "closed_at": as_utc(r.closed_at).isoformat(), "triggered_by": r.triggered_by,
             "mentors": r.mentors, "entries": r.entries, "late_entries": r.late_entries,
             "minutes_by_kind": json.loads(r.minutes_by_kind)}
            for r in rows
        ],
        "due_now": state.due,
        "next_month": state.next_month,
        "next_close_at": state.next_due_at.isoformat(),
    }


def mentor_close(s: Session, program_id: str, mentor_id: str) -> list[dict[str, Any]]:
    rows = s.exec(select(MentorMonthCloseRow).where(MentorMonthCloseRow.program_id == program_id,
                                                    MentorMonthCloseRow.mentor_id == mentor_id)
                  .order_by(col(MentorMonthCloseRow.month))).all()
    return [{"month": r.month, "entries": r.entries, "minutes": r.minutes, "event_id": r.event_id} for r in rows]
