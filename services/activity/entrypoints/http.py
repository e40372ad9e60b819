"""The activity service's HTTP API (internal: the gateway calls it and passes X-Actor-Id/-Role)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.exc import IntegrityError

from services.activity.adapters.tables import MeetingRow, ProgramRow, TimeEntryRow
from services.activity.domain.activities import ActivityDraft
from services.activity.domain.calendar import parse_month
from services.activity.domain.meetings import Actor, MeetingChange, MeetingDraft, Role
from services.activity.domain.time_entries import TimeEntryDraft
from services.activity.service_layer import commands, views
from services.activity.service_layer.month_close import close_due_months, close_state
from shared.contracts.envelope import Cause
from shared.contracts.program import TimeEntryKind
from shared.errors import Conflict, DomainError, Forbidden, NotFound
from shared.service import Service, request_cause


class MeetingIn(BaseModel):
    partnership_id: str = Field(min_length=1)
    started_at: AwareDatetime
    duration_minutes: int
    mode: str
    intentional: bool
    topics: list[str] = Field(default_factory=list)
    notes: str = ""


class MeetingCorrectionIn(BaseModel):
    started_at: AwareDatetime | None = None
    duration_minutes: int | None = None
    mode: str | None = None
    intentional: bool | None = None
    topics: list[str] | None = None
    voided: bool = False
    reason: str = ""


class TimeEntryIn(BaseModel):
    program_id: str = Field(min_length=1)
    mentor_id: str | None = None  # staff record for a mentor; a mentor records their own
    kind: TimeEntryKind
    work_date: date
    minutes: int
    partnership_id: str | None = None
    workshop_entry_id: str | None = None


class TimeEntryAmendmentIn(BaseModel):
    kind: TimeEntryKind | None = None
    work_date: date | None = None
    minutes: int | None = None
    voided: bool = False
    reason: str = ""


class ActivityIn(BaseModel):
    partnership_id: str = Field(min_length=1)
    kind: str
    stage: str | None = None
    occurred_on: date
    details: dict[str, str] = Field(default_factory=dict)


class MonthCloseIn(BaseModel):
    month: str | None = None  # close up to this month (it must be due); default: every due month


MAX_PAGE_VALUE = 2**31 - 1  # SQLite integers stop at 2**63; past this it is not a page anyone means


async def actor(x_actor_id: str | None = Header(default=None), x_actor_role: str | None = Header(default=None)) -> Actor:
    if not x_actor_id or not x_actor_role:
        raise Forbidden("X-Actor-Id", "the request does not say who acts (X-Actor-Id and X-Actor-Role)", "no_actor")
    return Actor(x_actor_id, x_actor_role)


def build_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["activity"])
    clock = service.clock

    # -- meetings -----------------------------------------------------------------------------
    @router.post("/meetings", status_code=201)
    def log_meeting(body: MeetingIn, who: Actor = Depends(actor), cause: Cause = Depends(request_cause)) -> Any:
        draft = MeetingDraft(body.partnership_id, body.started_at, body.duration_minutes, body.mode,
                             body.intentional, tuple(body.topics), body.notes)
        try:
            with service.transaction(cause) as tx:
                row = commands.log_meeting(tx, draft, who, clock.now())
                return views.meeting_view(row)
        except IntegrityError as exc:  # an identical meeting committed between our check and our write
            raise Conflict("started_at", "the same meeting is already logged", "duplicate") from exc

    @router.post("/meetings/{meeting_id}/corrections")
    def correct_meeting(meeting_id: str, body: MeetingCorrectionIn, who: Actor = Depends(actor),
                        cause: Cause = Depends(request_cause)) -> Any:
        change = MeetingChange(body.started_at, body.duration_minutes, body.mode, body.intentional, body.voided,
                               body.reason, tuple(body.topics) if body.topics is not None else None)
        with service.transaction(cause) as tx:
            row = commands.correct_meeting(tx, meeting_id, change, who, clock.now())
            return views.meeting_view(row)

    @router.get("/meetings/{meeting_id}")
    def get_meeting(meeting_id: str) -> Any:
        with service.db.session() as s:
            row = s.get(MeetingRow, meeting_id)
            if row is None:
                raise NotFound("meeting_id", f"no meeting {meeting_id!r}")
            return views.meeting_view(row)

    @router.get("/partnerships/{partnership_id}/meetings")
    def list_meetings(partnership_id: str) -> Any:
        with service.db.session() as s:
            return {"partnership_id": partnership_id, "meetings": views.partnership_meetings(s, partnership_id)}

    # -- time entries -------------------------------------------------------------------------
    @router.post("/time-entries", status_code=201)
    def record_time(body: TimeEntryIn, who: Actor = Depends(actor), cause: Cause = Depends(request_cause)) -> Any:
        mentor_id = body.mentor_id or (who.actor_id if who.role == Role.MENTOR else None)
        if mentor_id is None:
            raise DomainError("mentor_id", "staff must say whose time this is", "required")
        draft = TimeEntryDraft(mentor_id, body.program_id, body.kind, body.work_date, body.minutes,
                               body.partnership_id, body.workshop_entry_id)
        with service.transaction(cause) as tx:
            return views.entry_view(commands.record_time_entry(tx, draft, who, clock.now()))

    @router.post("/time-entries/{entry_id}/amendments")
    def amend_time(entry_id: str, body: TimeEntryAmendmentIn, who: Actor = Depends(actor),
                   cause: Cause = Depends(request_cause)) -> Any:
        with service.transaction(cause) as tx:
            row = commands.amend_time_entry(tx, entry_id, body.kind, body.work_date, body.minutes, body.voided,
                                            body.reason, who, clock.now())
            return views.entry_view(row)

    @router.get("/time-entries/{entry_id}")
    def get_time_entry(entry_id: str) -> Any:
        with service.db.session() as s:
            row = s.get(TimeEntryRow, entry_id)
            if row is None:
                raise NotFound("entry_id", f"no time entry {entry_id!r}")
            return views.entry_view(row)

    @router.get("/mentors/{mentor_id}/time-entries")
    def list_time(mentor_id: str, month: str | None = Query(default=None)) -> Any:
        if month is not None:
            _month(month)
        with service.db.session() as s:
            return {"mentor_id": mentor_id, "month": month, "entries": views.mentor_entries(s, mentor_id, month)}

    # -- activities ---------------------------------------------------------------------------
    @router.post("/activities", status_code=201)
    def record_activity(body: ActivityIn, who: Actor = Depends(actor), cause: Cause = Depends(request_cause)) -> Any:
        draft = ActivityDraft(body.partnership_id, body.kind, body.occurred_on, body.stage,
                              tuple(sorted(body.details.items())))
        with service.transaction(cause) as tx:
            return views.activity_view(commands.record_activity(tx, draft, who, clock.now()))

    @router.get("/partnerships/{partnership_id}/activities")
    def list_activities(partnership_id: str) -> Any:
        with service.db.session() as s:
            return views.partnership_activities(s, partnership_id)

    # -- compliance ---------------------------------------------------------------------------
    @router.get("/partnerships/{partnership_id}/compliance")
    def partnership_compliance(partnership_id: str) -> Any:
        with service.db.session() as s:
            return views.partnership_compliance(s, partnership_id, clock.now())

    @router.get("/programs/{program_id}/compliance")
    def program_compliance(program_id: str, status: str | None = Query(default=None),
                           mentor_id: str | None = Query(default=None), metamentor_id: str | None = Query(default=None),
                           limit: int | None = Query(default=None, ge=1, le=MAX_PAGE_VALUE),
                           offset: int = Query(default=0, ge=0, le=MAX_PAGE_VALUE)
                           ) -> Any:
        """Counts by status (whole program) and the partnerships (all, or filtered / one page)."""
        if status is not None and status not in ("on_track", "behind", "at_risk"):
            raise DomainError("status", "must be on_track, behind or at_risk", "unknown_status")
        with service.db.session() as s:
            return views.program_compliance(s, program_id, status, limit, offset, mentor_id, metamentor_id)

    # -- month close --------------------------------------------------------------------------
    @router.get("/programs/{program_id}/month-closes")
    def month_closes(program_id: str) -> Any:
        with service.db.session() as s:
            return views.month_closes(s, program_id, clock.now())

    @router.get("/programs/{program_id}/mentors/{mentor_id}/month-closes")
    def mentor_closes(program_id: str, mentor_id: str) -> Any:
        with service.db.session() as s:
            return {"program_id": program_id, "mentor_id": mentor_id,
                    "closes": views.mentor_close(s, program_id, mentor_id)}

    @router.post("/programs/{program_id}/month-closes")
    def trigger_close(program_id: str, body: MonthCloseIn, who: Actor = Depends(actor),
                      cause: Cause = Depends(request_cause)) -> Any:
        if not who.is_staff:
            raise Forbidden("X-Actor-Role", "only staff may close a month")
        now = clock.now()
        with service.db.session() as s:
            if s.get(ProgramRow, program_id) is None:
                raise NotFound("program_id", f"program {program_id!r} is not configured (yet)")
            state = close_state(s, program_id, now)
        if body.month is not None:
            _month(body.month)
            if body.month > state.due_month:
                raise Conflict("month", f"{body.month} is not due yet: the latest month due is {state.due_month}; "
                               f"{state.next_month} closes at {state.next_due_at.isoformat()}", "not_due")
        done = close_due_months(service.db, service.outbox, program_id, now, cause=cause,
                                triggered_by=who.actor_id, until=body.month)
        service.relay.wake()
        with service.db.session() as s:
            status = views.month_closes(s, program_id, now)
        return {"closed_now": [d.as_dict() for d in done], **status}

    return router


def _month(value: str) -> None:
    try:
        parse_month(value)
    except ValueError as exc:
        raise DomainError("month", str(exc), "not_a_month") from exc
