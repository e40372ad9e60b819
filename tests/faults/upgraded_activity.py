"""The activity service as a later release would ship it: it also reads MeetingLogged version 2.

The poison test publishes a MeetingLogged v2 before any consumer knows that version (it is
dead-lettered as unknown_version), then "deploys" this build and replays the dead letter:
`uvicorn --factory tests.faults.upgraded_activity:create_app`.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.activity.entrypoints import app as activity_app
from services.activity.service_layer.activity_events import on_meeting_logged
from shared.clock import Clock
from shared.contracts.activity import MeetingLogged
from shared.contracts.base import event
from shared.messaging import EventConsumer
from shared.service import Service
from shared.settings import ServiceSettings
from shared.topics import ACTIVITY


@event("MeetingLogged", topic=ACTIVITY, key="partnership_id", version=2)
class MeetingLoggedV2(MeetingLogged):
    """Version 2 adds where the meeting took place (an optional field would not need a version;
    this stands for any breaking change a producer shipped first)."""

    location: str = ""


def create_app(settings: ServiceSettings | None = None, clock: Clock | None = None) -> FastAPI:
    service: Service = activity_app.build_service(settings, clock)
    consumer: EventConsumer = service.consumers[0][0]
    consumer.handles(MeetingLoggedV2)(on_meeting_logged)
    return service.http_app(activity_app.build_router(service), title="activity service (v2 reader)")
