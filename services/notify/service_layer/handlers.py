"""Event handlers: keep the notify projections and record the emails events cause.

Every handler runs in the consumer's transaction (shared.messaging.EventConsumer): the projection
change, the pending messages and the inbox row commit together. Handlers are also idempotent by
state (upserts, ON CONFLICT DO NOTHING), so replaying a topic from the start changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

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
def policy_of(session: Session, program_id: str) -> ProgramPolicy:
    program = session.get(ProgramRow, program_id)
    return ProgramPolicy.model_validate_json(program.policy) if program else ProgramPolicy()


def month_of(session: Session, program_id: str, instant: datetime | date) -> str:
    if isinstance(instant, datetime):
        instant = local_date(instant, policy_of(session, program_id).timezone)
    return f"{instant.year:04d}-{instant.month:02d}"


def send(ctx: HandlerContext, intents: Iterable[MessageIntent]) -> None:
    message_log.enqueue(ctx.session, intents, str(ctx.envelope.event_id), ctx.clock.now())


def note_change(ctx: HandlerContext, partnership_id: str, description: str) -> None:
    event_id = str(ctx.envelope.event_id)
    if ctx.session.get(PartnershipChangeRow, event_id) is None:
        ctx.session.add(PartnershipChangeRow(
            event_id=event_id, partnership_id=partnership_id,
            at_ms=message_log.epoch_ms(ctx.envelope.occurred_at), description=description,
        ))


def upsert_activity(session: Session, row: ProgramActivityRow) -> None:
    existing = session.get(ProgramActivityRow, row.subject_id)
    if existing is None:
        session.add(row)
    else:
        existing.program_id, existing.month, existing.kind = row.program_id, row.month, row.kind
        existing.minutes, existing.detail = row.minutes, row.detail
        session.add(existing)


def name_of(session: Session, program_id: str, person_id: str) -> str:
    person = session.get(PersonRow, (program_id, person_id))
    return person.name if person else person_id


# -- matching: directory and partnerships ----------------------------------------------------
def on_program_configured(ctx: HandlerContext, event: ProgramConfigured) -> None:
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
    upsert_activity(ctx.session, ProgramActivityRow(
        subject_id=f"meeting:{event.meeting_id}", program_id=event.program_id,
        month=month_of(ctx.session, event.program_id, event.started_at), kind="meeting",
        minutes=event.duration_minutes,
    ))
    day = local_date(event.started_at, policy_of(ctx.session, event.program_id).timezone)
    kind = "intentional meeting" if event.intentional else "meeting"
    note_change(ctx, event.partnership_id, f"{kind} on {day.isoformat()} ({event.duration_minutes} min)")


def on_meeting_corrected(ctx: HandlerContext, event: MeetingCorrected) -> None:
    subject = f"meeting:{event.meeting_id}"
    if event.voided or event.duration_minutes == 0:
        existing = ctx.session.get(ProgramActivityRow, subject)
        if existing is not None:
            ctx.session.delete(existing)
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
    row = ctx.session.get(TimeEntryRow, event.entry_id)
    if row is None:
        row = TimeEntryRow(entry_id=event.entry_id, mentor_id=event.mentor_id, kind=str(event.kind),
                           work_date=event.work_date, minutes=event.minutes)
    else:
        row.kind, row.work_date, row.minutes = str(event.kind), event.work_date, event.minutes
    ctx.session.add(row)


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
    rows = ctx.session.exec(select(TimeEntryRow).where(col(TimeEntryRow.entry_id).in_(event.entry_ids))).all()
    entries = {
        r.entry_id: {"entry_id": r.entry_id, "kind": r.kind, "work_date": r.work_date.isoformat(),
                     "minutes": r.minutes}
        for r in rows
    }
    send(ctx, rules.on_clarification_requested(event, entries))


def on_payment_approved(ctx: HandlerContext, event: PaymentApproved) -> None:
    send(ctx, rules.on_payment_approved(event))


def on_payout_issued(ctx: HandlerContext, event: PayoutIssued) -> None:
    send(ctx, rules.on_payout_issued(event))


def on_reimbursement(ctx: HandlerContext, event: ReimbursementApproved | ReimbursementRefused) -> None:
    send(ctx, rules.on_reimbursement(event))
