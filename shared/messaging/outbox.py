"""Transactional outbox: an event is stored in the same transaction as the change that causes it."""

from __future__ import annotations

import json

from sqlmodel import Session

from shared.clock import Clock
from shared.contracts.base import Event
from shared.contracts.envelope import Cause, Envelope, new_envelope
from shared.messaging.tables import OutboxRecord


class Outbox:
    def __init__(self, producer: str, clock: Clock) -> None:
        self.producer = producer
        self.clock = clock

    def add(self, session: Session, event: Event, cause: Cause, *, topic: str | None = None) -> Envelope:
        """Stage `event` in `session`; it is published only if the transaction commits.

        `topic` overrides the event's catalog topic (tests and benchmarks use their own).
        """
        envelope = new_envelope(
            event_type=event.event_type,
            event_version=event.event_version,
            key=event.aggregate_key(),
            producer=self.producer,
            clock=self.clock,
            cause=cause,
        )
        session.add(
            OutboxRecord(
                event_id=str(envelope.event_id),
                topic=topic or event.topic,
                key=envelope.key,
                event_type=envelope.event_type,
                event_version=envelope.event_version,
                headers=json.dumps([[k, v.decode()] for k, v in envelope.to_headers()]),
                payload=event.to_json(),
                created_at=envelope.occurred_at,
            )
        )
        return envelope
