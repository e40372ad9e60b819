"""Wiring: which events the payments consumer group applies, and with which handler."""

from __future__ import annotations

from services.payments.service_layer import statements
from shared.contracts.activity import MonthClosed, TimeEntryAmended
from shared.contracts.matching import MenteeMatched, MentorEnrolled, MentorProfileUpdated, ProgramConfigured
from shared.messaging import HandlerContext
from shared.service import Service
from shared.topics import ACTIVITY, MATCHING


def register_consumers(service: Service) -> None:
    consumer = service.consumer(MATCHING, ACTIVITY)

    @consumer.handles(ProgramConfigured)
    def on_program(ctx: HandlerContext, event: ProgramConfigured) -> None:
        statements.program_configured(ctx.session, event)

    @consumer.handles(MentorEnrolled)
    def on_mentor(ctx: HandlerContext, event: MentorEnrolled) -> None:
        statements.mentor_enrolled(ctx.session, event)

    @consumer.handles(MentorProfileUpdated)
    def on_profile(ctx: HandlerContext, event: MentorProfileUpdated) -> None:
        statements.mentor_profile_updated(ctx.session, event)

    @consumer.handles(MenteeMatched)
    def on_matched(ctx: HandlerContext, event: MenteeMatched) -> None:
        statements.mentee_matched(ctx.session, event)

    @consumer.handles(MonthClosed)
    def on_month_closed(ctx: HandlerContext, event: MonthClosed) -> None:
        statements.month_closed(ctx.session, ctx.emit, ctx.clock.now(), event)

    @consumer.handles(TimeEntryAmended)
    def on_amended(ctx: HandlerContext, event: TimeEntryAmended) -> None:
        statements.time_entry_amended(ctx.session, ctx.emit, ctx.clock.now(), event)
