"""Stores: migrations upgrade without data loss; two relays at once neither lose nor reorder."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy import Connection, text
from sqlmodel import select

from shared.clock import ManualClock
from shared.contracts.envelope import Cause
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
)
from shared.migrations import Migration, create_tables, current_version, migrate
from tests.support import Ping, PingEffect, create_topic, headers_of, read_topic, wait_until


@pytest.mark.integration
def test_migrations_upgrade_an_existing_store_without_losing_data(store_url: str) -> None:
    db = Database(store_url)

    def v1(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE t_person (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL)"))

    def v2(conn: Connection) -> None:
        conn.execute(text("ALTER TABLE t_person ADD COLUMN email VARCHAR(200) NOT NULL DEFAULT ''"))

    assert migrate(db, "people", [Migration(1, "people", v1)]) == [1]
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO t_person (id, name) VALUES (1, 'Ada'), (2, 'Grace')"))
    steps = [Migration(1, "people", v1), Migration(2, "email", v2)]
    assert migrate(db, "people", steps) == [2]
    assert migrate(db, "people", steps) == [], "a second start applies nothing"
    assert current_version(db, "people") == 2
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, name, email FROM t_person ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, "Ada", ""), (2, "Grace", "")]
    with pytest.raises(ValueError, match="unique and ascending"):
        migrate(db, "people", [Migration(2, "b", v2), Migration(1, "a", v1)])
    db.dispose()


@pytest.mark.integration
@pytest.mark.kafka
async def test_two_relays_at_once_lose_nothing_and_keep_order_per_key(
    store_url: str, bootstrap: str, topic_name: str
) -> None:
    db = Database(store_url)
    migrate(db, "relays", [Migration(1, "messaging", create_tables(*MESSAGING_TABLES, PingEffect))])
    await create_topic(bootstrap, topic_name, partitions=3)
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    outbox = Outbox("relay-test", clock)
    publishers = [KafkaPublisher(bootstrap), KafkaPublisher(bootstrap)]
    relays = [
        OutboxRelay(db, p, clock, batch_size=40, poll_interval_s=0.01, lease_ttl=timedelta(seconds=1))
        for p in publishers
    ]
    keys = [f"partnership-{i}" for i in range(12)]
    total = 360

    async def writer() -> None:
        for n in range(total):
            with db.session() as s:
                outbox.add(s, Ping(key=keys[n % len(keys)], seq=n), Cause.new(), topic=topic_name)
            if n % 30 == 0:
                clock.advance(timedelta(seconds=2))  # leases expire now and then: leadership moves
                await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(r.run()) for r in relays]
    await writer()

    def all_marked() -> bool:
        with db.session() as s:
            return all(r.published_at is not None for r in s.exec(select(OutboxRecord)).all())

    await wait_until(all_marked, timeout_s=60)
    for r in relays:
        r.stop()
    await asyncio.gather(*tasks)

    records = await read_topic(bootstrap, topic_name)
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen_ids: set[str] = set()
    for rec in records:  # partition order = delivery order for each key
        h = headers_of(rec)
        if h["event_id"] in seen_ids:
            continue
        seen_ids.add(h["event_id"])
        first_seen[h["key"]].append(int(rec.value.split(b'"seq":')[1].split(b",")[0]))
    assert len(seen_ids) == total, "every row published"
    for key in keys:
        assert first_seen[key] == sorted(first_seen[key]), f"order kept for {key}"

    # And a consumer applies each exactly once, duplicates or not.
    consumer = EventConsumer("relay-test-consumer", db, outbox, clock, DeadLetters(publishers[0], clock))

    @consumer.handles(Ping)
    def apply(ctx: HandlerContext, ping: Ping) -> None:
        ctx.session.add(PingEffect(event_id=str(ctx.envelope.event_id), key=ping.key, seq=ping.seq))

    broker = KafkaBroker(bootstrap, logger=None)
    consumer.subscribe(broker, topic_name)
    await broker.start()
    try:

        def effects() -> list[PingEffect]:
            with db.session() as s:
                return list(s.exec(select(PingEffect)).all())

        await wait_until(
            lambda: consumer.stats.processed + consumer.stats.duplicates >= len(records), timeout_s=60
        )
        got = effects()
        assert sorted(e.seq for e in got) == list(range(total))
    finally:
        await broker.stop()
        for p in publishers:
            await p.stop()
        db.dispose()


class _CommitsWhilePublishing(KafkaPublisher):
    """A real publisher that, while its first batch is in flight, has another row committed and
    the relay woken: the commit lands after the relay read the outbox."""

    def __init__(self, bootstrap: str, on_first_send: Callable[[], None]) -> None:
        super().__init__(bootstrap)
        self.on_first_send: Callable[[], None] | None = on_first_send

    async def send_many(self, records: Any) -> Any:
        hook, self.on_first_send = self.on_first_send, None
        if hook is not None:
            hook()
        return await super().send_many(records)


@pytest.mark.integration
@pytest.mark.kafka
async def test_a_wake_during_a_publish_is_not_lost(store_url: str, bootstrap: str, topic_name: str) -> None:
    """The relay polls rarely (here: once a minute) and relies on wakes; one that arrives while a
    batch is being sent must start the next batch at once, not wait for the poll."""
    db = Database(store_url)
    migrate(db, "relays", [Migration(1, "messaging", create_tables(*MESSAGING_TABLES, PingEffect))])
    await create_topic(bootstrap, topic_name, partitions=1)
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    outbox = Outbox("relay-test", clock)

    def commit(seq: int) -> None:
        with db.session() as s:
            outbox.add(s, Ping(key="k", seq=seq), Cause.new(), topic=topic_name)

    def second_commit() -> None:
        commit(2)
        relay.wake()

    relay = OutboxRelay(db, _CommitsWhilePublishing(bootstrap, second_commit), clock, poll_interval_s=60.0)
    commit(1)
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: relay.published_total == 2, timeout_s=20)
    finally:
        relay.stop()
        await task
        await relay.publisher.stop()
    assert [headers_of(r)["event_type"] for r in await read_topic(bootstrap, topic_name)] == ["TestPing", "TestPing"]
    db.dispose()


@pytest.mark.integration
@pytest.mark.kafka
async def test_commits_in_many_threads_each_waking_the_relay_are_all_published_without_a_poll(
    store_url: str, bootstrap: str, topic_name: str
) -> None:
    """HTTP threads commit and wake the relay; wakes from other threads are merged while one is on
    its way to the loop. None may be lost: with a one-minute poll, every row must still go out."""
    db = Database(store_url)
    migrate(db, "relays", [Migration(1, "messaging", create_tables(*MESSAGING_TABLES, PingEffect))])
    await create_topic(bootstrap, topic_name, partitions=2)
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    outbox = Outbox("relay-test", clock)
    relay = OutboxRelay(db, KafkaPublisher(bootstrap), clock, poll_interval_s=60.0)
    task = asyncio.create_task(relay.run())
    threads, per_thread = 8, 40

    def http_thread(t: int) -> None:
        for n in range(per_thread):
            with db.session() as s:
                outbox.add(s, Ping(key=f"k{t}", seq=n), Cause.new(), topic=topic_name)
            relay.wake()
            time.sleep(0.01)  # commits spread over the relay's batches, as requests arrive

    try:
        await asyncio.gather(*(asyncio.to_thread(http_thread, t) for t in range(threads)))
        await wait_until(lambda: relay.published_total == threads * per_thread, timeout_s=30)
    finally:
        relay.stop()
        await task
        await relay.publisher.stop()
    seqs: dict[str, list[int]] = defaultdict(list)
    for record in await read_topic(bootstrap, topic_name):
        body = json.loads(record.value)
        seqs[body["key"]].append(body["seq"])
    assert seqs == {f"k{t}": list(range(per_thread)) for t in range(threads)}, "every row, in order per key"
    db.dispose()
