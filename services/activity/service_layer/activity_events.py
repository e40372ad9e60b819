"""The service's own events, read back from its topic to keep the compliance view.

The meeting view is built only from MeetingLogged / MeetingCorrected (self-contained events), so
it can be rebuilt by replaying the topic; after each change the partnership's compliance is
re-evaluated and a status change emits PartnershipAtRisk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from services.activity.adapters.tables import ActivityRow, MeetingViewRow
from services.activity.domain.activities import ActivityKind
from services.activity.domain.cadence import MeetingFact
from services.activity.service_layer.compliance import forget_summaries, refresh, refresh_many
from services.activity.service_layer.unit import Unit, insert_absent
from shared.clock import ensure_utc
from shared.contracts.activity import ActivityRecorded, MeetingCorrected, MeetingLogged
from shared.messaging import HandlerContext


def on_meeting_logged(ctx: HandlerContext, event: MeetingLogged) -> None:
    on_meetings_logged([(ctx, event)])


def on_meetings_logged(batch: Sequence[tuple[HandlerContext, MeetingLogged]]) -> None:
    """A run of MeetingLogged from one consumer batch: the meetings into the view with one
    statement, then each partnership that got a new meeting re-evaluated once, on all of them
    (its PartnershipAtRisk, if its status changed, is caused by its last meeting of the run)."""
    if not batch:
        return
    session = batch[0][0].session
    rows = [{"meeting_id": e.meeting_id, "partnership_id": e.partnership_id, "program_id": e.program_id,
             "started_at": ensure_utc(e.started_at), "minutes": e.duration_minutes,
             "intentional": e.intentional, "voided": False} for _, e in batch]
    new = insert_absent(session, MeetingViewRow.__table__, rows, "meeting_id")  # type: ignore[attr-defined]
    causes: dict[str, Unit] = {}
    added: dict[str, list[MeetingFact]] = {}
    for ctx, event in batch:
        if event.meeting_id in new:  # a meeting already in the view (a replay) changes nothing
            new.discard(event.meeting_id)  # the same meeting twice in the batch is inserted once
            causes[event.partnership_id] = ctx
            added.setdefault(event.partnership_id, []).append(
                MeetingFact(ensure_utc(event.started_at), event.duration_minutes, event.intentional))
    if causes:
        refresh_many(session, causes, batch[-1][0].clock.now(), added)


def on_meeting_corrected(ctx: HandlerContext, event: MeetingCorrected) -> None:
    row = ctx.session.get(MeetingViewRow, event.meeting_id) or MeetingViewRow(
        meeting_id=event.meeting_id, partnership_id=event.partnership_id, program_id=event.program_id,
        started_at=ensure_utc(event.started_at), minutes=0, intentional=False,
    )
    row.started_at, row.intentional, row.voided = ensure_utc(event.started_at), event.intentional, event.voided
    row.minutes = 0 if event.voided else event.duration_minutes
    ctx.session.add(row)
    ctx.session.flush()
    forget_summaries(ctx.session, [event.partnership_id])
    refresh(ctx, event.partnership_id, ctx.clock.now())


def on_activity_recorded(ctx: HandlerContext, event: ActivityRecorded) -> None:
    if ctx.session.get(ActivityRow, event.activity_id) is None:  # replayed into a store that never saw the request
        ctx.session.add(ActivityRow(
            activity_id=event.activity_id, partnership_id=event.partnership_id, program_id=event.program_id,
            kind=event.kind, stage=event.stage,
            pip_id=event.details.get("pip_id") if event.kind == ActivityKind.PIP_STAGE else None,
            occurred_on=event.occurred_on, details=json.dumps(event.details), recorded_at=ctx.envelope.occurred_at,
        ))
        ctx.session.flush()
    refresh(ctx, event.partnership_id, ctx.clock.now())
