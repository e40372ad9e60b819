"""The one way a service process is put together.

A Service owns: its store (migrated at start), the outbox and its relay, the FastStream broker
with the service's consumers, periodic jobs on the injected clock, and a FastAPI app with
/health, /ready, /metrics and (when allowed) /admin/clock. Every service builds one:

    service = Service("activity", migrations=MIGRATIONS)
    consumer = service.consumer(MATCHING)          # consumer group "activity"

    @consumer.handles(MenteeMatched)
    def on_matched(ctx: HandlerContext, event: MenteeMatched) -> None: ...

    @service.job("month-close")
    def close_due_months() -> None: ...            # runs every scheduler interval

    app = service.http_app(router)                 # uvicorn services.activity.entrypoints.app:app

HTTP handlers change state through `service.transaction(cause)`, which commits the change and
its events together and wakes the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka.structs import RecordMetadata
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.clock import Clock, SystemClock
from shared.contracts.base import Event
from shared.contracts.envelope import Cause, Envelope
from shared.db import Database
from shared.errors import DomainError
from shared.logs import configure_logging
from shared.messaging import (
    MESSAGING_TABLES,
    DeadLetters,
    EventConsumer,
    KafkaPublisher,
    Outbox,
    OutboxRecord,
    OutboxRelay,
    RetryPolicy,
)
from shared.messaging.kafka import Headers
from shared.messaging.lag import consumer_lag
from shared.migrations import Migration, create_tables, migrate
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)
LAG_REFRESH_S = 5.0
REQUEST_ID_HEADER = "X-Request-ID"


@dataclass
class Transaction:
    """A unit of work for an HTTP request: the session and the events it emits."""

    session: Session
    outbox: Outbox
    cause: Cause

    def emit(self, event: Event, *, topic: str | None = None) -> Envelope:
        return self.outbox.add(self.session, event, self.cause, topic=topic)


@dataclass
class _Job:
    name: str
    fn: Callable[[], Any]
    interval_s: float


class ClockUpdate(BaseModel):
    now: datetime


async def request_cause(request: Request) -> Cause:
    """The cause of the events a request emits: its X-Request-ID (the gateway always sets one)."""
    return Cause.of_request(request.headers.get(REQUEST_ID_HEADER))


class _CrashingPublisher(KafkaPublisher):
    """Fault injection: SIGKILL once the broker has acknowledged the relay's Nth batch, before the
    relay marks its rows sent, so the next lease holder publishes them again."""

    def __init__(self, bootstrap: str, *, client_id: str, after: int) -> None:
        super().__init__(bootstrap, client_id=client_id)
        self.after, self.batches = after, 0

    async def send_many(
        self, records: Sequence[tuple[str, bytes, str, Headers]]
    ) -> list[RecordMetadata | BaseException]:
        results = await super().send_many(records)
        self.batches += 1
        if self.batches >= self.after:
            log.warning("fault injection: SIGKILL after published batch %d (%d records, unmarked)",
                        self.batches, len(records))
            os.kill(os.getpid(), signal.SIGKILL)
        return results


class Service:
    def __init__(
        self,
        name: str,
        *,
        migrations: list[Migration],
        settings: ServiceSettings | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.settings = settings or ServiceSettings()
        self.clock: Clock = clock or SystemClock(timedelta(seconds=self.settings.clock_offset_seconds))
        self.db = Database(self.settings.store_url(name))
        self.migrations = migrations
        self.outbox = Outbox(name, self.clock)
        bootstrap = self.settings.kafka_bootstrap_servers
        self.publisher = (
            _CrashingPublisher(bootstrap, client_id=name, after=self.settings.fault_crash_after_published)
            if self.settings.fault_crash_after_published > 0
            else KafkaPublisher(bootstrap, client_id=name)
        )
        self.relay = OutboxRelay(self.db, self.publisher, self.clock, topic_prefix=self.settings.topic_prefix)
        self.dead_letters = DeadLetters(self.publisher, self.clock)
        configure_logging(self.settings.log_level)
        # FastStream's own line per received and processed message is for debugging, not for a
        # consumer applying thousands of events a second.
        self.broker = KafkaBroker(bootstrap, client_id=name, logger=logging.getLogger(f"{name}.broker"),
                                  log_level=logging.DEBUG)
        self.retry = retry
        self.consumers: list[tuple[EventConsumer, tuple[str, ...]]] = []
        self.jobs: list[_Job] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._wired = False
        self._commits = 0
        self._lag_read_at = -LAG_REFRESH_S
        self.broker_connected = False
        self.metrics = CollectorRegistry()
        self._http_requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.metrics
        )
        self._http_latency = Histogram(
            "http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.metrics
        )
        self._consumed = Gauge(
            "messages_processed_total", "events applied", ["consumer"], registry=self.metrics
        )
        self._dead = Gauge(
            "messages_dead_lettered_total", "events sent to a DLQ", ["consumer"], registry=self.metrics
        )
        self._failed = Gauge(
            "messages_failed_total",
            "handler failures (retried or dead-lettered)",
            ["consumer"],
            registry=self.metrics,
        )
        self._published = Gauge(
            "outbox_published_total", "events published by the relay", registry=self.metrics
        )
        self._pending = Gauge("outbox_pending", "events waiting in the outbox", registry=self.metrics)
        self._lag = Gauge(
            "consumer_lag",
            "end offset minus committed offset, per consumer group and partition (from the broker)",
            ["group", "topic", "partition"],
            registry=self.metrics,
        )

    # -- composition ------------------------------------------------------------------------
    def consumer(self, *topics: str, group: str | None = None) -> EventConsumer:
        consumer = EventConsumer(
            self.settings.topic_prefix + (group or self.name),
            self.db,
            self.outbox,
            self.clock,
            self.dead_letters,
            policy=self.retry,
        )
        consumer.after_commit = self._after_consumer_commit
        self.consumers.append((consumer, topics))
        return consumer

    def _after_consumer_commit(self) -> None:
        self.relay.wake()
        if self.settings.fault_crash_after_commits > 0:
            self._commits += 1
            if self._commits >= self.settings.fault_crash_after_commits:
                # The DB transaction is committed, the Kafka offset is not: the worst moment to die.
                log.warning("%s: fault injection: SIGKILL after commit %d", self.name, self._commits)
                os.kill(os.getpid(), signal.SIGKILL)

    def job(
        self, name: str, interval_s: float | None = None
    ) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        """Run `fn` periodically (sync functions run in a thread). Jobs must be idempotent and
        safe when two instances run them at once; they read time from the service's clock."""

        def register(fn: Callable[[], Any]) -> Callable[[], Any]:
            self.jobs.append(_Job(name, fn, interval_s or self.settings.scheduler_interval_seconds))
            return fn

        return register

    @contextlib.contextmanager
    def transaction(self, cause: Cause) -> Iterator[Transaction]:
        with self.db.session() as session:
            yield Transaction(session, self.outbox, cause)
        self.relay.wake()

    async def run_job_now(self, name: str) -> None:
        for job in self.jobs:
            if job.name == name:
                await _call(job.fn)
                self.relay.wake()
                return
        raise KeyError(name)

    # -- lifecycle ----------------------------------------------------------------------------
    def migrate(self) -> None:
        migrate(
            self.db,
            f"{self.name}.messaging",
            [Migration(1, "messaging tables", create_tables(*MESSAGING_TABLES))],
        )
        migrate(self.db, self.name, self.migrations)

    async def start(self) -> None:
        self.settings.apply_to_process()
        await asyncio.to_thread(self.migrate)
        self.wire()
        self._tasks.append(asyncio.create_task(self._connect(), name=f"{self.name}-connect"))
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-relay"))
        for job in self.jobs:
            self._tasks.append(asyncio.create_task(self._every(job), name=f"{self.name}-{job.name}"))

    def wire(self) -> None:
        """Attach the consumers to the broker (once; also used to document the service)."""
        if self._wired:
            return
        self._wired = True
        for consumer, topics in self.consumers:
            prefixed = [self.settings.topic_prefix + t for t in topics]
            consumer.subscribe(self.broker, *prefixed, max_records=self.settings.consumer_max_records,
                               fetch_min_bytes=self.settings.consumer_fetch_min_bytes,
                               fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms)

    async def _connect(self) -> None:
        """Connect consumers; while the broker is unreachable keep trying (HTTP stays up, not ready)."""
        delay = 0.5
        while True:
            try:
                if self.consumers:
                    await self.broker.start()
                await self.publisher.start()
                self.broker_connected = True
                return
            except Exception as exc:
                log.warning("%s: broker not reachable yet (%s); retrying in %.1fs", self.name, exc, delay)
                with contextlib.suppress(Exception):
                    await self.broker.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _every(self, job: _Job) -> None:
        while True:
            try:
                await _call(job.fn)
                self.relay.wake()
            except Exception:
                log.exception("%s: job %s failed; it runs again next interval", self.name, job.name)
            await asyncio.sleep(job.interval_s)

    async def stop(self) -> None:
        self.relay.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        with contextlib.suppress(Exception):
            self.relay.release_lease()
        await self.publisher.stop()
        self.db.dispose()

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            await asyncio.to_thread(self.db.ping)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"failed: {exc}"
        try:
            ok = (
                self.broker_connected and await self.broker.ping(timeout=2.0)
                if self.consumers
                else self.broker_connected
            )
            checks["broker"] = "ok" if ok else "not connected"
        except Exception as exc:
            checks["broker"] = f"failed: {exc}"
        checks["ready"] = all(v == "ok" for v in checks.values())
        return checks

    def _refresh_metrics(self) -> None:
        for consumer, _ in self.consumers:
            self._consumed.labels(consumer.name).set(consumer.stats.processed)
            self._dead.labels(consumer.name).set(consumer.stats.dead_lettered)
            self._failed.labels(consumer.name).set(consumer.stats.retries + consumer.stats.dead_lettered)
        self._published.set(self.relay.published_total)
        with self.db.session() as s:
            pending = s.exec(
                select(func.count()).select_from(OutboxRecord).where(col(OutboxRecord.published_at).is_(None))
            ).one()
        self._pending.set(pending)

    async def _refresh_lag(self) -> None:
        """Lag per partition of this service's groups; skipped (kept stale) if the broker is slow.

        Reading it opens an admin client and a consumer on the broker, so it is read at most once
        per LAG_REFRESH_S however often /metrics is scraped."""
        now = time.monotonic()
        if now - self._lag_read_at < LAG_REFRESH_S:
            return
        self._lag_read_at = now
        for consumer, _ in self.consumers:
            try:
                rows = await asyncio.wait_for(
                    consumer_lag(self.settings.kafka_bootstrap_servers, consumer.name), timeout=3.0
                )
            except Exception as exc:
                log.debug("%s: consumer lag not available: %s", self.name, exc)
                continue
            for row in rows:
                self._lag.labels(row.group, row.topic, str(row.partition)).set(row.lag)

    # -- HTTP ---------------------------------------------------------------------------------
    def http_app(self, *routers: APIRouter, title: str | None = None, version: str = "1.0") -> FastAPI:
        service = self

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await service.start()
            try:
                yield
            finally:
                await service.stop()

        app = FastAPI(title=title or f"{self.name} service", version=version, lifespan=lifespan)
        app.state.service = self
        for router in routers:
            app.include_router(router)

        app.add_middleware(_Measured, requests=self._http_requests, latency=self._http_latency)

        @app.exception_handler(DomainError)
        async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
            return JSONResponse(exc.body(), status_code=exc.status)

        @app.exception_handler(RequestValidationError)
        async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
            return JSONResponse(validation_body(exc.errors()), status_code=422)

        @app.get("/health", tags=["ops"])
        async def health() -> dict[str, str]:
            return {"status": "alive", "service": self.name}

        @app.get("/ready", tags=["ops"])
        async def ready() -> JSONResponse:
            checks = await self.readiness()
            return JSONResponse(checks, status_code=200 if checks["ready"] else 503)

        @app.get("/metrics", tags=["ops"])
        async def metrics() -> Response:
            await asyncio.to_thread(self._refresh_metrics)
            await self._refresh_lag()
            return Response(generate_latest(self.metrics), media_type=CONTENT_TYPE_LATEST)

        if self.settings.allow_clock_control:

            @app.post("/admin/clock", tags=["ops"])
            async def set_clock(update: ClockUpdate) -> dict[str, str]:
                setter = getattr(self.clock, "set_now", None)
                if setter is None:
                    raise DomainError("now", "this service's clock cannot be set")
                setter(update.now)
                return {"now": self.clock.now().isoformat()}

            @app.post("/admin/jobs/{name}", tags=["ops"])
            async def run_job(name: str) -> dict[str, str]:
                try:
                    await self.run_job_now(name)
                except KeyError as exc:
                    raise DomainError("name", f"no job named {name!r}", "not_found") from exc
                return {"ran": name, "at": self.clock.now().isoformat()}

        return app


MAX_PROBLEMS = 100


def validation_body(errors: Any) -> dict[str, Any]:
    """The one 4xx body for invalid requests: the first MAX_PROBLEMS problems, and how many more
    there were (a body of 200,000 unknown keys must not get a 16 MB answer)."""
    detail = []
    errors = list(errors)
    for err in errors[:MAX_PROBLEMS]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        detail.append(
            {
                "field": ".".join(loc) or "body",
                "reason": err.get("msg", "invalid"),
                "code": err.get("type", "invalid"),
            }
        )
    if len(errors) > MAX_PROBLEMS:
        detail.append({"field": "body", "reason": f"{len(errors) - MAX_PROBLEMS} more problems not listed",
                       "code": "more_problems"})
    return {"detail": detail}


async def _call(fn: Callable[[], Any]) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn()
    return await asyncio.to_thread(fn)


class _Measured:
    """Counts each HTTP request and times it, by route template and status.

    Plain ASGI: Starlette's @app.middleware("http") runs each request through a task group and
    memory streams, measurable per request when the service answers a few hundred a second."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The router writes the matched route into this same scope.
            path = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(scope["method"], path, str(status)).inc()
            self.latency.labels(scope["method"], path).observe(time.perf_counter() - started)
