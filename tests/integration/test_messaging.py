"""The rules of the house against the real broker and real stores (SQLite and PostgreSQL):
outbox + relay, inbox dedupe, commit after effect, retries, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from sqlmodel import select

from shared.clock import ManualClock
from shared.contracts.base import Event, event
from shared.contracts.envelope import Cause, Envelope
from shared.db import Database
from shared.messaging import (
    MESSAGING_TABLES,
    DeadLetters,
    EventConsumer,
    HandlerContext,
    KafkaPublisher,
    Outbox,
    OutboxRecord,
    OutboxRelay,
    RetryPolicy,
    TransientError,
)
from shared.migrations import Migration, create_tables, migrate
from shared.topics import dlq_of
from tests.support import Ping, PingEffect, create_topic, headers_of, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


@dataclass
class Rig:
    db: Database
    topic: str
    bootstrap: str
    clock: ManualClock
    publisher: KafkaPublisher
    outbox: Outbox
    relay: OutboxRelay
    brokers: list[KafkaBroker] = field(default_factory=list)

    def write(self, *pings: Event, cause: Cause | None = None) -> list[Envelope]:
        """One business transaction: the change and its events, through the outbox."""
        with self.db.session() as s:
            return [self.outbox.add(s, p, cause or Cause.new(), topic=self.topic) for p in pings]

    def effects(self) -> list[PingEffect]:
        with self.db.session() as s:
            return list(s.exec(select(PingEffect).order_by(PingEffect.id)).all())  # type: ignore[arg-type]

    def consumer(self, name: str, policy: RetryPolicy | None = None) -> EventConsumer:
        return EventConsumer(
            name,
            self.db,
            self.outbox,
            self.clock,
            DeadLetters(self.publisher, self.clock),
            policy=policy or RetryPolicy(attempts=3, backoff_s=0.05, backoff_max_s=0.2),
        )

    async def run(self, consumer: EventConsumer) -> KafkaBroker:
        broker = KafkaBroker(self.bootstrap, logger=None)
        consumer.subscribe(broker, self.topic, max_records=50, batch_timeout_ms=50)
        await broker.start()
        self.brokers.append(broker)
        return broker


def record_effect(ctx: HandlerContext, ping: Ping) -> None:
    ctx.session.add(PingEffect(event_id=str(ctx.envelope.event_id), key=ping.key, seq=ping.seq))


@pytest.fixture
async def rig(store_url: str, bootstrap: str, topic_name: str) -> AsyncIterator[Rig]:
    db = Database(store_url)
    migrate(db, "test", [Migration(1, "messaging", create_tables(*MESSAGING_TABLES, PingEffect))])
    await create_topic(bootstrap, topic_name)
    clock = ManualClock(datetime(2026, 11, 2, 15, 0, tzinfo=UTC))
    publisher = KafkaPublisher(bootstrap)
    await publisher.start()
    outbox = Outbox("test-producer", clock)
    r = Rig(db, topic_name, bootstrap, clock, publisher, outbox, OutboxRelay(db, publisher, clock))
    yield r
    for b in r.brokers:
        await b.stop()
    await publisher.stop()
    db.dispose()


async def test_outbox_event_arrives_once_with_envelope_even_when_published_twice(rig: Rig) -> None:
    cause = Cause(correlation_id="req-42", causation_id="req-42")
    [env] = rig.write(Ping(key="partnership-1", seq=1, note="héllo"), cause=cause)

    assert await rig.relay.publish_once() == 1
    # The relay crashed after publishing but before marking the row sent: it publishes again.
    with rig.db.session() as s:
        row = s.exec(select(OutboxRecord)).one()
        row.published_at = None
        s.add(row)
    assert await rig.relay.publish_once() == 1

    records = await read_topic(rig.bootstrap, rig.topic)
    assert len(records) == 2, "both copies are on the topic"
    for rec in records:
        h = headers_of(rec)
        assert h["event_id"] == str(env.event_id)
        assert h["event_type"] == "TestPing" and h["event_version"] == "1"
        assert h["producer"] == "test-producer"
        assert h["correlation_id"] == "req-42" and h["causation_id"] == "req-42"
        assert h["key"] == "partnership-1" and rec.key == b"partnership-1"
        assert datetime.fromisoformat(h["occurred_at"]) == rig.clock.now()
        assert json.loads(rec.value) == {"key": "partnership-1", "seq": 1, "note": "héllo"}

    seen: list[tuple[Envelope, Ping]] = []
    consumer = rig.consumer("inbox-test")

    @consumer.handles(Ping)
    def apply(ctx: HandlerContext, ping: Ping) -> None:
        seen.append((ctx.envelope, ping))
        record_effect(ctx, ping)

    await rig.run(consumer)
    await wait_until(lambda: consumer.stats.processed + consumer.stats.duplicates >= 2)
    await asyncio.sleep(0.5)
    effects = rig.effects()
    assert [(e.key, e.seq) for e in effects] == [("partnership-1", 1)]
    assert len(seen) == 1
    envelope, ping = seen[0]
    assert envelope == env
    assert ping == Ping(key="partnership-1", seq=1, note="héllo")


async def test_failing_handler_loses_nothing_and_keeps_order_after_restart(rig: Rig) -> None:
    rig.write(Ping(key="k", seq=1))
    rig.write(Ping(key="k", seq=2))
    await rig.relay.publish_once()

    store_down = True
    attempts: list[int] = []
    consumer = rig.consumer("restart-test")

    @consumer.handles(Ping)
    def apply(ctx: HandlerContext, ping: Ping) -> None:
        attempts.append(ping.seq)
        if store_down:
            raise TransientError("simulated: the store is unavailable")
        record_effect(ctx, ping)

    broker = await rig.run(consumer)
    await wait_until(lambda: len(attempts) >= 3, timeout_s=30)
    await broker.stop()
    rig.brokers.remove(broker)
    assert rig.effects() == [], "nothing applied while the handler failed"
    assert await read_topic(rig.bootstrap, dlq_of(rig.topic)) == [], (
        "a transient failure is never dead-lettered"
    )

    store_down = False  # the failure is fixed; a new instance starts
    restarted = rig.consumer("restart-test")
    restarted.handlers = consumer.handlers
    await rig.run(restarted)
    await wait_until(lambda: len(rig.effects()) >= 2, timeout_s=30)
    await asyncio.sleep(0.3)
    assert [(e.key, e.seq) for e in rig.effects()] == [("k", 1), ("k", 2)]


async def test_poison_message_is_dead_lettered_and_the_partition_moves_on(rig: Rig) -> None:
    [bad] = rig.write(Ping(key="k", seq=1, note="poison"))
    rig.write(Ping(key="k", seq=2))
    await rig.relay.publish_once()

    consumer = rig.consumer("dlq-test", RetryPolicy(attempts=3, backoff_s=0.01, backoff_max_s=0.05))
    calls: list[int] = []

    @consumer.handles(Ping)
    def apply(ctx: HandlerContext, ping: Ping) -> None:
        calls.append(ping.seq)
        if ping.note == "poison":
            raise ValueError("mentor 17 has no such partnership")
        record_effect(ctx, ping)

    await rig.run(consumer)
    await wait_until(lambda: [e.seq for e in rig.effects()] == [2], timeout_s=30)
    dead = await read_topic(rig.bootstrap, dlq_of(rig.topic))
    assert len(dead) == 1
    h = headers_of(dead[0])
    original = next(
        r
        for r in await read_topic(rig.bootstrap, rig.topic)
        if headers_of(r)["event_id"] == str(bad.event_id)
    )
    assert h["event_id"] == str(bad.event_id)
    assert h["dlq_reason"] == "handler_failed"
    assert h["dlq_attempts"] == "3"
    assert "mentor 17 has no such partnership" in h["dlq_error"]
    assert h["dlq_consumer"] == "dlq-test"
    assert (h["dlq_original_topic"], h["dlq_original_partition"], h["dlq_original_offset"]) == (
        rig.topic,
        str(original.partition),
        str(original.offset),
    )
    assert dead[0].value == original.value and dead[0].key == b"k"
    assert calls.count(1) == 4, "the batch try, then three attempts alone"


async def test_unknown_types_and_invalid_payloads_go_to_dlq_without_crash_loop(rig: Rig) -> None:
    [good] = rig.write(Ping(key="k", seq=1))
    env_headers = good.to_headers()

    def with_header(name: str, value: str) -> list[tuple[str, bytes]]:
        return [(k, value.encode() if k == name else v) for k, v in env_headers]

    producer = AIOKafkaProducer(bootstrap_servers=rig.bootstrap)
    await producer.start()
    bad = {
        "undecodable": (b"\x00\xff not json", []),
        "unknown_type": (b'{"key":"k","seq":1}', with_header("event_type", "NoSuchEvent")),
        "unknown_version": (b'{"key":"k","seq":1}', with_header("event_version", "9")),
        "not_json": (b"{not json", with_header("event_id", "0b6f4f59-4a51-44a8-9f7c-0e0b2f5c3a11")),
        "invalid_payload": (
            b'{"key":"k","seq":"not a number"}',
            with_header("event_id", "6f1c1a7e-0b7a-4a55-9d55-3f0e4a6f9f10"),
        ),
    }
    for value, headers in bad.values():
        await producer.send_and_wait(rig.topic, value, key=b"k", headers=headers)
    await producer.stop()
    await rig.relay.publish_once()  # the good event comes after the four bad ones on key k

    consumer = rig.consumer("contract-test")
    consumer.handles(Ping)(record_effect)
    await rig.run(consumer)
    await wait_until(lambda: len(rig.effects()) == 1, timeout_s=30)
    dead = await read_topic(rig.bootstrap, dlq_of(rig.topic))
    expected = {"not_json": "invalid_payload"}
    reasons = sorted(headers_of(r)["dlq_reason"] for r in dead)
    assert reasons == sorted(expected.get(b, b) for b in bad), reasons
    errors = {headers_of(r).get("event_id", "none"): headers_of(r)["dlq_error"] for r in dead}
    by_reason = {
        headers_of(r)["dlq_reason"]: headers_of(r)["dlq_error"]
        for r in dead
        if headers_of(r).get("event_id") != "0b6f4f59-4a51-44a8-9f7c-0e0b2f5c3a11"
    }
    assert "Invalid JSON" in errors["0b6f4f59-4a51-44a8-9f7c-0e0b2f5c3a11"]
    errors = by_reason
    assert "missing envelope header" in errors["undecodable"]
    assert "NoSuchEvent" in errors["unknown_type"]
    assert "version 9" in errors["unknown_version"]
    assert "seq" in errors["invalid_payload"]

    # Still alive: a later event is processed by the same consumer.
    rig.write(Ping(key="k", seq=2))
    await rig.relay.publish_once()
    await wait_until(lambda: len(rig.effects()) == 2, timeout_s=30)


@event("TestPong", topic="test.ping", key="key")
class Pong(Event):
    key: str
    seq: int


async def test_a_batch_handler_gets_runs_of_its_class_in_order_and_each_event_once(rig: Rig) -> None:
    pings = [Ping(key="k", seq=s) for s in (1, 2, 3)]
    written = rig.write(*pings[:2]) + rig.write(Pong(key="k", seq=10)) + rig.write(pings[2])
    await rig.relay.publish_once()
    runs: list[list[int]] = []
    consumer = rig.consumer("batch-test")

    @consumer.handles_batch(Ping)
    def apply_pings(batch: Sequence[tuple[HandlerContext, Ping]]) -> None:
        runs.append([p.seq for _, p in batch])
        for ctx, ping in batch:
            record_effect(ctx, ping)

    @consumer.handles(Pong)
    def apply_pong(ctx: HandlerContext, pong: Pong) -> None:
        runs.append([pong.seq])
        ctx.session.add(PingEffect(event_id=str(ctx.envelope.event_id), key=pong.key, seq=pong.seq))

    await rig.run(consumer)
    await wait_until(lambda: len(rig.effects()) == 4, timeout_s=30)
    # The Pong between them ends the first run: everything is applied in the topic's order.
    assert [e.seq for e in rig.effects()] == [1, 2, 10, 3]
    assert [s for run in runs for s in run] == [1, 2, 10, 3]
    assert [1, 2] in runs, "the two consecutive pings came in one call"
    assert [e.event_id for e in rig.effects()] == [str(w.event_id) for w in written]

    # Published again (a relay re-send): the inbox skips them, the handler sees nothing.
    with rig.db.session() as s:
        for row in s.exec(select(OutboxRecord)).all():
            row.published_at = None
            s.add(row)
    await rig.relay.publish_once()
    await wait_until(lambda: consumer.stats.duplicates >= 4, timeout_s=30)
    assert len(rig.effects()) == 4 and len([s for run in runs for s in run]) == 4


async def test_a_failing_run_is_applied_one_by_one_and_only_the_bad_event_is_dead_lettered(rig: Rig) -> None:
    bad = rig.write(*(Ping(key="k", seq=s, note="poison" if s == 3 else "") for s in range(1, 6)))[2]
    await rig.relay.publish_once()
    consumer = rig.consumer("batch-dlq-test", RetryPolicy(attempts=2, backoff_s=0.01, backoff_max_s=0.05))
    calls: list[list[int]] = []

    @consumer.handles_batch(Ping)
    def apply_pings(batch: Sequence[tuple[HandlerContext, Ping]]) -> None:
        calls.append([p.seq for _, p in batch])
        for ctx, ping in batch:
            if ping.note == "poison":
                raise ValueError("no such partnership")
            record_effect(ctx, ping)

    await rig.run(consumer)
    await wait_until(lambda: len(rig.effects()) == 4, timeout_s=30)
    assert [e.seq for e in rig.effects()] == [1, 2, 4, 5]
    await wait_until(lambda: consumer.stats.dead_lettered == 1, timeout_s=30)
    dead = await read_topic(rig.bootstrap, dlq_of(rig.topic))
    assert [headers_of(r)["event_id"] for r in dead] == [str(bad.event_id)]
    assert calls.count([3]) == 2, "alone, as a run of one, twice (the policy's attempts)"
    assert any(len(c) > 1 for c in calls), "the batch was tried as one run first"


async def test_a_consumer_skips_known_types_it_does_not_handle_without_judging_them(rig: Rig) -> None:
    [pong] = rig.write(Pong(key="k", seq=1))
    producer = AIOKafkaProducer(bootstrap_servers=rig.bootstrap)
    await producer.start()
    # A Pong with a payload no Pong consumer accepts: dead-lettering it is for the consumers of Pong.
    await producer.send_and_wait(rig.topic, b'{"key":"k","seq":"x"}', key=b"k", headers=pong.to_headers())
    await producer.stop()
    rig.write(Ping(key="k", seq=2))
    await rig.relay.publish_once()
    consumer = rig.consumer("skip-test")
    consumer.handles(Ping)(record_effect)
    await rig.run(consumer)
    await wait_until(lambda: len(rig.effects()) == 1, timeout_s=30)
    assert consumer.stats.ignored == 2 and consumer.stats.dead_lettered == 0
    assert await read_topic(rig.bootstrap, dlq_of(rig.topic)) == []
