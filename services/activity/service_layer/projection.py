"""Matching's events, projected into the activity store.

Events from different topics (and different keys of one topic) arrive in any order, so every
handler is self-contained: it creates what it needs (a placeholder partnership when it ends
before we saw it matched) and ignores what is older than what it already has. None of them has
to wait for another event, so none raises TransientError.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from services.activity.adapters.tables import MentorRow, PartnershipRow, ProgramRow
from shared.clock import ensure_utc
from shared.contracts.matching import (
    MenteeMatched,
    MentorPaused,
    MentorResumed,
    MetamentorAssigned,
    PartnershipEnded,
    ProgramConfigured,
)
from shared.messaging import HandlerContext


def on_program_configured(ctx: HandlerContext, event: ProgramConfigured) -> None:
    """A new revision of the program's policy. When its rules change, every partnership of the
    program is left unchecked for today, so the compliance sweep (every scheduler interval)
    judges them again under the new rules instead of at the next meeting or tomorrow."""
    row = ctx.session.get(ProgramRow, event.program_id)
    policy = event.policy.model_dump_json()
    if row is None:
        ctx.session.add(ProgramRow(program_id=event.program_id, name=event.name, revision=event.revision,
                                   policy=policy))
    elif event.revision >= row.revision:  # an older revision arriving late changes nothing
        changed = policy != row.policy
        row.name, row.revision, row.policy = event.name, event.revision, policy
        ctx.session.add(row)
        if changed:
            ctx.session.execute(update(PartnershipRow).where(col(PartnershipRow.program_id) == event.program_id)
                                .values(status_checked_on=None).execution_options(synchronize_session=False))


def _partnership(session: Session, partnership_id: str, program_id: str, mentor_id: str) -> PartnershipRow:
    row = session.get(PartnershipRow, partnership_id)
    if row is None:
        row = PartnershipRow(partnership_id=partnership_id, program_id=program_id, mentor_id=mentor_id)
    return row


def on_mentee_matched(ctx: HandlerContext, event: MenteeMatched) -> None:
    row = _partnership(ctx.session, event.partnership_id, event.program_id, event.mentor_id)
    row.program_id, row.mentor_id, row.mentee_id = event.program_id, event.mentor_id, event.mentee_id
    row.started_at = ensure_utc(event.started_at)
    row.matched = True
    ctx.session.add(row)


def on_partnership_ended(ctx: HandlerContext, event: PartnershipEnded) -> None:
    row = _partnership(ctx.session, event.partnership_id, event.program_id, event.mentor_id)
    row.mentee_id = row.mentee_id or event.mentee_id
    row.ended_at = ensure_utc(event.ended_at)
    row.end_reason = event.reason
    ctx.session.add(row)


def on_metamentor_assigned(ctx: HandlerContext, event: MetamentorAssigned) -> None:
    row = ctx.session.get(PartnershipRow, event.partnership_id)
    if row is None:  # assigned before we saw the match: keep it on a placeholder
        row = PartnershipRow(partnership_id=event.partnership_id, program_id=event.program_id, mentor_id="")
    row.metamentor_id = event.metamentor_id
    ctx.session.add(row)


def on_mentor_paused(ctx: HandlerContext, event: MentorPaused) -> None:
    row = ctx.session.get(MentorRow, event.person_id) or MentorRow(mentor_id=event.person_id,
                                                                   program_id=event.program_id)
    row.paused_at = ctx.envelope.occurred_at
    row.leaving = event.leaving
    ctx.session.add(row)


def on_mentor_resumed(ctx: HandlerContext, event: MentorResumed) -> None:
    row = ctx.session.get(MentorRow, event.person_id) or MentorRow(mentor_id=event.person_id,
                                                                   program_id=event.program_id)
    row.paused_at = None
    row.leaving = False
    ctx.session.add(row)
