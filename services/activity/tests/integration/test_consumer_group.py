"""Two instances of the activity consumer in one consumer group, against the real broker: a
rebalance in the middle of a stream of MeetingLogged (an instance joins, later one leaves), plus
redelivered copies, lose and duplicate nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from sqlalchemy import func
from sqlmodel import col, select

from services.activity.adapters.tables import MeetingViewRow
from services.activity.entrypoints.consumers import register_handlers
from services.activity.service_layer.activity_events import on_meeting_logged
from services.activity.tests.support import PROGRAM, Store, matched, open_store, program_event
from shared.contracts.activity import MeetingLogged
from shared.contracts.envelope import Cause, new_envelope
from shared.db import Database
from shared.messaging import (
    DeadLetters,
    EventConsumer,
    HandlerContext,
    InboxRecord,
    KafkaPublisher,
    RetryPolicy,
)
from shared.messaging.admin import ensure_topics
from shared.migrations import Migration, create_tables, migrate
from shared.topics import ACTIVITY, dlq_of
from tests.support import PingEffect, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka]
PARTNERSHIPS = 20
START = datetime(2026, 9, 1, 15, tzinfo=UTC)


def meeting(i: int) -> MeetingLogged:
    p = i % PARTNERSHIPS
    return MeetingLogged(
        meeting_id=f"meet-{i}", partnership_id=f"p{p}", program_id=PROGRAM, mentor_id=f"m{p}", mentee_id=f"e{p}",
        started_at=START + timedelta(hours=i), duration_minutes=30 + i % 60, mode="video", intentional=i % 3 != 0,
    )


def counting(ctx: HandlerContext, event: MeetingLogged) -> None:
    """The real handler, plus one row per application in the same transaction: a duplicate
    application would show as a second row for the event."""
    on_meeting_logged(ctx, event)
    ctx.session.add(PingEffect(event_id=str(ctx.envelope.event_id), key=event.partnership_id, seq=0))


async def test_rebalance_in_the_middle_of_a_stream_of_meetings_loses_and_duplicates_nothing(
    store_url: str, bootstrap: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    topic = prefix + ACTIVITY
    store: Store = open_store(store_url, datetime(2027, 1, 10, tzinfo=UTC))
    migrate(store.db, "activity-test", [Migration(1, "effects", create_tables(PingEffect))])
    store.apply(program_event(), *[matched(f"p{i}", f"m{i}", START) for i in range(PARTNERSHIPS)])
    publisher = KafkaPublisher(bootstrap)
    await publisher.start()
    group = f"activity-{uuid.uuid4().hex[:6]}"
    instances: list[tuple[EventConsumer, KafkaBroker, Database]] = []

    async def start_instance() -> EventConsumer:
        db = Database(store_url)  # each instance has its own engine, as separate processes would
        consumer = register_handlers(EventConsumer(
            group, db, store.outbox, store.clock, DeadLetters(publisher, store.clock),
            policy=RetryPolicy(attempts=3, backoff_s=0.05, backoff_max_s=0.2),
        ))
        consumer.handles(MeetingLogged)(counting)
        broker = KafkaBroker(bootstrap, logger=None)
        consumer.subscribe(broker, topic, max_records=25, batch_timeout_ms=50)
        await broker.start()
        instances.append((consumer, broker, db))
        return consumer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []

    async def publish(rng: range) -> None:
        for i in rng:
            ev = meeting(i)
            env = new_envelope(event_type=ev.event_type, event_version=ev.event_version, key=ev.aggregate_key(),
                               producer="activity", clock=store.clock, cause=Cause.new())
            record = (ev.to_json(), env.key.encode(), env.to_headers())
            sent.append(record)
            await producer.send(topic, record[0], key=record[1], headers=record[2])
            if i % 25 == 0:
                await asyncio.sleep(0.01)  # a stream, not one burst
        await producer.flush()

    def applied() -> int:
        with store.db.session() as s:
            return int(s.exec(select(func.count()).select_from(PingEffect)).one())

    try:
        a = await start_instance()
        await publish(range(0, 200))
        await wait_until(lambda: applied() >= 50, timeout_s=60)
        b = await start_instance()  # joins the group: partitions move mid-stream
        await publish(range(200, 400))
        await wait_until(lambda: applied() >= 300, timeout_s=60)
        broker_a = instances[0][1]
        stop_a = asyncio.create_task(broker_a.stop())  # leaves mid-stream: its partitions go to b
        await publish(range(400, 600))
        await stop_a
        for value, key, headers in sent[100:150]:  # redelivered copies (same event ids)
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
        await wait_until(lambda: applied() >= 600, timeout_s=90)
        await wait_until(lambda: b.stats.duplicates >= 50, timeout_s=60)
        await asyncio.sleep(1.0)  # anything still in flight would show now

        with store.db.session() as s:
            effects = Counter(s.exec(select(PingEffect.event_id)).all())
            views = s.exec(select(MeetingViewRow.partnership_id)).all()
            inbox = s.exec(select(func.count()).select_from(InboxRecord).where(InboxRecord.consumer == group)).one()
            ids = set(s.exec(select(MeetingViewRow.meeting_id).where(col(MeetingViewRow.voided).is_(False))).all())
        assert len(effects) == 600 and max(effects.values()) == 1, "every meeting applied exactly once"
        assert ids == {f"meet-{i}" for i in range(600)}
        assert Counter(views) == {f"p{i}": 600 // PARTNERSHIPS for i in range(PARTNERSHIPS)}
        assert inbox == 600
        assert a.stats.processed > 0 and b.stats.processed > 0, "both instances took part"
        assert a.stats.dead_lettered == b.stats.dead_lettered == 0
        assert await read_topic(bootstrap, dlq_of(topic), timeout_s=3) == []
    finally:
        await producer.stop()
        for _, broker, db in instances:
            await broker.stop()
            db.dispose()
        await publisher.stop()
        store.db.dispose()
