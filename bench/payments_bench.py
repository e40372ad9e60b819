"""Payments benchmark: statements for N mentors from their MonthClosed events, then one payout batch.

Runs in a fresh child process (peak RSS is that process's). Phases, each timed:
1. statements: ProgramConfigured, N MentorEnrolled and N MonthClosed (4 entries each: meeting,
   planning, workshop, feedback review; 1 in 10 mentors also has a late entry of the month before)
   fed in batches of 500 to the payments consumer's EventConsumer.process_batch — decode, inbox,
   handler, statement lines, StatementPrepared into the outbox — as the broker would deliver them;
2. approvals (reported, not part of the goal): every statement approved, 5,000 per request;
3. payout: the pay-day job builds the one batch (N items, CSV, PayoutIssued) in one transaction.
The goal (issue #5) is statements + payout under 30 s and under 1 GB.

    uv run python -m bench.payments_bench --quick|--full [--mentors N] [--store-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiokafka.structs import ConsumerRecord
from sqlalchemy import func
from sqlmodel import select

from services.payments.adapters.tables import BatchRow, StatementLineRow, StatementRow
from services.payments.entrypoints.app import PaymentsSettings, build_service, emitter
from services.payments.service_layer import statements
from services.payments.service_layer.payout import run_payouts
from shared.clock import ManualClock
from shared.contracts.activity import ClosedEntry, MonthClosed
from shared.contracts.base import Event
from shared.contracts.envelope import Cause, new_envelope
from shared.contracts.matching import MentorEnrolled, ProgramConfigured
from shared.contracts.program import ProgramPolicy, TimeEntryKind
from shared.messaging import EventConsumer

PROGRAM = "bench-program"
CLOSE = datetime(2026, 11, 1, 12, tzinfo=UTC)
PAY_DAY = datetime(2026, 11, 2, 16, tzinfo=UTC)
BATCH = 500
K = TimeEntryKind


def record(event: Event, clock: ManualClock, offset: int) -> ConsumerRecord[Any, Any]:
    env = new_envelope(event_type=event.event_type, event_version=event.event_version, key=event.aggregate_key(),
                       producer="bench", clock=clock, cause=Cause.new())
    value = event.to_json()
    return ConsumerRecord(event.topic, 0, offset, 0, 0, env.key.encode(), value, None, len(env.key), len(value),
                          env.to_headers())


def month_closed(i: int) -> MonthClosed:
    m = f"mentor-{i:06d}"
    entries = [
        ClosedEntry(entry_id=f"{m}-1", kind=K.MEETING, work_date=date(2026, 10, 5), minutes=60 + i % 60),
        ClosedEntry(entry_id=f"{m}-2", kind=K.PLANNING, work_date=date(2026, 10, 6), minutes=90 + i % 90),
        ClosedEntry(entry_id=f"{m}-3", kind=K.WORKSHOP, work_date=date(2026, 10, 7), minutes=45),
        ClosedEntry(entry_id=f"{m}-4", kind=K.FEEDBACK_REVIEW, work_date=date(2026, 10, 8), minutes=20 + i % 7),
    ]
    if i % 10 == 0:
        entries.append(ClosedEntry(entry_id=f"{m}-late", kind=K.MEETING, work_date=date(2026, 9, 29), minutes=30,
                                   late=True))
    return MonthClosed(program_id=PROGRAM, mentor_id=m, month="2026-10",
                       minutes_by_kind={}, entries=entries)


def consumer_of(service: Any) -> EventConsumer:
    [(consumer, _topics)] = service.consumers
    return consumer


def records(events: Sequence[Event], clock: ManualClock) -> list[ConsumerRecord[Any, Any]]:
    """The records as the broker would deliver them (built before the clock starts)."""
    return [record(e, clock, n) for n, e in enumerate(events)]


async def feed(consumer: EventConsumer, batch: Sequence[ConsumerRecord[Any, Any]]) -> None:
    for start in range(0, len(batch), BATCH):
        await consumer.process_batch(batch[start : start + BATCH])


def run(mentors: int, store_url: str | None, workdir: str) -> dict[str, Any]:
    clock = ManualClock(CLOSE)
    url = store_url or f"sqlite:///{Path(workdir) / 'payments.db'}"
    service = build_service(PaymentsSettings(database_url=url, kafka_bootstrap_servers="127.0.0.1:1"), clock)
    service.migrate()
    consumer = consumer_of(service)
    figures: dict[str, Any] = {"mentors": mentors, "store": url.split(":")[0]}

    setup = [ProgramConfigured(program_id=PROGRAM, name="Bench", policy=ProgramPolicy())] + [
        MentorEnrolled(person_id=f"mentor-{i:06d}", program_id=PROGRAM, name=f"Mentor {i}",
                       email=f"mentor{i}@example.org") for i in range(mentors)
    ]
    enrolments = records(setup, clock)
    started, cpu = time.monotonic(), time.process_time()
    asyncio.run(feed(consumer, enrolments))
    figures["enrolment_s"] = round(time.monotonic() - started, 2)

    closes = records([month_closed(i) for i in range(mentors)], clock)
    gc.freeze()  # the input records live on; the collector need not walk them while timing
    started, cpu = time.monotonic(), time.process_time()
    asyncio.run(feed(consumer, closes))
    figures["statements_s"] = round(time.monotonic() - started, 2)
    figures["statements_cpu_s"] = round(time.process_time() - cpu, 2)
    assert consumer.stats.dead_lettered == 0, consumer.stats

    started = time.monotonic()
    with service.db.session() as s:
        ids = list(s.exec(select(StatementRow.statement_id)).all())
    for chunk in range(0, len(ids), 5_000):  # as POST /statements/approvals would, 5,000 at a time
        with service.db.session() as s:
            done = statements.approve_many(s, emitter(service, s), clock.now(), ids[chunk : chunk + 5_000], "staff")
            assert not done["refused"], done["refused"][:3]
    figures["approvals_s"] = round(time.monotonic() - started, 2)

    clock.set(PAY_DAY)
    started, cpu = time.monotonic(), time.process_time()
    [batch_id] = run_payouts(service.db, lambda s: emitter(service, s), clock.now)
    figures["payout_s"] = round(time.monotonic() - started, 2)
    figures["payout_cpu_s"] = round(time.process_time() - cpu, 2)
    with service.db.session() as s:
        batch = s.get(BatchRow, batch_id)
        assert batch is not None
        statement_total = s.exec(select(func.sum(StatementRow.total_cents))).one()
        lines = s.exec(select(func.count()).select_from(StatementLineRow)).one()
        figures.update(
            statements=len(ids), lines=lines, batch_items=batch.item_count,
            batch_total=str(Decimal(batch.total_cents).scaleb(-2)), csv_bytes=len(batch.csv.encode()),
        )
        assert batch.item_count == len(ids) == mentors
        assert batch.total_cents == statement_total
    figures["goal_s"] = round(figures["statements_s"] + figures["payout_s"], 2)
    figures["goal_cpu_s"] = round(figures["statements_cpu_s"] + figures["payout_cpu_s"], 2)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    service.db.dispose()
    return figures


def _child(mentors: int, store_url: str | None, workdir: str, out: Any) -> None:
    out.put(run(mentors, store_url, workdir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="2,000 mentors")
    size.add_argument("--full", action="store_true", help="50,000 mentors (the goal: < 30 s, < 1 GB)")
    parser.add_argument("--mentors", type=int, help="any other number of mentors")
    parser.add_argument("--store-url", help="a PostgreSQL URL (an empty database); default a fresh SQLite file")
    args = parser.parse_args()
    mentors = args.mentors or (50_000 if args.full else 2_000)
    workdir = tempfile.mkdtemp(prefix=f"payments-bench-{uuid.uuid4().hex[:6]}-")
    try:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        child = ctx.Process(target=_child, args=(mentors, args.store_url, workdir, out))
        child.start()
        figures = out.get()
        child.join()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for name, value in figures.items():
        print(f"{name:>14}: {value}")
    ok = figures["goal_s"] < 30 and figures["peak_rss_mb"] < 1024
    figures["load_average"] = round(os.getloadavg()[0], 1)
    figures["goal_met"] = ok
    print(f"{'load':>14}: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall time suffers when others run)")
    print(f"{'goal':>14}: statements + payout {figures['goal_s']} s (< 30 s), peak RSS {figures['peak_rss_mb']} MB "
          f"(< 1024 MB): {'met' if ok else 'NOT met'}")
    print(json.dumps(figures))  # last: the figures for `python -m bench`


if __name__ == "__main__":
    main()
