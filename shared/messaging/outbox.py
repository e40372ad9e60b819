"""Transactional outbox: an event is stored in the same transaction as the change that causes it.

Rows are staged on the session and written with one executemany just before the transaction
commits (a before_commit hook), so a handler emitting thousands of events pays one statement, not
thousands of ORM objects. An event emitted by a later before_commit hook is written at once, in
the same transaction. A rolled-back transaction drops its staged rows with it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.orm import Session as OrmSession
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
        row = {
            "event_id": str(envelope.event_id),
            "topic": topic or event.topic,
            "key": envelope.key,
            "event_type": envelope.event_type,
            "event_version": envelope.event_version,
            "headers": json.dumps([[k, v.decode()] for k, v in envelope.to_headers()]),
            "payload": event.to_json(),
            "created_at": envelope.occurred_at,
            "published_at": None,
            "attempts": 0,
            "last_error": None,
        }
        if session.info.get(_COMMITTING):
            # Emitted by another before_commit hook after ours ran: write it now, still in the
            # transaction, so it cannot be left behind.
            session.execute(insert(OutboxRecord.__table__), [row])  # type: ignore[attr-defined]
        else:
            session.info.setdefault(_STAGED, []).append(row)
        return envelope


_STAGED = "outbox_staged_rows"
_COMMITTING = "outbox_committing"


@sa_event.listens_for(OrmSession, "before_commit")
def _write_staged(session: OrmSession) -> None:
    session.info[_COMMITTING] = True
    rows = session.info.pop(_STAGED, None)
    if rows:
        session.execute(insert(OutboxRecord.__table__), rows)  # type: ignore[attr-defined]


@sa_event.listens_for(OrmSession, "after_commit")
def _committed(session: OrmSession) -> None:
    session.info.pop(_COMMITTING, None)


@sa_event.listens_for(OrmSession, "after_soft_rollback")
def _drop_staged(session: OrmSession, _previous: Any) -> None:
    session.info.pop(_STAGED, None)
    session.info.pop(_COMMITTING, None)
