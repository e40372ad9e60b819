"""The service's own events, read back from its topic to keep the compliance view.

The meeting view is built only from MeetingLogged / MeetingCorrected (self-contained events), so
it can be rebuilt by replaying the topic; after each change the partnership's compliance is
re-evaluated and a status change emits PartnershipAtRisk.
"""

from __future__ import annotations

import json

from services.activity.adapters.tables import ActivityRow, MeetingViewRow
from services.activity.domain.activities import ActivityKind
from services.activity.service_layer.compliance import refresh
from services.activity.service_layer.unit import insert_if_absent
from shared.clock import ensure_utc
from shared.contracts.activity import ActivityRecorded, MeetingCorrected, MeetingLogged
from shared.messaging import HandlerContext


def on_meeting_logged(ctx: HandlerContext, event: MeetingLogged) -> None:
    values = {"meeting_id": event.meeting_id, "partnership_id": event.partnership_id,
              "program_id": event.program_id, "started_at": ensure_utc(event.started_at),
              "minutes": event.duration_minutes, "intentional": event.intentional, "voided": False}
    if insert_if_absent(ctx.session, MeetingViewRow.__table__, values, "meeting_id"):  # type: ignore[attr-defined]
        refresh(ctx, event.partnership_id, ctx.clock.now())


def on_meeting_corrected(ctx: HandlerContext, event: MeetingCorrected) -> None:
    row = ctx.session.get(MeetingViewRow, event.meeting_id) or MeetingViewRow(
        meeting_id=event.meeting_id, partnership_id=event.partnership_id, program_id=event.program_id,
        started_at=ensure_utc(event.started_at), minutes=0, intentional=False,
    )
    row.started_at, row.intentional, row.voided = ensure_utc(event.started_at), event.intentional, event.voided
    row.minutes = 0 if event.voided else event.duration_minutes
    ctx.session.add(row)
    ctx.session.flush()
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
