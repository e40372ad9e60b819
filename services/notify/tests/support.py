"""Test helpers: a real SMTP server (aiosmtpd) that keeps what it receives and can be told to
refuse, and a notify store to apply events to directly."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
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
from tests.support import wait_until


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        return str(part.get_content())


@dataclass
class RecordingSMTP:
    """aiosmtpd handler: records accepted messages; `refuse_with` makes it answer DATA with an error."""

    received: list[Received] = field(default_factory=list)
    refuse_with: str | None = None
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.refuse_with is not None:
            self.refused += 1
            return self.refuse_with
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    def message_ids(self) -> list[str]:
        return [str(r.message["Message-ID"]) for r in self.received]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[RecordingSMTP, int]]:
    handler = RecordingSMTP()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


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


