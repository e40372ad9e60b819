"""The notify service process:

    uv run uvicorn --factory services.notify.entrypoints.app:create_app --port 8104

Consumes matching, activity and payments events (group "notify"); a sender job delivers pending
messages over SMTP; a digest job records the metamentor digests on their weekday. With the
default settings it also starts the local SMTP sink (127.0.0.1:8025, .eml files in mail_dir).
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from fastapi import FastAPI
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import select

from services.notify.adapters.migrations import MIGRATIONS
from services.notify.adapters.tables import MessageRow
from services.notify.adapters.templates import Templates
from services.notify.entrypoints.consumers import register_consumers
from services.notify.entrypoints.http import build_router
from services.notify.service_layer.communications import draft_due_newsletters, enqueue_due_digests
from services.notify.service_layer.delivery import DeliveryStats, MailSender
from services.notify.settings import NotifySettings
from services.notify.sink import start_sink
from shared.clock import Clock
from shared.service import Service
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class NotifyRuntime:
    service: Service
    settings: NotifySettings
    sender: MailSender
    templates: Templates

    def deliver_now(self) -> DeliveryStats:
        return self.sender.deliver_due()

    def record_digests_now(self) -> int:
        with self.service.db.session() as session:
            return enqueue_due_digests(session, self.service.clock.now())

    def draft_newsletters_now(self) -> int:
        with self.service.db.session() as session:
            return draft_due_newsletters(session, self.service.clock.now())


def build(settings: NotifySettings | None = None, clock: Clock | None = None) -> NotifyRuntime:
    settings = settings or NotifySettings()
    service = Service("notify", migrations=MIGRATIONS, settings=settings, clock=clock)
    templates = Templates()
    sender = MailSender(service.db, service.outbox, service.clock, settings, templates=templates)
    runtime = NotifyRuntime(service, settings, sender, templates)
    register_consumers(service)
    service.metrics.register(MessageLogCollector(service))
    service.job("deliver-mail", interval_s=settings.mail_interval_seconds)(runtime.deliver_now)
    service.job("metamentor-digests")(runtime.record_digests_now)
    service.job("newsletter-drafts")(runtime.draft_newsletters_now)
    return runtime


class MessageLogCollector(Collector):
    """notify_messages{status}: the message log by status, read at each scrape (failed > 0
    means staff have messages to look at)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("notify_messages", "messages in the log by status", labels=["status"])
        counts = dict.fromkeys(("pending", "sending", "sent", "failed", "skipped"), 0)
        with self.service.db.session() as session:
            for status, n in session.exec(
                select(MessageRow.status, func.count()).group_by(MessageRow.status)
            ).all():
                counts[status] = int(n)
        for status, n in counts.items():
            gauge.add_metric([status], n)
        yield gauge


def create_app(settings: ServiceSettings | None = None, clock: Clock | None = None) -> FastAPI:
    if settings is not None and not isinstance(settings, NotifySettings):
        settings = NotifySettings(**settings.model_dump())
    runtime = build(settings, clock)
    app = runtime.service.http_app(build_router(runtime.service, runtime.settings, runtime.templates),
                                   title="notify service")
    app.state.notify = runtime
    service_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        sink = _start_embedded_sink(runtime.settings)
        try:
            async with service_lifespan(a):
                try:
                    yield
                finally:
                    runtime.sender.stop()
        finally:
            if sink is not None:
                sink.stop()

    app.router.lifespan_context = lifespan
    return app


def _start_embedded_sink(settings: NotifySettings) -> Controller | None:
    """The embedded default: start the local sink unless SMTP points elsewhere or another
    instance already runs it on that port."""
    if not (settings.embedded_sink and settings.sink_is_local):
        return None
    try:
        return start_sink(settings.mail_dir, settings.smtp_host, settings.smtp_port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.info("SMTP port %d is taken (another instance's sink?); using it", settings.smtp_port)
            return None
        raise
    except RuntimeError as exc:  # aiosmtpd wraps bind errors when it cannot start
        log.warning("local SMTP sink not started: %s", exc)
        return None
