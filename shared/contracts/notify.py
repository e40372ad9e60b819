"""Events published by the notify service (topic notify.events)."""

from __future__ import annotations

from shared.contracts.base import Event, event
from shared.topics import NOTIFY


@event("EmailSent", topic=NOTIFY, key="message_id")
class EmailSent(Event):
    message_id: str
    program_id: str | None = None
    recipient: str
    kind: str
    subject: str
    cause_event_id: str | None = None
    recipient_id: str | None = None  # the person id (recipient is the address)
    attempts: int = 1


@event("EmailFailed", topic=NOTIFY, key="message_id")
class EmailFailed(Event):
    message_id: str
    program_id: str | None = None
    recipient: str
    kind: str
    error: str
    attempts: int
    recipient_id: str | None = None  # the person id (recipient is the address, when known)
    cause_event_id: str | None = None


@event("NewsletterPublished", topic=NOTIFY, key="newsletter_id")
class NewsletterPublished(Event):
    newsletter_id: str
    program_id: str
    month: str
    recipients: int
