"""The shared event pipeline against the limit of this machine, measured in one run.

raw produce / raw consume: aiokafka alone, N records of the same size, on the same broker.
outbox relay: N events written through the outbox (SQLite) and published by the relay.
consumer: the same N events applied by an EventConsumer (inbox + effect row per event, SQLite).
Each figure is events/s, and the ratio to raw consume, so a noisy machine cancels out.

    uv run python -m bench.pipeline_bench --quick|--full [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker
from sqlmodel import Field, SQLModel

from deploy.kafka.local import LocalKafka, free_port
from shared.clock import ManualClock
from shared.contracts.base import Event, event
from shared.contracts.envelope import Cause
from shared.db import Database
from shared.messaging import (
    MESSAGING_TABLES,
    DeadLetters,
    EventConsumer,
    HandlerContext,
    KafkaPublisher,
    Outbox,
    OutboxRelay,
)
from shared.messaging.admin import ensure_topics
from shared.migrations import Migration, create_tables, migrate
from shared.topics import TopicSpec


@event("BenchMeeting", topic="bench.meetings", key="partnership_id")
class BenchMeeting(Event):
    partnership_id: str
    meeting_id: str
    minutes: int
    notes: str


class BenchEffect(SQLModel, table=True):
    __tablename__ = "bench_effect"
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: str
    minutes: int


@contextmanager
def broker_for(bootstrap: str | None) -> Any:
    if bootstrap:
        yield bootstrap
        return
    data = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=data)
    kafka.start()
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()
        shutil.rmtree(data, ignore_errors=True)


def sample(i: int) -> BenchMeeting:
    return BenchMeeting(
        partnership_id=f"p-{i % 5000}",
        meeting_id=f"m-{i}",
        minutes=30 + i % 60,
        notes="Discussed questioning strategies and planned the next observation." * 2,
    )


async def raw(bootstrap: str, topic: str, n: int, value: bytes) -> tuple[float, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    futures = [await producer.send(topic, value, key=f"p-{i % 5000}".encode()) for i in range(n)]
    await asyncio.gather(*futures)
    produce_s = time.perf_counter() - started
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    started = time.perf_counter()
    seen = 0
    while seen < n:
        batch = await consumer.getmany(timeout_ms=1000, max_records=500)
        seen += sum(len(v) for v in batch.values())
        await consumer.commit()
    consume_s = time.perf_counter() - started
    await consumer.stop()
    return n / produce_s, n / consume_s


async def pipeline(bootstrap: str, topic: str, n: int, workdir: Path) -> tuple[float, float]:
    db = Database(f"sqlite:///{workdir / 'bench.db'}")
    migrate(db, "bench", [Migration(1, "all", create_tables(*MESSAGING_TABLES, BenchEffect))])
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    outbox = Outbox("bench", clock)
    for start in range(0, n, 1000):
        with db.session() as s:
            for i in range(start, min(start + 1000, n)):
                outbox.add(s, sample(i), Cause.new(), topic=topic)
    publisher = KafkaPublisher(bootstrap)
    relay = OutboxRelay(db, publisher, clock, batch_size=1000)
    started = time.perf_counter()
    sent = 0
    while sent < n:
        sent += await relay.publish_once()
    relay_s = time.perf_counter() - started

    consumer = EventConsumer("bench-consumer", db, outbox, clock, DeadLetters(publisher, clock))

    @consumer.handles(BenchMeeting)
    def apply(ctx: HandlerContext, m: BenchMeeting) -> None:
        ctx.session.add(BenchEffect(meeting_id=m.meeting_id, minutes=m.minutes))

    done = asyncio.Event()
    consumer.after_commit = lambda: done.set() if consumer.stats.processed >= n else None
    broker = KafkaBroker(bootstrap, logger=None)
    consumer.subscribe(broker, topic, max_records=500, batch_timeout_ms=50)
    started = time.perf_counter()
    await broker.start()
    await done.wait()
    consume_s = time.perf_counter() - started
    await broker.stop()
    await publisher.stop()
    db.dispose()
    return n / relay_s, n / consume_s


async def main_async(n: int, bootstrap: str) -> dict[str, Any]:
    raw_topic, pipe_topic = f"bench.raw.{uuid.uuid4().hex[:6]}", f"bench.pipe.{uuid.uuid4().hex[:6]}"
    await ensure_topics(
        bootstrap,
        [
            TopicSpec(t, 6, "partnership", 3600_000, "bench")
            for t in (raw_topic, pipe_topic, pipe_topic + ".dlq")
        ],
    )
    value = sample(1).to_json()
    raw_produce, raw_consume = await raw(bootstrap, raw_topic, n, value)
    with tempfile.TemporaryDirectory() as tmp:
        relay_rate, consume_rate = await pipeline(bootstrap, pipe_topic, n, Path(tmp))
    return {
        "events": n,
        "record_bytes": len(value),
        "raw_produce_per_s": round(raw_produce),
        "raw_consume_per_s": round(raw_consume),
        "outbox_relay_per_s": round(relay_rate),
        "consumer_inbox_sqlite_per_s": round(consume_rate),
        "relay_vs_raw_produce": round(relay_rate / raw_produce, 3),
        "consumer_vs_raw_consume": round(consume_rate / raw_consume, 3),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--full", action="store_true")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args(argv)
    n = args.events or (100_000 if args.full else 20_000)
    with broker_for(args.bootstrap) as bootstrap:
        result = asyncio.run(main_async(n, bootstrap))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
