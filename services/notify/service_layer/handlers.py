"""Event handlers: keep the notify projections and record the emails events cause.

Every handler runs in the consumer's transaction (shared.messaging.EventConsumer): the projection
change, the pending messages and the inbox row commit together. Handlers are also idempotent by
state (upserts, ON CONFLICT DO NOTHING), so replaying a topic from the start changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from services.notify.adapters import message_log
from services.notify.adapters.tables import (
    PartnershipChangeRow,
    PartnershipRow,
    PersonRow,
    ProgramActivityRow,
    ProgramRow,
    TimeEntryRow,
)
from services.notify.domain import messages as rules
from services.notify.domain.messages import MessageIntent
from services.notify.service_layer import rows
from shared.clock import local_date
from shared.contracts.activity import (
    ActivityRecorded,
    FeedbackReviewed,
    MeetingCorrected,
    MeetingLogged,
    PartnershipAtRisk,
    SurveyInvited,
    TimeEntryAmended,
    TimeEntryRecorded,
)
from shared.contracts.matching import (
    IncidentReported,
    MenteeEnrolled,
    MenteeMatched,
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
from shared.contracts.payments import (
    ClarificationRequested,
    PaymentApproved,
    PayoutIssued,
    ReimbursementApproved,
    ReimbursementRefused,
)
from shared.contracts.program import ProgramPolicy
from shared.messaging import HandlerContext

PIP_STAGES = {"exploration", "collaboration", "application"}


# -- helpers ---------------------------------------------------------------------------------
_POLICIES = "notify.policies"
_ACTIVITY = ProgramActivityRow.__table__  # type: ignore[attr-defined]
_CHANGES = PartnershipChangeRow.__table__  # type: ignore[attr-defined]
_ENTRIES = TimeEntryRow.__table__  # type: ignore[attr-defined]
_ACTIVITY_FIELDS = ("program_id", "month", "kind", "minutes", "detail")


@lru_cache(maxsize=256)
def parse_policy(raw: str) -> ProgramPolicy:
    return ProgramPolicy.model_validate_json(raw)


def policy_of(session: Session, program_id: str) -> ProgramPolicy:
    """The program's policy (the default one for a program not configured yet), read once per
    transaction: a consumer batch asks for it for every event."""
    cache: dict[str, ProgramPolicy] = session.info.setdefault(_POLICIES, {})
    policy = cache.get(program_id)
    if policy is None:
        raw = session.execute(select(ProgramRow.policy).where(ProgramRow.program_id == program_id)).scalar()
        if raw is None:
            return ProgramPolicy()  # not cached: its ProgramConfigured may come later in the batch
        policy = cache[program_id] = parse_policy(raw)
    return policy


def month_of(session: Session, program_id: str, instant: datetime | date) -> str:
    if isinstance(instant, datetime):
        instant = local_date(instant, policy_of(session, program_id).timezone)
    return f"{instant.year:04d}-{instant.month:02d}"


def send(ctx: HandlerContext, intents: Iterable[MessageIntent]) -> None:
    message_log.enqueue(ctx.session, intents, str(ctx.envelope.event_id), ctx.clock.now())


def _change(ctx: HandlerContext, partnership_id: str, description: str) -> dict[str, Any]:
    return {"event_id": str(ctx.envelope.event_id), "partnership_id": partnership_id,
            "at_ms": message_log.epoch_ms(ctx.envelope.occurred_at), "description": description}


def note_change(ctx: HandlerContext, partnership_id: str, description: str) -> None:
    """Record the change once per event (a replayed event finds it there)."""
    rows.insert_absent(ctx.session, _CHANGES, [_change(ctx, partnership_id, description)], "event_id")


def _activity(row: ProgramActivityRow) -> dict[str, Any]:
    return {"subject_id": row.subject_id, **{f: getattr(row, f) for f in _ACTIVITY_FIELDS}}


def upsert_activity(session: Session, row: ProgramActivityRow) -> None:
    """Insert the happening, or replace what is known of its subject."""
    rows.upsert(session, _ACTIVITY, [_activity(row)], "subject_id", _ACTIVITY_FIELDS)


def name_of(session: Session, program_id: str, person_id: str) -> str:
    person = session.get(PersonRow, (program_id, person_id))
    return person.name if person else person_id


# -- matching: directory and partnerships ----------------------------------------------------
def on_program_configured(ctx: HandlerContext, event: ProgramConfigured) -> None:
    ctx.session.info.get(_POLICIES, {}).pop(event.program_id, None)
    row = ctx.session.get(ProgramRow, event.program_id)
    if row is None:
        row = ProgramRow(program_id=event.program_id, name=event.name,
                         policy=event.policy.model_dump_json(), revision=event.revision)
    elif event.revision >= row.revision:
        row.name, row.policy, row.revision = event.name, event.policy.model_dump_json(), event.revision
    ctx.session.add(row)


def _enrol(ctx: HandlerContext, event: MentorEnrolled | MenteeEnrolled | MetamentorEnrolled, role: str) -> None:
    row = ctx.session.get(PersonRow, (event.program_id, event.person_id))
    if row is None:
        row = PersonRow(program_id=event.program_id, person_id=event.person_id, role=role,
                        name=event.name, email=event.email)
    else:
        row.role, row.name, row.email, row.active = role, event.name, event.email, True
    ctx.session.add(row)


def on_mentor_enrolled(ctx: HandlerContext, event: MentorEnrolled) -> None:
    _enrol(ctx, event, "mentor")


def on_mentee_enrolled(ctx: HandlerContext, event: MenteeEnrolled) -> None:
    _enrol(ctx, event, "mentee")


def on_metamentor_enrolled(ctx: HandlerContext, event: MetamentorEnrolled) -> None:
    _enrol(ctx, event, "metamentor")


def on_mentor_profile_updated(ctx: HandlerContext, event: MentorProfileUpdated) -> None:
    row = ctx.session.get(PersonRow, (event.program_id, event.person_id))
    if row is None:
        return  # the enrolment (which carries name and email) will bring them
    if event.name is not None:
        row.name = event.name
    if event.email is not None:
        row.email = event.email
    ctx.session.add(row)


def on_mentor_paused(ctx: HandlerContext, event: MentorPaused) -> None:
    row = ctx.session.get(PersonRow, (event.program_id, event.person_id))
    if row is not None:
        row.paused = True
        row.active = not event.leaving
        ctx.session.add(row)
    partnerships = ctx.session.exec(
        select(PartnershipRow).where(col(PartnershipRow.partnership_id).in_(event.partnership_ids))
    ).all()
    mentee_of = {p.partnership_id: p.mentee_id for p in partnerships}
    for p in partnerships:
        note_change(ctx, p.partnership_id, "mentor is leaving the program" if event.leaving else "mentor paused")
    send(ctx, rules.on_mentor_paused(event, mentee_of))


def on_mentor_resumed(ctx: HandlerContext, event: MentorResumed) -> None:
    row = ctx.session.get(PersonRow, (event.program_id, event.person_id))
    if row is not None:
        row.paused, row.active = False, True
        ctx.session.add(row)


def on_mentee_matched(ctx: HandlerContext, event: MenteeMatched) -> None:
    if ctx.session.get(PartnershipRow, event.partnership_id) is None:
        ctx.session.add(PartnershipRow(
            partnership_id=event.partnership_id, program_id=event.program_id, mentor_id=event.mentor_id,
            mentee_id=event.mentee_id, started_at=event.started_at,
        ))
    upsert_activity(ctx.session, ProgramActivityRow(
        subject_id=f"match:{event.partnership_id}", program_id=event.program_id,
        month=month_of(ctx.session, event.program_id, event.started_at), kind="match",
    ))
    note_change(ctx, event.partnership_id, "new partnership" + (" (rematch)" if event.previous_partnership_id else ""))
    send(ctx, rules.on_matched(event, policy_of(ctx.session, event.program_id)))


def on_metamentor_assigned(ctx: HandlerContext, event: MetamentorAssigned) -> None:
    row = ctx.session.get(PartnershipRow, event.partnership_id)
    if row is None:
        # The match is on the same key (partnership id), so it was applied before; a missing row
        # means the match predates this projection: keep what we know.
        row = PartnershipRow(partnership_id=event.partnership_id, program_id=event.program_id,
                             mentor_id="", mentee_id="", started_at=ctx.envelope.occurred_at)
    row.metamentor_id = event.metamentor_id
    ctx.session.add(row)
    note_change(ctx, event.partnership_id, "assigned to you")


def on_partnership_ended(ctx: HandlerContext, event: PartnershipEnded) -> None:
    row = ctx.session.get(PartnershipRow, event.partnership_id)
    if row is not None:
        row.ended_at, row.end_reason = event.ended_at, event.reason
        ctx.session.add(row)
    note_change(ctx, event.partnership_id, f"ended ({event.reason})" if event.reason else "ended")
    send(ctx, rules.on_partnership_ended(event))


def on_rematch_requested(ctx: HandlerContext, event: RematchRequested) -> None:
    note_change(ctx, event.partnership_id, "mentee asked for a new mentor")
    send(ctx, rules.on_rematch_requested(event))


def on_incident_reported(ctx: HandlerContext, event: IncidentReported) -> None:
    note_change(ctx, event.partnership_id, "an incident was reported to staff")
    partnership = ctx.session.get(PartnershipRow, event.partnership_id)
    partners = {partnership.mentor_id, partnership.mentee_id} if partnership else set()
    known = ctx.session.get(PersonRow, (event.program_id, event.reported_by)) is not None
    if event.reported_by in partners or known:
        send(ctx, rules.on_incident_reported(event))
    # else: staff filed it for someone; staff need no acknowledgement from the system


# -- activity ------------------------------------------------------------------------------
def on_meeting_logged(ctx: HandlerContext, event: MeetingLogged) -> None:
    on_meetings_logged([(ctx, event)])


def on_meetings_logged(batch: Sequence[tuple[HandlerContext, MeetingLogged]]) -> None:
    """A run of MeetingLogged: each a meeting in its program's month and a change of its
    partnership, written with one statement per table."""
    session = batch[0][0].session
    activities, changes = [], []
    for ctx, event in batch:
        day = local_date(event.started_at, policy_of(session, event.program_id).timezone)
        activities.append({"subject_id": f"meeting:{event.meeting_id}", "program_id": event.program_id,
                           "month": f"{day.year:04d}-{day.month:02d}", "kind": "meeting",
                           "minutes": event.duration_minutes, "detail": ""})
        kind = "intentional meeting" if event.intentional else "meeting"
        changes.append(_change(ctx, event.partnership_id,
                               f"{kind} on {day.isoformat()} ({event.duration_minutes} min)"))
    rows.upsert(session, _ACTIVITY, activities, "subject_id", _ACTIVITY_FIELDS)
    rows.insert_absent(session, _CHANGES, changes, "event_id")


def on_meeting_corrected(ctx: HandlerContext, event: MeetingCorrected) -> None:
    subject = f"meeting:{event.meeting_id}"
    if event.voided or event.duration_minutes == 0:
        ctx.session.execute(delete(_ACTIVITY).where(_ACTIVITY.c.subject_id == subject))
        return
    upsert_activity(ctx.session, ProgramActivityRow(
        subject_id=subject, program_id=event.program_id,
        month=month_of(ctx.session, event.program_id, event.started_at), kind="meeting",
        minutes=event.duration_minutes,
    ))


def on_activity_recorded(ctx: HandlerContext, event: ActivityRecorded) -> None:
    month = month_of(ctx.session, event.program_id, event.occurred_on)
    if event.kind == "pip_stage" and event.stage in PIP_STAGES and event.details.get("pip_id"):
        pip_id = event.details["pip_id"]
        upsert_activity(ctx.session, ProgramActivityRow(
            subject_id=f"pipstage:{pip_id}:{event.stage}", program_id=event.program_id, month=month,
            kind="pip_stage", detail=pip_id,
        ))
        note_change(ctx, event.partnership_id, f"PIP {event.stage} stage done")
    elif event.kind == "book_study":
        upsert_activity(ctx.session, ProgramActivityRow(
            subject_id=f"book:{event.activity_id}", program_id=event.program_id, month=month, kind="pip",
            detail=event.details.get("title", ""),
        ))
        note_change(ctx, event.partnership_id, "book study done")
    elif event.kind == "recognition":
        nominee = event.details.get("nominee_id", "")
        upsert_activity(ctx.session, ProgramActivityRow(
            subject_id=f"recognition:{event.activity_id}", program_id=event.program_id, month=month,
            kind="recognition", detail=f"{nominee}\t{event.details.get('reason', '')}",
        ))
    else:
        note_change(ctx, event.partnership_id, f"{event.kind.replace('_', ' ')} recorded")


def on_time_entry(ctx: HandlerContext, event: TimeEntryRecorded | TimeEntryAmended) -> None:
    on_time_entries([(ctx, event)])


def on_time_entries(batch: Sequence[tuple[HandlerContext, TimeEntryRecorded | TimeEntryAmended]]) -> None:
    """Time entries as they are now (an amendment replaces kind, date and minutes)."""
    rows.upsert(batch[0][0].session, _ENTRIES, [
        {"entry_id": e.entry_id, "mentor_id": e.mentor_id, "kind": str(e.kind), "work_date": e.work_date,
         "minutes": e.minutes} for _, e in batch
    ], "entry_id", ("kind", "work_date", "minutes"))


def on_partnership_at_risk(ctx: HandlerContext, event: PartnershipAtRisk) -> None:
    row = ctx.session.get(PartnershipRow, event.partnership_id)
    mentee_id = row.mentee_id if row is not None and row.mentee_id else None
    if row is not None:
        row.status = event.status
        ctx.session.add(row)
    words = rules.STATUS_WORDS[event.status]
    was = f" (was {rules.STATUS_WORDS[event.previous_status]})" if event.previous_status else ""
    why = f": {'; '.join(event.reasons)}" if event.reasons else ""
    note_change(ctx, event.partnership_id, f"now {words}{was}{why}")
    send(ctx, rules.on_partnership_at_risk(event, mentee_id, policy_of(ctx.session, event.program_id)))


def on_survey_invited(ctx: HandlerContext, event: SurveyInvited) -> None:
    send(ctx, rules.on_survey_invited(event))


def on_feedback_reviewed(ctx: HandlerContext, event: FeedbackReviewed) -> None:
    send(ctx, rules.on_feedback_reviewed(event))


# -- payments ------------------------------------------------------------------------------
def on_clarification_requested(ctx: HandlerContext, event: ClarificationRequested) -> None:
    found = ctx.session.execute(
        core_select(_ENTRIES.c.entry_id, _ENTRIES.c.kind, _ENTRIES.c.work_date, _ENTRIES.c.minutes)
        .where(_ENTRIES.c.entry_id.in_(event.entry_ids))
    ).all()
    entries = {
        r.entry_id: {"entry_id": r.entry_id, "kind": r.kind, "work_date": r.work_date.isoformat(),
                     "minutes": r.minutes}
        for r in found
    }
    send(ctx, rules.on_clarification_requested(event, entries))


def on_payment_approved(ctx: HandlerContext, event: PaymentApproved) -> None:
    send(ctx, rules.on_payment_approved(event))


def on_payout_issued(ctx: HandlerContext, event: PayoutIssued) -> None:
    send(ctx, rules.on_payout_issued(event))


def on_reimbursement(ctx: HandlerContext, event: ReimbursementApproved | ReimbursementRefused) -> None:
    send(ctx, rules.on_reimbursement(event))
