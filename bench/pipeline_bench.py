"""The event pipeline against the limit of this machine, measured in one run on one broker.

The limit: raw aiokafka producing and consuming N records of the size and headers of a
MeetingLogged record (measured before, between and after the other stages; the median is used).

The shared library alone (a bench event, SQLite):
  outbox relay       N events written through the outbox and published by the relay
  consumer (inbox)   the same N applied by an EventConsumer (inbox row + one ORM effect row each)
  batched consumer   the same N applied by a batch handler (inbox rows + one executemany per run)

The real services, built from their own create_app wiring (services/*/entrypoints), in this
process, on SQLite, with the real broker. One program, P partnerships (two per mentor), N
meetings logged in September and October; each stage runs alone, on the backlog the previous
stage left:
  log meetings       activity's log_meeting command (the one the HTTP API runs), 500 per
                     transaction: meeting + time entry rows, MeetingLogged + TimeEntryRecorded
                     into the outbox
  activity relay     activity's relay publishes those 2N outbox rows
  activity consumer  activity's consumer group reads the 2N records and applies the N
                     MeetingLogged (inbox, meeting view, compliance re-evaluation, status
                     compare-and-set, PartnershipAtRisk through the outbox on a change)
  at-risk relay      the PartnershipAtRisk events it caused, published
  notify consumer    notify's group applies MeetingLogged, TimeEntryRecorded, PartnershipAtRisk
                     (program activity, partnership changes, emails recorded to send)
  month close        activity's month-close job: September and October closed, MonthClosed per
                     mentor and month carrying the N time entries (outbox)
  month-close relay  those MonthClosed published
  payments consumer  payments' group reads the activity topic and prepares a statement per
                     MonthClosed (the time entries priced into lines)

Every stage reports meetings/s (N over the stage's seconds) and its ratio to raw consume (a
consumer) or raw produce (a relay or a command). A consumer stage is timed from its first batch
to the last (the group join is not counted, nor is it for raw consume).

    uv run python -m bench.pipeline_bench --quick|--full [--rounds K] [--bootstrap HOST:PORT]
        [--profile STAGE [--profiler pyinstrument|py-spy]]   (profile one stage: pyinstrument's
        text on stderr, or py-spy's collapsed stacks of every thread in bench/results/)
    BENCH_UNTIL=activity-consumer stops the round after that stage (iterating on it)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker
from sqlalchemy import func, insert
from sqlmodel import Field, SQLModel, col, select

from deploy.kafka.local import LocalKafka, free_port
from services.activity.domain.meetings import Actor, MeetingDraft, Role
from services.activity.entrypoints.app import build_service as build_activity
from services.activity.service_layer.commands import log_meeting
from services.activity.service_layer.month_close import close_all_programs
from services.notify.entrypoints.app import build as build_notify
from services.notify.settings import NotifySettings
from services.payments.adapters.tables import StatementRow
from services.payments.entrypoints.app import build_service as build_payments
from shared.clock import ManualClock
from shared.contracts.activity import MeetingLogged
from shared.contracts.base import Event, event
from shared.contracts.envelope import Cause, new_envelope
from shared.contracts.matching import MenteeEnrolled, MenteeMatched, MentorEnrolled, ProgramConfigured
from shared.contracts.program import ProgramPolicy
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
from shared.messaging.admin import ensure_topics
from shared.migrations import Migration, create_tables, migrate
from shared.service import Service
from shared.settings import ServiceSettings
from shared.topics import TopicSpec

STAGES = (
    "library-relay", "library-consumer", "library-consumer-batched", "log-meetings", "activity-relay", "activity-consumer", "at-risk-relay", "notify-consumer",
    "month-close", "month-close-relay", "payments-consumer",
)
GOAL = 0.25  # the activity consumer at a quarter of raw consume or more


# -- the broker -------------------------------------------------------------------------------
BROKER_PIDS: dict[str, int] = {}  # bootstrap -> process id, of the brokers started here (CPU figures)


@contextmanager
def broker_for(bootstrap: str | None) -> Any:
    if bootstrap:
        yield bootstrap
        return
    data = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=data)
    kafka.start()
    if (pid := kafka.pid()) is not None:
        BROKER_PIDS[kafka.bootstrap] = pid
    try:
        yield kafka.bootstrap
    finally:
        BROKER_PIDS.pop(kafka.bootstrap, None)
        kafka.stop()
        shutil.rmtree(data, ignore_errors=True)


# -- profiling --------------------------------------------------------------------------------
PY_SPY_OUT = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Profile:
    stage: str
    tool: str = "pyinstrument"


@contextlib.asynccontextmanager
async def profiled(stage: str, wanted: Profile | None) -> AsyncIterator[None]:
    """Profile one stage with pyinstrument or py-spy.

    pyinstrument does not see the store work in worker threads (asyncio.to_thread): while it
    profiles, that work runs inline, on the event loop. py-spy samples every thread as it runs
    (250 Hz, without pausing the process) and writes collapsed stacks, one line per stack with
    its thread, to bench/results/py-spy-<stage>.txt."""
    if wanted is None or stage != wanted.stage:
        yield
        return
    if wanted.tool == "py-spy":
        PY_SPY_OUT.mkdir(exist_ok=True)
        out = PY_SPY_OUT / f"py-spy-{stage}.txt"
        spy = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("py-spy")), "record", "--rate", "250", "--nonblocking",
            "--threads", "--format", "raw", "--output", str(out), "--pid", str(os.getpid()))
        await asyncio.sleep(1.0)  # py-spy attaches
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its samples when interrupted
            await spy.wait()
            print(f"py-spy samples of {stage}: {out}", file=sys.stderr, flush=True)
        return
    from pyinstrument import Profiler

    real = asyncio.to_thread

    async def inline(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    asyncio.to_thread = inline
    profiler = Profiler(interval=0.0005, async_mode="enabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        asyncio.to_thread = real
        print(profiler.output_text(unicode=True, color=False, show_all=False), file=sys.stderr, flush=True)


# -- raw aiokafka: the limit ------------------------------------------------------------------
def sample_meeting(i: int) -> MeetingLogged:
    p = i % 5000
    return MeetingLogged(
        meeting_id=uuid.UUID(int=i).hex, partnership_id=f"partnership-{p:06d}", program_id=PROGRAM,
        mentor_id=f"mentor-{p // 2:06d}", mentee_id=f"mentee-{p:06d}",
        started_at=datetime(2026, 10, 2, 15, tzinfo=UTC), duration_minutes=45, mode="video",
        intentional=True, logged_by=f"mentor-{p // 2:06d}",
    )


def sample_record(clock: ManualClock) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The value and headers of a MeetingLogged record as activity's relay sends it."""
    ev = sample_meeting(1)
    env = new_envelope(event_type=ev.event_type, event_version=ev.event_version, key=ev.aggregate_key(),
                       producer="activity", clock=clock, cause=Cause.new())
    return ev.to_json(), env.to_headers()


