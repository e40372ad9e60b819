"""Commands from the HTTP API: log and correct meetings, record and amend time entries, record
activities. Each runs in one transaction with the events it emits (through the outbox)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from services.activity.adapters.tables import (
    ActivityRow,
    MeetingRow,
    MentorRow,
    PartnershipRow,
    TimeEntryRow,
    as_utc,
)
from services.activity.domain.activities import ActivityDraft, ActivityFact, ActivityKind, validate_activity
from services.activity.domain.meetings import (
    Actor,
    LoggedMeeting,
    MeetingChange,
    MeetingDraft,
    Partnership,
    Role,
    apply_change,
    validate_correction,
    validate_new_meeting,
)
from services.activity.domain.time_entries import (
    TimeEntryDraft,
    WorkshopEntry,
    check_fields,
    check_planning_cap,
    check_workshop_shrink,
)
from services.activity.service_layer.unit import Unit, require_policy
from shared.clock import ensure_utc, local_date
from shared.contracts.activity import (
    ActivityRecorded,
    MeetingCorrected,
    MeetingLogged,
    TimeEntryAmended,
    TimeEntryRecorded,
)
from shared.contracts.program import TimeEntryKind
from shared.errors import Conflict, DomainError, Forbidden, NotFound


def new_id() -> str:
    return uuid.uuid4().hex


_P = PartnershipRow.__table__  # type: ignore[attr-defined]
_M = MentorRow.__table__  # type: ignore[attr-defined]
_MEETINGS = MeetingRow.__table__  # type: ignore[attr-defined]
_ENTRIES = TimeEntryRow.__table__  # type: ignore[attr-defined]
# Built once: logging a meeting is the hot write path (one request per meeting).
_PARTNERSHIP = (
    core_select(_P.c.partnership_id, _P.c.program_id, _P.c.mentor_id, _P.c.mentee_id, _P.c.matched,
                _P.c.started_at, _P.c.ended_at, _M.c.paused_at)
    .select_from(_P.outerjoin(_M, _M.c.mentor_id == _P.c.mentor_id))
    .where(_P.c.partnership_id == bindparam("pid"))
)
# The partnership's meetings that a draft would duplicate (by the unique fingerprint's index): the
# duplicate check used to read all of a partnership's meetings on every request.
_LOGGED = core_select(_MEETINGS.c.meeting_id, _MEETINGS.c.fingerprint, _MEETINGS.c.voided).where(
    _MEETINGS.c.fingerprint == bindparam("fp"), _MEETINGS.c.partnership_id == bindparam("pid"))
_INSERT_MEETING = insert(_MEETINGS)
_INSERT_ENTRY = insert(_ENTRIES)


def partnership_view(session: Session, partnership_id: str) -> Partnership | None:
    row = session.execute(_PARTNERSHIP, {"pid": partnership_id}).first()
    if row is None or not row.matched or row.started_at is None:
        return None
    return Partnership(
        row.partnership_id, row.program_id, row.mentor_id, row.mentee_id, as_utc(row.started_at),
        as_utc(row.ended_at) if row.ended_at else None, row.paused_at is not None,
    )


def _logged(session: Session, partnership_id: str, fingerprint: str) -> list[LoggedMeeting]:
    """The logged meetings of the partnership with this fingerprint (those a draft duplicates).
    Through the session: meetings added earlier in this transaction are flushed and seen."""
    rows = session.execute(_LOGGED, {"pid": partnership_id, "fp": fingerprint}).all()
    return [LoggedMeeting(r.meeting_id, r.fingerprint or "", r.voided) for r in rows]


def _draft_of(row: MeetingRow) -> MeetingDraft:
    return MeetingDraft(row.partnership_id, as_utc(row.started_at), row.duration_minutes, row.mode,
                        row.intentional, tuple(json.loads(row.topics)), row.notes)


# -- meetings ---------------------------------------------------------------------------------
def log_meeting(uow: Unit, draft: MeetingDraft, actor: Actor, now: datetime) -> MeetingRow:
    """Store the meeting and its meeting-time entry; emit MeetingLogged and TimeEntryRecorded.

    The rows are written with plain INSERTs (the ORM's unit of work cost more than the rest of the
    request); the returned MeetingRow is what was stored, not attached to the session."""
    s = uow.session
    fingerprint = draft.fingerprint()
    p = validate_new_meeting(draft, actor, partnership_view(s, draft.partnership_id), now,
                             _logged(s, draft.partnership_id, fingerprint))
    policy = require_policy(s, p.program_id, "partnership_id")
    started = ensure_utc(draft.started_at)
    meeting: dict[str, Any] = {
        "meeting_id": new_id(), "partnership_id": p.partnership_id, "program_id": p.program_id,
        "mentor_id": p.mentor_id, "mentee_id": p.mentee_id, "started_at": started,
        "duration_minutes": draft.duration_minutes, "mode": draft.mode, "intentional": draft.intentional,
        "topics": json.dumps(list(draft.topics)), "notes": draft.notes, "voided": False, "void_reason": "",
        "fingerprint": fingerprint, "logged_by": actor.actor_id, "logged_role": actor.role,
        "created_at": now, "updated_at": now, "revision": 1,
    }
    entry: dict[str, Any] = {
        "entry_id": meeting["meeting_id"], "program_id": p.program_id, "mentor_id": p.mentor_id,
        "partnership_id": p.partnership_id, "meeting_id": meeting["meeting_id"],
        "workshop_entry_id": None, "kind": TimeEntryKind.MEETING.value,
        "work_date": local_date(started, policy.timezone), "minutes": draft.duration_minutes, "voided": False,
        "reason": "", "recorded_by": actor.actor_id, "recorded_at": now, "amended_at": None, "closed_month": None,
    }
    s.execute(_INSERT_MEETING, meeting)  # a duplicate racing us fails here (unique fingerprint)
    s.execute(_INSERT_ENTRY, entry)
    uow.emit(MeetingLogged(
        meeting_id=meeting["meeting_id"], partnership_id=p.partnership_id, program_id=p.program_id,
        mentor_id=p.mentor_id, mentee_id=p.mentee_id, started_at=started,
        duration_minutes=draft.duration_minutes, mode=draft.mode,
        intentional=draft.intentional, topics=list(draft.topics), logged_by=actor.actor_id,
    ))
    uow.emit(TimeEntryRecorded(
        entry_id=entry["entry_id"], mentor_id=p.mentor_id, program_id=p.program_id, kind=TimeEntryKind.MEETING,
        work_date=entry["work_date"], minutes=draft.duration_minutes, partnership_id=p.partnership_id,
        meeting_id=entry["meeting_id"],
    ))
    return MeetingRow(**meeting)


def correct_meeting(uow: Unit, meeting_id: str, change: MeetingChange, actor: Actor, now: datetime) -> MeetingRow:
    s = uow.session
    row = s.get(MeetingRow, meeting_id)
    if row is None:
        raise NotFound("meeting_id", f"no meeting {meeting_id!r}")
    if row.voided:
        raise Conflict("meeting_id", f"meeting {meeting_id} was voided; log a new one", "voided")
    current = _draft_of(row)
    # A void needs no duplicate check; a change is checked against the fingerprint it would take.
    duplicates = [] if change.voided else _logged(s, row.partnership_id, apply_change(current, change).fingerprint())
    corrected = validate_correction(current, change, actor, partnership_view(s, row.partnership_id), now,
                                    duplicates, meeting_id)
    policy = require_policy(s, row.program_id, "meeting_id")
    if change.voided:
        row.voided, row.void_reason, row.fingerprint = True, change.reason, None
    else:
        row.started_at = ensure_utc(corrected.started_at)
        row.duration_minutes, row.mode = corrected.duration_minutes, corrected.mode
        row.intentional, row.topics = corrected.intentional, json.dumps(list(corrected.topics))
        row.fingerprint = corrected.fingerprint()
    row.updated_at, row.revision = now, row.revision + 1
    s.add(row)
    s.flush()
    uow.emit(MeetingCorrected(
        meeting_id=meeting_id, partnership_id=row.partnership_id, program_id=row.program_id,
        started_at=as_utc(row.started_at), duration_minutes=0 if row.voided else row.duration_minutes,
        mode=row.mode, intentional=row.intentional, voided=row.voided,
        reason=change.reason,
    ))
    entry = s.get(TimeEntryRow, meeting_id, with_for_update=True)
    if entry is not None:
        _amend(uow, entry, EntryState(TimeEntryKind.MEETING, local_date(as_utc(row.started_at),
               policy.timezone), row.duration_minutes, row.voided), change.reason or "meeting corrected",
               actor, now)
    return row


# -- time entries -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EntryState:
    kind: TimeEntryKind
    work_date: date
    minutes: int
    voided: bool = False


def _recorded(entry: TimeEntryRow) -> TimeEntryRecorded:
    return TimeEntryRecorded(
        entry_id=entry.entry_id, mentor_id=entry.mentor_id, program_id=entry.program_id,
        kind=TimeEntryKind(entry.kind), work_date=entry.work_date, minutes=entry.minutes,
        partnership_id=entry.partnership_id, meeting_id=entry.meeting_id,
        workshop_entry_id=entry.workshop_entry_id,
    )


def _linked_planning(s: Session, workshop_entry_id: str, excluding: str | None = None) -> int:
    q = select(func.coalesce(func.sum(TimeEntryRow.minutes), 0)).where(
        TimeEntryRow.workshop_entry_id == workshop_entry_id, col(TimeEntryRow.voided).is_(False),
    )
    if excluding is not None:
        q = q.where(TimeEntryRow.entry_id != excluding)
    return int(s.exec(q).one())


def _workshop(s: Session, entry_id: str | None) -> WorkshopEntry | None:
    if entry_id is None:
        return None
    row = s.get(TimeEntryRow, entry_id)
    if row is None:
        return None
    return WorkshopEntry(row.entry_id, row.mentor_id, TimeEntryKind(row.kind), row.minutes, row.voided)


def _may_act_for(actor: Actor, mentor_id: str) -> None:
    if actor.role not in (Role.MENTOR, Role.STAFF):
        raise Forbidden("X-Actor-Role", f"role {actor.role!r} may not record time (mentor or staff)")
    if not actor.is_staff and actor.actor_id != mentor_id:
        raise Forbidden("mentor_id", f"mentor {actor.actor_id!r} may record only their own time")


def record_time_entry(uow: Unit, draft: TimeEntryDraft, actor: Actor, now: datetime) -> TimeEntryRow:
    s = uow.session
    _may_act_for(actor, draft.mentor_id)
    policy = require_policy(s, draft.program_id)
    check_fields(draft, local_date(now, policy.timezone))
    if draft.partnership_id is not None:
        p = s.get(PartnershipRow, draft.partnership_id)
        if p is None:
            raise NotFound("partnership_id", f"no partnership {draft.partnership_id!r}")
        if p.mentor_id != draft.mentor_id or p.program_id != draft.program_id:
            raise Conflict("partnership_id", "the partnership is not this mentor's in this program", "not_owner")
    if draft.workshop_entry_id is not None:
        check_planning_cap(draft, _workshop(s, draft.workshop_entry_id),
                           _linked_planning(s, draft.workshop_entry_id), policy.pay.planning_multiple_of_workshop)
    entry = TimeEntryRow(
        entry_id=new_id(), program_id=draft.program_id, mentor_id=draft.mentor_id,
        partnership_id=draft.partnership_id, workshop_entry_id=draft.workshop_entry_id, kind=draft.kind.value,
        work_date=draft.work_date, minutes=draft.minutes, recorded_by=actor.actor_id, recorded_at=now,
    )
    s.add(entry)
    uow.emit(_recorded(entry))
    return entry


def amend_time_entry(
    uow: Unit, entry_id: str, kind: TimeEntryKind | None, work_date: date | None, minutes: int | None,
    voided: bool, reason: str, actor: Actor, now: datetime,
) -> TimeEntryRow:
    s = uow.session
    # Locked: a month close claiming this entry at the same moment waits, or is waited for, so the
    # amendment sees whether the entry is frozen (PostgreSQL; SQLite serialises writers anyway).
    entry = s.get(TimeEntryRow, entry_id, with_for_update=True)
    if entry is None:
        raise NotFound("entry_id", f"no time entry {entry_id!r}")
    _may_act_for(actor, entry.mentor_id)
    if entry.meeting_id is not None:
        raise Conflict("entry_id", "meeting time follows its meeting: correct the meeting instead", "meeting_entry")
    if entry.voided:
        raise Conflict("entry_id", f"time entry {entry_id} was voided", "voided")
    if not reason.strip():
        raise DomainError("reason", "an amendment needs a reason", "reason_required")
    policy = require_policy(s, entry.program_id)
    new = EntryState(kind or TimeEntryKind(entry.kind), work_date or entry.work_date,
                     entry.minutes if minutes is None else minutes, voided)
    if not voided:
        check_fields(TimeEntryDraft(entry.mentor_id, entry.program_id, new.kind, new.work_date, new.minutes,
                                    entry.partnership_id, entry.workshop_entry_id if new.kind ==
                                    TimeEntryKind.PLANNING else None), local_date(now, policy.timezone))
        if entry.workshop_entry_id is not None and new.kind == TimeEntryKind.PLANNING:
            check_planning_cap(
                TimeEntryDraft(entry.mentor_id, entry.program_id, new.kind, new.work_date, new.minutes,
                               workshop_entry_id=entry.workshop_entry_id),
                _workshop(s, entry.workshop_entry_id), _linked_planning(s, entry.workshop_entry_id, entry_id),
                policy.pay.planning_multiple_of_workshop)
    linked = _linked_planning(s, entry_id)
    if entry.kind == TimeEntryKind.WORKSHOP and linked:
        shrink_to = 0 if voided or new.kind != TimeEntryKind.WORKSHOP else new.minutes
        check_workshop_shrink(shrink_to, linked, policy.pay.planning_multiple_of_workshop)
    current = EntryState(TimeEntryKind(entry.kind), entry.work_date, entry.minutes, entry.voided)
    if new == current:
        raise Conflict("body", "the amendment changes nothing", "no_change")
    return _amend(uow, entry, new, reason, actor, now)


def _amend(uow: Unit, entry: TimeEntryRow, new: EntryState, reason: str, actor: Actor, now: datetime
           ) -> TimeEntryRow:
    """Change an entry in place. An entry a close already froze stays claimed by that close (it is
    never in a second MonthClosed): TimeEntryAmended names the closed month, and payments settles
    the difference on the mentor's next statement."""
    old = EntryState(TimeEntryKind(entry.kind), entry.work_date, entry.minutes, entry.voided)
    if old == new:
        return entry
    entry.kind, entry.work_date, entry.minutes, entry.voided = new.kind.value, new.work_date, new.minutes, new.voided
    entry.reason, entry.amended_at, entry.recorded_by = reason, now, entry.recorded_by or actor.actor_id
    uow.session.add(entry)
    uow.emit(TimeEntryAmended(
        entry_id=entry.entry_id, mentor_id=entry.mentor_id, program_id=entry.program_id, kind=new.kind,
        work_date=new.work_date, minutes=0 if new.voided else new.minutes, voided=new.voided, reason=reason,
        month=entry.closed_month,
    ))
    return entry


