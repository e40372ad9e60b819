"""Test helpers: a real activity store with the service's handlers, driven without a broker."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from sqlmodel import Session, col, select

from services.activity.adapters.migrations import MIGRATIONS
from services.activity.entrypoints.consumers import register_handlers
from shared.clock import ManualClock
from shared.contracts.base import Event
from shared.contracts.envelope import Cause, Envelope, new_envelope
from shared.contracts.matching import MenteeMatched, ProgramConfigured
from shared.contracts.program import CadencePolicy, PayPolicy, ProgramPolicy
from shared.db import Database
from shared.messaging import MESSAGING_TABLES, EventConsumer, HandlerContext, Outbox, OutboxRecord
from shared.migrations import Migration, create_tables, migrate
from shared.topics import ACTIVITY

PROGRAM = "prog-1"


def program_event(program_id: str = PROGRAM, tz: str = "America/Denver", grace_days: int = 3,
                  revision: int = 1, **cadence: Any) -> ProgramConfigured:
    policy = ProgramPolicy(timezone=tz, cadence=CadencePolicy(**cadence),
                           pay=PayPolicy(month_close_grace_days=grace_days))
    return ProgramConfigured(program_id=program_id, name="MentorMT", revision=revision, policy=policy)


def matched(partnership_id: str, mentor_id: str, started_at: datetime, program_id: str = PROGRAM,
            mentee_id: str | None = None) -> MenteeMatched:
    return MenteeMatched(partnership_id=partnership_id, program_id=program_id, mentor_id=mentor_id,
                         mentee_id=mentee_id or f"mentee-of-{partnership_id}", started_at=started_at)


@dataclass
class StoreUnit:
    session: Session
    outbox: Outbox
    cause: Cause = field(default_factory=Cause.new)

    def emit(self, event: Event) -> Envelope:
        return self.outbox.add(self.session, event, self.cause)


@dataclass
class Store:
    db: Database
    clock: ManualClock
    outbox: Outbox
    handlers: EventConsumer

    @contextmanager
    def unit(self) -> Iterator[StoreUnit]:
        with self.db.session() as s:
            yield StoreUnit(s, self.outbox)

    def apply(self, *events: Event) -> None:
        """Apply events as the consumer would (handler in a transaction), without a broker."""
        for ev in events:
            env = new_envelope(event_type=ev.event_type, event_version=ev.event_version, key=ev.aggregate_key(),
                               producer="test", clock=self.clock, cause=Cause.new())
            with self.db.session() as s:
                self.handlers.handlers[type(ev)](HandlerContext(s, env, self.clock, self.outbox), ev)

    def emitted(self, event_type: str) -> list[dict[str, Any]]:
        with self.db.session() as s:
            rows = s.exec(select(OutboxRecord).where(OutboxRecord.event_type == event_type)
                          .order_by(col(OutboxRecord.id))).all()
            return [json.loads(r.payload) for r in rows]


def open_store(url: str, start: datetime | None = None) -> Store:
    db = Database(url)
    migrate(db, "activity.messaging", [Migration(1, "messaging", create_tables(*MESSAGING_TABLES))])
    migrate(db, "activity", MIGRATIONS)
    clock = ManualClock(start or datetime(2026, 11, 20, 18, 0, tzinfo=UTC))
    outbox = Outbox("activity", clock)
    consumer = register_handlers(EventConsumer("activity", db, outbox, clock, None))  # type: ignore[arg-type]
    return Store(db, clock, outbox, consumer)


def as_records(st: Store, events: Sequence[Event]) -> tuple[list[ConsumerRecord[bytes, bytes]], list[str]]:
    """The events as the consumer reads them from the topic, and their event ids."""
    out, ids = [], []
    for i, ev in enumerate(events):
        env = new_envelope(event_type=ev.event_type, event_version=ev.event_version, key=ev.aggregate_key(),
                           producer="activity", clock=st.clock, cause=Cause.new())
        value = ev.to_json()
        out.append(ConsumerRecord(ACTIVITY, 0, i, 0, 0, env.key.encode(), value, None, len(env.key), len(value),
                                  env.to_headers()))
        ids.append(str(env.event_id))
    return out, ids
