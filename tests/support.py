"""Helpers for tests against the real broker: topics, raw reads, waiting, a test event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlmodel import Field, SQLModel

from shared.contracts.base import Event, event
from shared.messaging.admin import ensure_topics
from shared.topics import TopicSpec, dlq_of


@event("TestPing", topic="test.ping", key="key")
class Ping(Event):
    key: str
    seq: int
    note: str = ""


class PingEffect(SQLModel, table=True):
    """The side effect a test handler writes: one row per applied event."""

    __tablename__ = "test_ping_effect"
    id: int | None = Field(default=None, primary_key=True)
    event_id: str
    key: str
    seq: int


async def create_topic(bootstrap: str, name: str, partitions: int = 3) -> None:
    await ensure_topics(
        bootstrap,
        [
            TopicSpec(name, partitions, "test key", 3600_000, "test topic"),
            TopicSpec(dlq_of(name), 1, "test key", 3600_000, "test dlq", is_dlq=True),
        ],
    )


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[ConsumerRecord[Any, Any]]:
    """Every record now on the topic, in partition then offset order (no consumer group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout_s
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()  # topic just created
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[ConsumerRecord[Any, Any]] = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp] and time.monotonic() < deadline:
                batch = await consumer.getmany(tp, timeout_ms=500)
                out.extend(batch.get(tp, []))
        return out
    finally:
        await consumer.stop()


async def wait_until(check: Callable[[], Any], timeout_s: float = 30.0, every_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(every_s)


def headers_of(record: ConsumerRecord[Any, Any]) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers or ()}


async def publish_events(
    bootstrap: str, events: list[Event], *, prefix: str = "", producer: str = "test", clock: Any = None
) -> list[Any]:
    """Put events on their catalog topics (with `prefix`) as another service would: envelope in
    headers, payload as JSON, key = aggregate id. Returns the envelopes, in order."""
    from aiokafka import AIOKafkaProducer

    from shared.clock import SystemClock
    from shared.contracts.envelope import Cause, new_envelope

    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await kafka.start()
    envelopes = []
    try:
        for ev in events:
            env = new_envelope(
                event_type=ev.event_type,
                event_version=ev.event_version,
                key=ev.aggregate_key(),
                producer=producer,
                clock=clock or SystemClock(),
                cause=Cause.new(),
            )
            await kafka.send_and_wait(
                prefix + ev.topic, ev.to_json(), key=env.key.encode(), headers=env.to_headers()
            )
            envelopes.append(env)
    finally:
        await kafka.stop()
    return envelopes