# -- activities -------------------------------------------------------------------------------
def record_activity(uow: Unit, draft: ActivityDraft, actor: Actor, now: datetime) -> ActivityRow:
    s = uow.session
    p = partnership_view(s, draft.partnership_id)
    if p is None:
        raise NotFound("partnership_id", f"no partnership {draft.partnership_id!r} is known")
    if actor.role not in (Role.MENTOR, Role.STAFF, "mentee"):
        raise Forbidden("X-Actor-Role", f"role {actor.role!r} may not record activities")
    if not actor.is_staff and actor.actor_id not in (p.mentor_id, p.mentee_id):
        raise Forbidden("partnership_id", f"{actor.actor_id!r} is not in partnership {p.partnership_id!r}")
    policy = require_policy(s, p.program_id, "partnership_id")
    existing = [
        ActivityFact(a.activity_id, a.kind, a.occurred_on, a.stage, a.pip_id)
        for a in s.exec(select(ActivityRow).where(ActivityRow.partnership_id == p.partnership_id)).all()
    ]
    validate_activity(draft, local_date(now, policy.timezone), existing)
    if draft.occurred_on < local_date(p.started_at, policy.timezone):
        raise DomainError("occurred_on", f"is before the partnership started ({p.started_at.date()})",
                          "before_partnership")
    details = draft.detail
    row = ActivityRow(
        activity_id=new_id(), partnership_id=p.partnership_id, program_id=p.program_id, kind=draft.kind,
        stage=draft.stage, pip_id=details.get("pip_id") if draft.kind == ActivityKind.PIP_STAGE else None,
        occurred_on=draft.occurred_on, details=json.dumps(details), recorded_by=actor.actor_id, recorded_at=now,
    )
    s.add(row)
    uow.emit(ActivityRecorded(
        activity_id=row.activity_id, partnership_id=p.partnership_id, program_id=p.program_id, kind=draft.kind,
        stage=draft.stage, occurred_on=draft.occurred_on, details=details,
    ))
    return row