async def raw(bootstrap: str, n: int, value: bytes, headers: list[tuple[str, bytes]],
              passes: int = 3) -> dict[str, float]:
    """N records produced (idempotent, acks=all, as the relay does), then consumed `passes` times
    (a new group each time) committing after each fetch, as the consumers do. Consume is timed
    from the first record fetched; the median pass is kept (one pass is well under a second)."""
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, [TopicSpec(topic, 6, "partnership", 3600_000, "bench")])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    started, cpu = time.perf_counter(), time.process_time()
    futures = [await producer.send(topic, value, key=f"p-{i % 5000}".encode(), headers=headers)
               for i in range(n)]
    await asyncio.gather(*futures)
    produce_s, produce_cpu = time.perf_counter() - started, time.process_time() - cpu
    await producer.stop()
    consumes: list[tuple[float, float]] = []
    for _ in range(passes):
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"raw-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        first: float | None = None
        first_cpu = 0.0
        seen = 0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            got = sum(len(v) for v in batch.values())
            if got and first is None:
                first, first_cpu = time.perf_counter(), time.process_time()
            seen += got
            await consumer.commit()
        consumes.append((time.perf_counter() - (first or time.perf_counter()), time.process_time() - first_cpu))
        await consumer.stop()
    consume_s, consume_cpu = sorted(consumes)[len(consumes) // 2]
    return {"produce_per_s": n / produce_s, "consume_per_s": n / consume_s,
            "produce_cpu_us": produce_cpu / n * 1e6, "consume_cpu_us": consume_cpu / n * 1e6}


# -- the shared library alone -----------------------------------------------------------------
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


def bench_sample(i: int) -> BenchMeeting:
    return BenchMeeting(
        partnership_id=f"p-{i % 5000}",
        meeting_id=f"m-{i}",
        minutes=30 + i % 60,
        notes="Discussed questioning strategies and planned the next observation." * 2,
    )


async def library_alone(bootstrap: str, n: int, workdir: Path, profile: Profile | None
                        ) -> tuple[float, float, float]:
    topic = f"bench.pipe.{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, [TopicSpec(t, 6, "partnership", 3600_000, "bench")
                                    for t in (topic, topic + ".dlq")])
    db = Database(f"sqlite:///{workdir / 'library.db'}")
    migrate(db, "bench", [Migration(1, "all", create_tables(*MESSAGING_TABLES, BenchEffect))])
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    outbox = Outbox("bench", clock)
    for start in range(0, n, 1000):
        with db.session() as s:
            for i in range(start, min(start + 1000, n)):
                outbox.add(s, bench_sample(i), Cause.new(), topic=topic)
    publisher = KafkaPublisher(bootstrap)
    relay = OutboxRelay(db, publisher, clock, batch_size=1000)
    async with profiled("library-relay", profile):
        started = time.perf_counter()
        sent = 0
        while sent < n:
            sent += await relay.publish_once()
        relay_s = time.perf_counter() - started

    async def consume(name: str, batched: bool) -> float:
        """The N events applied by a consumer group of its own: one ORM row per event, or (batched)
        one executemany per run of events through a batch handler."""
        consumer = EventConsumer(name, db, outbox, clock, DeadLetters(publisher, clock))
        effects = BenchEffect.__table__  # type: ignore[attr-defined]
        if batched:
            @consumer.handles_batch(BenchMeeting)
            def apply_run(run: Sequence[tuple[HandlerContext, BenchMeeting]]) -> None:
                run[0][0].session.execute(insert(effects), [
                    {"meeting_id": m.meeting_id, "minutes": m.minutes} for _, m in run])
        else:
            @consumer.handles(BenchMeeting)
            def apply(ctx: HandlerContext, m: BenchMeeting) -> None:
                ctx.session.add(BenchEffect(meeting_id=m.meeting_id, minutes=m.minutes))

        timer = BatchTimer(consumer)
        broker = KafkaBroker(bootstrap, logger=None)
        consumer.subscribe(broker, topic, max_records=500, batch_timeout_ms=50)
        async with profiled(f"library-consumer{'-batched' if batched else ''}", profile):
            await broker.start()
            seconds, _ = await timer.until(lambda: consumer.stats.processed >= n)
        await broker.stop()
        return seconds

    consume_s = await consume("bench-consumer", batched=False)
    batched_s = await consume("bench-consumer-batched", batched=True)
    await publisher.stop()
    db.dispose()
    return n / relay_s, n / consume_s, n / batched_s


