"""The program health figures activity owns, read from its own store in a few set queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from services.activity.adapters.tables import ActivityRow, MeetingViewRow, PartnershipRow, as_utc
from services.activity.domain import health
from services.activity.domain.activities import ActivityKind, PipStage
from services.activity.service_layer.surveys import survey_results
from services.activity.service_layer.unit import require_policy


def program_health(s: Session, program_id: str) -> dict[str, Any]:
    policy = require_policy(s, program_id)
    partnerships: Sequence[Any] = s.exec(select(  # type: ignore[call-overload]
        PartnershipRow.partnership_id, PartnershipRow.mentee_id, PartnershipRow.metamentor_id, PartnershipRow.status,
        PartnershipRow.started_at, PartnershipRow.ended_at)
                          .where(PartnershipRow.program_id == program_id, col(PartnershipRow.matched))
                          .order_by(col(PartnershipRow.partnership_id))).all()
    meetings: Sequence[Any] = s.exec(select(MeetingViewRow.started_at, MeetingViewRow.minutes,
                             MeetingViewRow.intentional)
                      .where(MeetingViewRow.program_id == program_id, col(MeetingViewRow.voided).is_(False))).all()
    first = dict(s.exec(select(MeetingViewRow.partnership_id, func.min(MeetingViewRow.started_at))
                        .where(MeetingViewRow.program_id == program_id, col(MeetingViewRow.voided).is_(False))
                        .group_by(col(MeetingViewRow.partnership_id))).all())
    completions: Sequence[Any] = s.exec(select(  # type: ignore[call-overload]
        ActivityRow.occurred_on, ActivityRow.pip_id, ActivityRow.activity_id)
                         .where(ActivityRow.program_id == program_id, ActivityRow.kind == ActivityKind.PIP_STAGE.value,
                                ActivityRow.stage == PipStage.APPLICATION.value)).all()
    current = [p for p in partnerships if p.ended_at is None]
    return {
        "program_id": program_id,
        "timezone": policy.timezone,
        "partnerships": [{"partnership_id": p.partnership_id, "mentee_id": p.mentee_id,
                          "metamentor_id": p.metamentor_id, "status": p.status} for p in current],
        "status_by_metamentor": health.status_counts((p.metamentor_id, p.status) for p in current),
        "meetings_per_month": health.meetings_per_month(
            (health.MeetingFact(as_utc(m.started_at), m.minutes, m.intentional) for m in meetings), policy.timezone),
        "pips_completed_per_semester": health.pips_completed_per_semester(
            ((c.occurred_on, c.pip_id or c.activity_id) for c in completions), policy.school_year),
        "time_to_first_meeting": health.time_to_first_meeting(
            (as_utc(p.started_at), as_utc(first[p.partnership_id]) if p.partnership_id in first else None)
            for p in partnerships if p.started_at is not None),
        "surveys": survey_results(s, program_id)["surveys"],
    }
