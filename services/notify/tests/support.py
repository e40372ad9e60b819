"""Test helpers: a real SMTP server (aiosmtpd) that keeps what it receives and can be told to
refuse, and a notify store to apply events to directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlmodel import select

from services.notify.adapters.tables import MessageRow
from services.notify.entrypoints.app import NotifyRuntime, build
from services.notify.settings import NotifySettings
from shared.clock import ManualClock
from shared.contracts.base import Event
from shared.contracts.envelope import Cause, new_envelope
from shared.contracts.envelope import Envelope as EventEnvelope
from shared.contracts.matching import MenteeEnrolled, MenteeMatched, MentorEnrolled, ProgramConfigured
from shared.contracts.program import ProgramPolicy
from shared.messaging import HandlerContext
from tests.mail import Mail, RecordingSMTP, smtp_server
from tests.support import wait_until

__all__ = ["Mail", "RecordingSMTP", "smtp_server"]


def settings_for(tmp_path: Path, smtp_port: int, **overrides: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "data_dir": tmp_path, "smtp_port": smtp_port, "embedded_sink": False,
        "mail_backoff_seconds": 0.05, "mail_backoff_max_seconds": 0.2, "mail_attempts": 3,
        "mail_interval_seconds": 0.1, "scheduler_interval_seconds": 0.2, "mail_connections": 2,
        **overrides,
    }
    return NotifySettings(**values)


class Store:
    """The notify store and sender without Kafka: apply events as the consumer would."""

    def __init__(self, settings: NotifySettings, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock(datetime(2026, 11, 2, 15, 0, tzinfo=UTC))
        self.runtime: NotifyRuntime = build(settings, self.clock)
        self.runtime.service.migrate()
        self.handlers = self.runtime.service.consumers[0][0].handlers

    def apply(self, *events: Event) -> list[EventEnvelope]:
        envelopes = []
        for event in events:
            env = new_envelope(event_type=event.event_type, event_version=event.event_version,
                               key=event.aggregate_key(), producer="test", clock=self.clock, cause=Cause.new())
            self.apply_as(event, env)
            envelopes.append(env)
        return envelopes

    def apply_as(self, event: Event, env: EventEnvelope) -> None:
        """Run the handler for `event` with this envelope (no inbox: what a replay would do)."""
        with self.runtime.service.db.session() as session:
            handler = self.handlers[type(event)]
            handler(HandlerContext(session, env, self.clock, self.runtime.service.outbox), event)


# -- running the service on the real broker -----------------------------------------------------
PROGRAM = "prog-1"


def people(n: int) -> list[Event]:
    out: list[Event] = [ProgramConfigured(program_id=PROGRAM, name="Reps", policy=ProgramPolicy())]
    for i in range(n):
        out.append(MentorEnrolled(person_id=f"mentor-{i}", program_id=PROGRAM, name=f"Mentor {i}",
                                  email=f"mentor-{i}@example.org"))
        out.append(MenteeEnrolled(person_id=f"mentee-{i}", program_id=PROGRAM, name=f"Mentee {i}",
                                  email=f"mentee-{i}@example.org"))
    return out


def match(i: int, mentor: int | None = None) -> MenteeMatched:
    return MenteeMatched(partnership_id=f"p-{i}", program_id=PROGRAM, mentor_id=f"mentor-{mentor if mentor is not None else i}",
                         mentee_id=f"mentee-{i}", started_at=datetime(2026, 11, 2, tzinfo=UTC))


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://notify"))
        await wait_until(lambda: app.state.service.broker_connected, timeout_s=60)
        yield client


def assigned_partitions(app: FastAPI) -> int:
    """How many partitions the app's consumer holds now (0 until it has joined its group)."""
    total = 0
    for sub in runtime(app).service.broker.subscribers:
        consumer = getattr(sub, "consumer", None)
        if consumer is not None:
            total += len(consumer.assignment())
    return total


def runtime(app: FastAPI) -> NotifyRuntime:
    rt: NotifyRuntime = app.state.notify
    return rt


def rows(app: FastAPI) -> list[MessageRow]:
    with runtime(app).service.db.session() as s:
        return list(s.exec(select(MessageRow)).all())


def service_settings(
    tmp_path: Path, port: int, store_url: str, bootstrap: str, prefix: str, **kw: Any
) -> NotifySettings:
    """Settings for a service on the real broker, isolated by a topic prefix."""
    return settings_for(tmp_path, port, database_url=store_url, kafka_bootstrap_servers=bootstrap,
                        topic_prefix=prefix, **kw)