# -- the real services ------------------------------------------------------------------------
PROGRAM = "bench-program"
MATCHED_AT = datetime(2026, 9, 1, 15, tzinfo=UTC)
FIRST_MEETING = datetime(2026, 9, 2, 15, tzinfo=UTC)
LOG_NOW = datetime(2026, 10, 31, 23, tzinfo=UTC)  # every meeting is in the past
CLOSE_NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)  # September and October are due to close
MEETINGS_PER_TX = 500


class BatchTimer:
    """Times a consumer from the start of its first batch to the end of its last one."""

    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer
        self.first: float | None = None
        self.last = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self.busy = 0.0  # seconds inside process_batch (the rest: fetching, committing offsets)
        self.batches = 0
        self.records = 0
        inner = consumer.process_batch

        async def timed(records: Sequence[Any]) -> None:
            began = time.perf_counter()
            if self.first is None:
                self.first, self.cpu_first = began, time.process_time()
            await inner(records)
            self.records += len(records)
            self.batches += 1
            self.last, self.cpu_last = time.perf_counter(), time.process_time()
            self.busy += self.last - began

        consumer.process_batch = timed  # type: ignore[method-assign]

    async def until(self, done: Callable[[], bool], timeout_s: float = 900) -> tuple[float, float]:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.consumer.name}: not done after {timeout_s} s ({self.consumer.stats})")
            await asyncio.sleep(0.005)
        assert self.first is not None
        return self.last - self.first, self.cpu_last - self.cpu_first


