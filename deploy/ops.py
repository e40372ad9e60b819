"""Operator tools over any Kafka: tail topics with decoded envelopes, consumer lag, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.messaging.lag import Lag, consumer_lag
from shared.topics import DLQ_SUFFIX

__all__ = ["Lag", "Seen", "consumer_lag", "decode_record", "replay_dead_letter", "tail"]


@dataclass(frozen=True)
class Seen:
    """One record as an operator sees it."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: str | None
    headers: dict[str, str]
    payload: Any

    @property
    def event_type(self) -> str | None:
        return self.headers.get("event_type")


def decode_record(rec: ConsumerRecord[Any, Any]) -> Seen:
    headers = {k: v.decode(errors="replace") for k, v in rec.headers or ()}
    try:
        payload: Any = json.loads(rec.value) if rec.value else None
    except (ValueError, UnicodeDecodeError):
        payload = repr(rec.value[:200])
    return Seen(
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        timestamp=datetime.fromtimestamp(rec.timestamp / 1000).astimezone(),
        key=rec.key.decode(errors="replace") if rec.key else None,
        headers=headers,
        payload=payload,
    )


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    for _ in range(20):
        if parts:
            break
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
        await asyncio.sleep(0.1)
    if not parts:
        raise ValueError(f"topic {topic!r} does not exist")
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def tail(
    bootstrap: str,
    topic: str,
    *,
    from_beginning: bool = False,
    follow: bool = False,
    event_type: str | None = None,
    key: str | None = None,
    since: datetime | None = None,
) -> AsyncIterator[Seen]:
    """Records of a topic, decoded; stops at the end unless `follow`. Joins no consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        if since is not None:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                at = found.get(tp)
                consumer.seek(tp, at.offset if at else ends[tp])
        elif from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    seen = decode_record(rec)
                    if event_type and seen.event_type != event_type:
                        continue
                    if key and seen.key != key:
                        continue
                    yield seen
            if not follow and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                return
    finally:
        await consumer.stop()


async def replay_dead_letter(bootstrap: str, dlq_topic: str, partition: int, offset: int) -> Seen:
    """Send one dead letter back to its original topic, without the dlq_* headers.

    Consumers dedupe by event_id, so replaying a message that was in fact applied is harmless.
    """
    if not dlq_topic.endswith(DLQ_SUFFIX):
        raise ValueError(f"{dlq_topic!r} is not a dead-letter topic")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(dlq_topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        batch = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
        records = batch.get(tp, [])
        if not records or records[0].offset != offset:
            raise ValueError(f"no record at {dlq_topic}[{partition}]@{offset}")
        rec = records[0]
    finally:
        await consumer.stop()
    seen = decode_record(rec)
    original = seen.headers.get("dlq_original_topic") or dlq_topic[: -len(DLQ_SUFFIX)]
    headers = [(k, v) for k, v in rec.headers or () if not k.startswith("dlq_")]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(original, rec.value, key=rec.key, headers=headers)
    finally:
        await producer.stop()
    return seen
