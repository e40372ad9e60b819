"""Activity service benchmarks.

1. Month close: one program, P partnerships (two per mentor), E time entries in the month (2% of
   them late, from the month before), closed in one transaction: claim, MonthClosed per mentor
   into the outbox. Timed in a fresh child process, whose peak RSS is reported.
2. MeetingLogged handled per second by the activity consumer (decode, inbox, meeting view,
   compliance re-evaluation, status compare-and-set), fed in batches of 500 straight to
   EventConsumer.process_batch; and, with --bootstrap, through a real broker and consumer group.

    uv run python -m bench.activity_bench --quick|--full [--store-url URL] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from sqlalchemy import func, insert
from sqlmodel import select

from services.activity.adapters.migrations import MIGRATIONS
from services.activity.adapters.tables import MeetingViewRow, PartnershipRow, ProgramRow, TimeEntryRow
from services.activity.entrypoints.consumers import register_handlers
from shared.clock import ManualClock
from shared.contracts.activity import MeetingLogged
from shared.contracts.envelope import Cause, new_envelope
from shared.contracts.program import ProgramPolicy, TimeEntryKind
from shared.db import Database
from shared.messaging import (
    MESSAGING_TABLES,
    DeadLetters,
    EventConsumer,
    KafkaPublisher,
    Outbox,
    OutboxRecord,
)
from shared.messaging.admin import ensure_topics
from shared.migrations import Migration, create_tables, migrate
from shared.topics import ACTIVITY

PROGRAM = "bench-program"
MONTH = "2026-10"
NOW = datetime(2026, 11, 20, 18, tzinfo=UTC)
KINDS = [k.value for k in TimeEntryKind]


def open_db(url: str) -> Database:
    db = Database(url)
    migrate(db, "activity.messaging", [Migration(1, "messaging", create_tables(*MESSAGING_TABLES))])
    migrate(db, "activity", MIGRATIONS)
    return db


def seed_program(db: Database) -> None:
    with db.session() as s:
        s.add(ProgramRow(program_id=PROGRAM, name="bench", revision=1, policy=ProgramPolicy().model_dump_json()))


# -- month close ------------------------------------------------------------------------------
def entry_rows(partnerships: int, entries: int) -> Iterator[list[dict[str, Any]]]:
    mentors = max(1, partnerships // 2)
    chunk: list[dict[str, Any]] = []
    for i in range(entries):
        p = i % partnerships
        late = i % 50 == 0
        day = date(2026, 9, 1 + i % 30) if late else date(2026, 10, 1 + i % 31)
        chunk.append({
            "entry_id": f"e{i:08d}", "program_id": PROGRAM, "mentor_id": f"m{p % mentors:06d}",
            "partnership_id": f"p{p:06d}", "kind": KINDS[i % len(KINDS)], "work_date": day,
            "minutes": 15 + i % 120, "voided": False, "reason": "", "recorded_by": "bench",
            "recorded_at": NOW,
        })
        if len(chunk) == 20_000:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed_entries(db: Database, partnerships: int, entries: int) -> float:
    started = time.perf_counter()
    table = TimeEntryRow.__table__  # type: ignore[attr-defined]
    for chunk in entry_rows(partnerships, entries):
        with db.session() as s:
            s.execute(insert(table), chunk)
    if db.dialect == "postgresql":  # statistics, as autovacuum keeps them on a live server
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE activity_time_entry")
            conn.commit()
    return time.perf_counter() - started


def _close_child(url: str, out: Any) -> None:
    from services.activity.service_layer.month_close import close_month

    db = Database(url)
    clock = ManualClock(NOW)
    started, cpu = time.perf_counter(), time.process_time()
    with db.session() as s:
        summary = close_month(s, Outbox("activity", clock), PROGRAM, MONTH, NOW, cause=Cause.new())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert summary is not None
    out.put({"seconds": elapsed, "cpu_seconds": cpu, "mentors": summary.mentors, "entries": summary.entries,
             "late": summary.late_entries, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    db.dispose()


def bench_month_close(url: str, partnerships: int, entries: int) -> dict[str, Any]:
    db = open_db(url)
    seed_program(db)
    seeded_s = seed_entries(db, partnerships, entries)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_close_child, args=(url, queue))
    child.start()
    result: dict[str, Any] = queue.get()
    child.join()
    with db.session() as s:
        events = s.exec(select(func.count()).select_from(OutboxRecord)
                        .where(OutboxRecord.event_type == "MonthClosed")).one()
        payload = s.exec(select(func.sum(func.length(OutboxRecord.payload)))
                         .where(OutboxRecord.event_type == "MonthClosed")).one()
    db.dispose()
    assert result["entries"] == entries and events == result["mentors"] == max(1, partnerships // 2)
    return {**result, "seed_seconds": round(seeded_s, 1), "month_closed_events": events,
            "payload_mb": round((payload or 0) / 1e6, 1)}


# -- MeetingLogged throughput -----------------------------------------------------------------
def seed_partnerships(db: Database, partnerships: int) -> None:
    started = datetime(2026, 9, 1, 15, tzinfo=UTC)
    rows = [{"partnership_id": f"p{i:06d}", "program_id": PROGRAM, "mentor_id": f"m{i // 2:06d}",
             "mentee_id": f"e{i:06d}", "matched": True, "started_at": started, "end_reason": "",
             "status_reasons": "[]"} for i in range(partnerships)]
    with db.session() as s:
        s.execute(insert(PartnershipRow.__table__), rows)  # type: ignore[attr-defined]


def meetings(n: int, partnerships: int, clock: ManualClock, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    out = []
    base = datetime(2026, 9, 2, 15, tzinfo=UTC)
    for i in range(n):
        p = i % partnerships
        ev = MeetingLogged(meeting_id=f"meet-{i}", partnership_id=f"p{p:06d}", program_id=PROGRAM,
                           mentor_id=f"m{p // 2:06d}", mentee_id=f"e{p:06d}",
                           started_at=base + timedelta(minutes=37 * i), duration_minutes=45,
                           mode="video", intentional=True)
        env = new_envelope(event_type=ev.event_type, event_version=ev.event_version, key=ev.aggregate_key(),
                           producer="activity", clock=clock, cause=Cause.new())
        value = ev.to_json()
        out.append(ConsumerRecord(topic, p % 6, i, 0, 0, env.key.encode(), value, None, len(env.key), len(value),
                                  env.to_headers()))
    return out


async def bench_consumer(url: str, n: int, partnerships: int) -> dict[str, Any]:
    db = open_db(url)
    seed_program(db)
    seed_partnerships(db, partnerships)
    clock = ManualClock(NOW)
    consumer = register_handlers(EventConsumer("activity", db, Outbox("activity", clock), clock, None))  # type: ignore[arg-type]
    records = meetings(n, partnerships, clock, ACTIVITY)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, n, 500):
        await consumer.process_batch(records[i:i + 500])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with db.session() as s:
        applied = s.exec(select(func.count()).select_from(MeetingViewRow)).one()
    db.dispose()
    assert applied == n == consumer.stats.processed
    return {"events": n, "seconds": round(elapsed, 2), "per_second": round(n / elapsed),
            "per_cpu_second": round(n / cpu)}


async def bench_consumer_kafka(url: str, bootstrap: str, n: int, partnerships: int) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(bootstrap, prefix=prefix)
    topic = prefix + ACTIVITY
    db = open_db(url)
    seed_program(db)
    seed_partnerships(db, partnerships)
    clock = ManualClock(NOW)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    for r in meetings(n, partnerships, clock, topic):
        await producer.send(topic, r.value, key=r.key, headers=list(r.headers))
    await producer.flush()
    await producer.stop()
    publisher = KafkaPublisher(bootstrap)
    consumer = register_handlers(EventConsumer(f"bench-{prefix}", db, Outbox("activity", clock), clock,
                                               DeadLetters(publisher, clock)))
    broker = KafkaBroker(bootstrap, logger=None)
    consumer.subscribe(broker, topic, max_records=500)
    done = asyncio.Event()
    consumer.after_commit = lambda: done.set() if consumer.stats.processed >= n else None
    started = time.perf_counter()
    await broker.start()
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    await broker.stop()
    await publisher.stop()
    db.dispose()
    return {"events": n, "seconds": round(elapsed, 2), "per_second": round(n / elapsed),
            "note": "from consumer start (group join included) to the last event applied"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="5,000 partnerships, 100,000 entries (default)")
    size.add_argument("--full", action="store_true", help="50,000 partnerships, 1,000,000 entries")
    parser.add_argument("--store-url", default="", help="a database URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--bootstrap", default="", help="Kafka bootstrap: also measure through a real broker")
    parser.add_argument("--close-only", action="store_true", help="only the month close")
    args = parser.parse_args()
    partnerships, entries, n_meetings = (50_000, 1_000_000, 20_000) if args.full else (5_000, 100_000, 5_000)
    tmp = Path(tempfile.mkdtemp(prefix="activity-bench-"))
    try:
        def url(name: str) -> str:
            if not args.store_url:
                return f"sqlite:///{tmp / name}.db"
            from conftest import fresh_postgres_database  # a fresh database per measurement

            return fresh_postgres_database(args.store_url)

        store = "postgresql" if args.store_url else "sqlite"
        figures: dict[str, Any] = {"store": store, "partnerships": partnerships, "entries": entries,
                                   "load_average": round(os.getloadavg()[0], 1)}
        print(f"month close: {partnerships:,} partnerships, {entries:,} entries ({store}); load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        close = bench_month_close(url("close"), partnerships, entries)
        goal = "OK" if close["seconds"] < 20 and close["peak_rss_mb"] < 1024 else "MISSED"
        print(f"  closed in {close['seconds']:.1f} s (CPU {close['cpu_seconds']:.1f} s), peak RSS {close['peak_rss_mb']:.0f} MB "
              f"(goal < 20 s, < 1 GB: {goal}); {close['month_closed_events']:,} MonthClosed, "
              f"{close['late']:,} late entries, payload {close['payload_mb']} MB; seeding took "
              f"{close['seed_seconds']} s", flush=True)
        figures["month_close"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in close.items()}
        if args.close_only:
            print(json.dumps(figures))
            return
        print(f"MeetingLogged through the consumer: {n_meetings:,} events, 1,000 partnerships", flush=True)
        direct = asyncio.run(bench_consumer(url("consumer"), n_meetings, 1000))
        print(f"  in process (batches of 500): {direct['per_second']:,}/s ({direct['seconds']} s; "
              f"{direct['per_cpu_second']:,} per CPU-second of this process)", flush=True)
        figures["meeting_logged_in_process"] = direct
        if args.bootstrap:
            kafka = asyncio.run(bench_consumer_kafka(url("kafka"), args.bootstrap, n_meetings, 1000))
            print(f"  through Kafka (one consumer): {kafka['per_second']:,}/s ({kafka['seconds']} s, {kafka['note']})")
            figures["meeting_logged_through_kafka"] = kafka
        print(json.dumps(figures))  # last, for `python -m bench`
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