def seen(consumer: EventConsumer) -> int:
    s = consumer.stats
    return s.processed + s.duplicates + s.ignored + s.dead_lettered


@dataclass
class Plant:
    """The three services' settings on one broker, one data folder and one clock."""

    bootstrap: str
    workdir: Path
    prefix: str
    clock: ManualClock

    def settings(self) -> ServiceSettings:
        return ServiceSettings(kafka_bootstrap_servers=self.bootstrap, data_dir=self.workdir,
                               topic_prefix=self.prefix, log_level="WARNING")

    def activity(self) -> Service:
        return build_activity(self.settings(), self.clock)

    def payments(self) -> Service:
        return build_payments(self.settings(), self.clock)

    def notify(self) -> Service:
        settings = NotifySettings(**self.settings().model_dump(), embedded_sink=False,
                                  mail_dir=self.workdir / "mail")
        return build_notify(settings, self.clock).service


async def open_service(service: Service) -> EventConsumer:
    """The service's store migrated and its consumer wired, nothing started (no jobs, no relay
    loop): each stage below drives one part."""
    await asyncio.to_thread(service.migrate)
    service.wire()
    return service.consumers[0][0]


def seed_events(partnerships: int) -> list[Event]:
    mentors = max(1, partnerships // 2)
    events: list[Event] = [ProgramConfigured(program_id=PROGRAM, name="Bench program", policy=ProgramPolicy())]
    events += [MentorEnrolled(person_id=f"mentor-{m:06d}", program_id=PROGRAM, name=f"Mentor {m}",
                              email=f"mentor{m}@bench.test", capacity=2) for m in range(mentors)]
    events += [MenteeEnrolled(person_id=f"mentee-{p:06d}", program_id=PROGRAM, name=f"Mentee {p}",
                              email=f"mentee{p}@bench.test") for p in range(partnerships)]
    events += [MenteeMatched(partnership_id=f"partnership-{p:06d}", program_id=PROGRAM,
                             mentor_id=f"mentor-{p // 2 % mentors:06d}", mentee_id=f"mentee-{p:06d}",
                             started_at=MATCHED_AT) for p in range(partnerships)]
    return events


async def publish(bootstrap: str, prefix: str, events: list[Event], clock: ManualClock) -> None:
    publisher = KafkaPublisher(bootstrap, client_id="bench-matching")
    records = []
    for ev in events:
        env = new_envelope(event_type=ev.event_type, event_version=ev.event_version, key=ev.aggregate_key(),
                           producer="matching", clock=clock, cause=Cause.new())
        records.append((prefix + ev.topic, ev.to_json(), env.key, env.to_headers()))
    for i in range(0, len(records), 5000):
        results = await publisher.send_many(records[i:i + 5000])
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise RuntimeError(f"seeding failed: {failed[0]}")
    await publisher.stop()


async def seed(plant: Plant, partnerships: int) -> None:
    """Matching's events projected by the three services (not timed)."""
    events = seed_events(partnerships)
    await publish(plant.bootstrap, plant.prefix, events, plant.clock)
    services = [plant.activity(), plant.notify(), plant.payments()]
    consumers = [await open_service(s) for s in services]
    for s in services:
        await s.broker.start()
    deadline = time.monotonic() + 600
    while any(seen(c) < len(events) for c in consumers):
        if time.monotonic() > deadline:
            raise TimeoutError(f"seeding: {[c.stats for c in consumers]}")
        await asyncio.sleep(0.05)
    for s in services:
        await s.stop()


def drafts(n: int, partnerships: int) -> Iterator[tuple[MeetingDraft, Actor]]:
    """N meetings, round-robin over the partnerships, each partnership's in time order between
    2 September and 30 October."""
    per = -(-n // partnerships)
    step = timedelta(minutes=(58 * 24 * 60) // per)
    mentors = max(1, partnerships // 2)
    for i in range(n):
        p, k = i % partnerships, i // partnerships
        draft = MeetingDraft(
            partnership_id=f"partnership-{p:06d}", started_at=FIRST_MEETING + k * step + timedelta(minutes=p % 97),
            duration_minutes=30 + 15 * (i % 4), mode="video", intentional=k % 3 != 2,
            topics=("planning",), notes="Discussed questioning strategies.",
        )
        yield draft, Actor(f"mentor-{p // 2 % mentors:06d}", Role.MENTOR)


def log_meetings(activity: Service, n: int, partnerships: int) -> None:
    now = activity.clock.now()
    batch: list[tuple[MeetingDraft, Actor]] = []

    def flush() -> None:
        with activity.transaction(Cause.new()) as tx:
            for draft, actor in batch:
                log_meeting(tx, draft, actor, now)
        batch.clear()

    for item in drafts(n, partnerships):
        batch.append(item)
        if len(batch) == MEETINGS_PER_TX:
            flush()
    if batch:
        flush()


def unpublished(db: Database) -> int:
    with db.session() as s:
        return int(s.exec(select(func.count()).select_from(OutboxRecord)
                          .where(col(OutboxRecord.published_at).is_(None))).one())


async def drain_relay(service: Service) -> tuple[int, float, float]:
    """Publish the service's outbox backlog with its relay; return rows, seconds, CPU seconds."""
    pending = await asyncio.to_thread(unpublished, service.db)
    started, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while sent < pending:
        sent += await service.relay.publish_once()
    return sent, time.perf_counter() - started, time.process_time() - cpu


async def consume(service: Service, total: int) -> tuple[float, float, EventConsumer, dict[str, Any]]:
    """Start the service's consumer on its backlog and time it until it has read `total` records."""
    consumer = service.consumers[0][0]
    timer = BatchTimer(consumer)
    await service.broker.start()
    seconds, cpu = await timer.until(lambda: seen(consumer) >= total)
    await service.broker.stop()
    return seconds, cpu, consumer, {"batches": timer.batches, "in_batches_share": round(timer.busy / seconds, 2)}


async def services_round(bootstrap: str, n: int, partnerships: int, workdir: Path,
                         profile: Profile | None) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(bootstrap, prefix=prefix)
    plant = Plant(bootstrap, workdir, prefix, ManualClock(MATCHED_AT + timedelta(hours=1)))
    await seed(plant, partnerships)
    stages: dict[str, dict[str, Any]] = {}

    def stage(name: str, records: int, seconds: float, cpu: float, **extra: Any) -> None:
        stages[name] = {"records": records, "seconds": round(seconds, 3),
                        "cpu_us_per_meeting": round(cpu / n * 1e6, 1), **extra}
        share = f"  {extra['in_batches_share']:.0%} in batches" if "in_batches_share" in extra else ""
        print(f"  {name:<18} {records:>8,} records {seconds:7.2f} s  {n / seconds:9,.0f} meetings/s  "
              f"CPU {cpu / n * 1e6:6.1f} us/meeting{share}", flush=True)

    plant.clock.set(LOG_NOW)
    activity = plant.activity()
    await open_service(activity)
    leftover, _, _ = await drain_relay(activity)  # nothing is expected; keep it out of the stages
    async with profiled("log-meetings", profile):
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.to_thread(log_meetings, activity, n, partnerships)
        stage("log-meetings", n, time.perf_counter() - started, time.process_time() - cpu,
              note=f"{MEETINGS_PER_TX} per transaction")
    async with profiled("activity-relay", profile):
        logged_records, seconds, cpu = await drain_relay(activity)
    stage("activity-relay", logged_records, seconds, cpu)
    async with profiled("activity-consumer", profile):
        seconds, cpu, consumer, timing = await consume(activity, logged_records)
    stage("activity-consumer", logged_records, seconds, cpu, **timing, applied=consumer.stats.processed,
          ignored=consumer.stats.ignored, dead_lettered=consumer.stats.dead_lettered)
    if consumer.stats.processed != n or consumer.stats.dead_lettered:
        raise AssertionError(f"activity applied {consumer.stats}")
    if os.environ.get("BENCH_UNTIL") == "activity-consumer":  # iterating on that stage
        await activity.stop()
        return stages
    async with profiled("at-risk-relay", profile):
        at_risk, seconds, cpu = await drain_relay(activity)
    stage("at-risk-relay", at_risk, seconds, cpu, note="PartnershipAtRisk caused by the meetings")
    on_topic = leftover + logged_records + at_risk

    notify = plant.notify()
    await open_service(notify)
    async with profiled("notify-consumer", profile):
        seconds, cpu, consumer, timing = await consume(notify, on_topic)
    stage("notify-consumer", on_topic, seconds, cpu, **timing, applied=consumer.stats.processed,
          dead_lettered=consumer.stats.dead_lettered)
    await notify.stop()

    plant.clock.set(CLOSE_NOW)
    async with profiled("month-close", profile):
        started, cpu = time.perf_counter(), time.process_time()
        closes = await asyncio.to_thread(close_all_programs, activity.db, activity.outbox, plant.clock.now())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    entries = sum(c.entries for c in closes)
    stage("month-close", sum(c.mentors for c in closes), seconds, cpu, months=[c.month for c in closes],
          entries=entries)
    if entries != n:
        raise AssertionError(f"month close carried {entries} entries, not {n}")
    async with profiled("month-close-relay", profile):
        closed, seconds, cpu = await drain_relay(activity)
    stage("month-close-relay", closed, seconds, cpu, note="MonthClosed, one per mentor and month")
    await activity.stop()
    on_topic += closed

    payments = plant.payments()
    await open_service(payments)
    async with profiled("payments-consumer", profile):
        seconds, cpu, consumer, timing = await consume(payments, on_topic)
    with payments.db.session() as s:
        statements = int(s.exec(select(func.count()).select_from(StatementRow)).one())
    stage("payments-consumer", on_topic, seconds, cpu, **timing, applied=consumer.stats.processed,
          statements=statements)
    await payments.stop()
    return stages


# -- the run ----------------------------------------------------------------------------------
async def one_round(bootstrap: str, n: int, partnerships: int, profile: Profile | None,
                    library_only: bool = False) -> dict[str, Any]:
    value, headers = sample_record(ManualClock(LOG_NOW))
    raw_runs = []
    print(f"raw aiokafka, {n:,} records of {len(value)} bytes (+ envelope headers)", flush=True)
    raw_runs.append(await raw(bootstrap, n, value, headers))
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        print("shared library alone (bench event, SQLite)", flush=True)
        relay_rate, consume_rate, batched_rate = await library_alone(bootstrap, n, Path(tmp), profile)
        raw_runs.append(await raw(bootstrap, n, value, headers))
        if library_only:
            print(json.dumps({"library_relay_per_s": round(relay_rate), "library_consumer_per_s": round(consume_rate),
                              "library_batched_consumer_per_s": round(batched_rate), "raw": raw_runs}))
            raise SystemExit(0)
        print(f"real services (SQLite): {n:,} meetings, {partnerships:,} partnerships", flush=True)
        stages = await services_round(bootstrap, n, partnerships, Path(tmp), profile)
    raw_runs.append(await raw(bootstrap, n, value, headers))

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in raw_runs))

    raw_produce, raw_consume = median("produce_per_s"), median("consume_per_s")
    out: dict[str, Any] = {
        "raw_produce_per_s": round(raw_produce),
        "raw_consume_per_s": round(raw_consume),
        "raw_produce_cpu_us": round(median("produce_cpu_us"), 1),
        "raw_consume_cpu_us": round(median("consume_cpu_us"), 1),
        "raw_runs": [{k: round(v, 1) for k, v in r.items()} for r in raw_runs],
        "library_relay_per_s": round(relay_rate),
        "library_consumer_per_s": round(consume_rate),
        "library_relay_vs_raw_produce": round(relay_rate / raw_produce, 3),
        "library_consumer_vs_raw_consume": round(consume_rate / raw_consume, 3),
        "library_batched_consumer_per_s": round(batched_rate),
        "library_batched_consumer_vs_raw_consume": round(batched_rate / raw_consume, 3),
        "stages": {},
    }
    for name, figures in stages.items():
        consumer = name.endswith("consumer")
        per_s = n / figures["seconds"]
        against = raw_consume if consumer else raw_produce
        out["stages"][name] = {
            **figures, "meetings_per_s": round(per_s), "vs_raw": round(per_s / against, 3),
            "records_per_s": round(figures["records"] / figures["seconds"]),
            "records_vs_raw": round(figures["records"] / figures["seconds"] / against, 3),
            "vs": "raw consume" if consumer else "raw produce",
        }
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def summarise(n: int, partnerships: int, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    last = rounds[-1]
    result: dict[str, Any] = {
        "events": n,
        "partnerships": partnerships,
        "rounds": len(rounds),
        "store": "sqlite",
        "load_average": round(os.getloadavg()[0], 1),
        "raw_produce_per_s": spread([r["raw_produce_per_s"] for r in rounds]),
        "raw_consume_per_s": spread([r["raw_consume_per_s"] for r in rounds]),
        "raw_consume_cpu_us": spread([r["raw_consume_cpu_us"] for r in rounds]),
        "library_relay_vs_raw_produce": spread([r["library_relay_vs_raw_produce"] for r in rounds]),
        "library_consumer_vs_raw_consume": spread([r["library_consumer_vs_raw_consume"] for r in rounds]),
        "library_batched_consumer_vs_raw_consume": spread(
            [r["library_batched_consumer_vs_raw_consume"] for r in rounds]),
        "stages": {},
    }
    for name in last["stages"]:
        figures = [r["stages"][name] for r in rounds]
        result["stages"][name] = {
            "records": last["stages"][name]["records"],
            "vs": last["stages"][name]["vs"],
            **{k: spread([f[k] for f in figures])
               for k in ("meetings_per_s", "vs_raw", "records_per_s", "records_vs_raw", "cpu_us_per_meeting")},
        }
    activity = result["stages"]["activity-consumer"]
    result["activity_consumer_vs_raw_consume"] = activity["vs_raw"]["median"]
    result["activity_consumer_records_vs_raw_consume"] = activity["records_vs_raw"]["median"]
    result["goal_activity_consumer_at_least_25pct"] = activity["vs_raw"]["median"] >= GOAL
    result["per_round"] = rounds
    return result


def table(result: dict[str, Any]) -> str:
    n = result["events"]
    lines = [
        f"{n:,} meetings, {result['partnerships']:,} partnerships, {result['rounds']} round(s), SQLite; "
        f"load average {result['load_average']} on {os.cpu_count()} cores",
        f"raw produce {result['raw_produce_per_s']['median']:,.0f}/s, raw consume "
        f"{result['raw_consume_per_s']['median']:,.0f}/s, {result['raw_consume_cpu_us']['median']} us CPU per "
        "record consumed (median of before/middle/after each round)",
        "vs raw: the stage's meetings/s over raw records/s (median, min-max over rounds); records: the stage's "
        "records/s over raw's; CPU us: this process's CPU per meeting in the stage",
        f"{'stage':<18} {'records':>8} {'meetings/s':>10} {'vs raw':>6} {'(min-max)':>13} {'records':>7} "
        f"{'CPU us':>7}  against",
        f"{'library relay':<18} {n:>8,} {'':>10} {result['library_relay_vs_raw_produce']['median']:>6.3f} "
        f"{_range(result['library_relay_vs_raw_produce'])} {'':>7} {'':>7}  raw produce",
        f"{'library consumer':<18} {n:>8,} {'':>10} {result['library_consumer_vs_raw_consume']['median']:>6.3f} "
        f"{_range(result['library_consumer_vs_raw_consume'])} {'':>7} {'':>7}  raw consume",
        f"{'library batched':<18} {n:>8,} {'':>10} "
        f"{result['library_batched_consumer_vs_raw_consume']['median']:>6.3f} "
        f"{_range(result['library_batched_consumer_vs_raw_consume'])} {'':>7} {'':>7}  raw consume",
    ]
    for name, s in result["stages"].items():
        lines.append(f"{name:<18} {s['records']:>8,} {s['meetings_per_s']['median']:>10,.0f} "
                     f"{s['vs_raw']['median']:>6.3f} {_range(s['vs_raw'])} {s['records_vs_raw']['median']:>7.3f} "
                     f"{s['cpu_us_per_meeting']['median']:>7.1f}  {s['vs']}")
    ok = "met" if result["goal_activity_consumer_at_least_25pct"] else "MISSED"
    lines.append(f"goal: activity consumer >= {GOAL:.2f} of raw consume (meetings/s over raw records/s): {ok} "
                 f"({result['activity_consumer_vs_raw_consume']:.3f}; its records/s over raw's: "
                 f"{result['activity_consumer_records_vs_raw_consume']:.3f})")
    return "\n".join(lines)


def _range(s: dict[str, float]) -> str:
    return f"({s['min']:.3f}-{s['max']:.3f})".rjust(13)


async def main_async(n: int, partnerships: int, rounds: int, bootstrap: str, profile: Profile | None,
                     library_only: bool = False) -> dict[str, Any]:
    done = []
    for i in range(rounds):
        print(f"== round {i + 1} of {rounds}", flush=True)
        done.append(await one_round(bootstrap, n, partnerships, profile if i == 0 else None,
                                   library_only))
    return summarise(n, partnerships, done)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="20,000 meetings, 2,000 partnerships, 1 round")
    size.add_argument("--full", action="store_true", help="50,000 meetings, 5,000 partnerships, 2 rounds")
    parser.add_argument("--events", type=int, default=None, help="meetings (default by size)")
    parser.add_argument("--partnerships", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: start one)")
    parser.add_argument("--profile", choices=STAGES, default=None,
                        help="profile this stage (first round): pyinstrument's text on stderr, or py-spy's samples")
    parser.add_argument("--profiler", choices=("pyinstrument", "py-spy"), default="pyinstrument")
    parser.add_argument("--library-only", action="store_true", help="only raw and the shared library alone")
    args = parser.parse_args(argv)
    n = args.events or (50_000 if args.full else 20_000)
    partnerships = args.partnerships or max(2, n // 10)
    rounds = args.rounds or (2 if args.full else 1)
    with broker_for(args.bootstrap) as bootstrap:
        profile = Profile(args.profile, args.profiler) if args.profile else None
        result = asyncio.run(main_async(n, partnerships, rounds, bootstrap, profile,
                                           args.library_only))
    print(table(result), flush=True)
    print(json.dumps(result))  # last: `python -m bench` keeps the last JSON object printed
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
