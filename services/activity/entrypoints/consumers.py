"""Wires the activity service's handlers to its consumer (group "activity"): matching's events
for the projection, and its own events for the compliance view."""

from __future__ import annotations

from services.activity.service_layer import activity_events, projection, surveys
from shared.contracts.activity import ActivityRecorded, MeetingCorrected, MeetingLogged
from shared.contracts.matching import (
    MenteeMatched,
    MentorEnrolled,
    MentorPaused,
    MentorResumed,
    MetamentorAssigned,
    PartnershipEnded,
    ProgramConfigured,
)
from shared.messaging import EventConsumer
from shared.service import Service
from shared.topics import ACTIVITY, MATCHING


def register_handlers(consumer: EventConsumer) -> EventConsumer:
    consumer.handles(ProgramConfigured)(projection.on_program_configured)
    consumer.handles(MenteeMatched)(projection.on_mentee_matched)
    consumer.handles(PartnershipEnded)(projection.on_partnership_ended)
    consumer.handles(MetamentorAssigned)(projection.on_metamentor_assigned)
    consumer.handles(MentorPaused)(projection.on_mentor_paused)
    consumer.handles(MentorResumed)(projection.on_mentor_resumed)
    consumer.handles_batch(MeetingLogged)(activity_events.on_meetings_logged)
    consumer.handles(MeetingCorrected)(activity_events.on_meeting_corrected)
    consumer.handles(ActivityRecorded)(activity_events.on_activity_recorded)
    consumer.handles(MentorEnrolled)(surveys.on_mentor_enrolled)
    return consumer


def wire(service: Service) -> EventConsumer:
    return register_handlers(service.consumer(MATCHING, ACTIVITY))
