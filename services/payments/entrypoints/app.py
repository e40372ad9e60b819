"""The payments service process: `uvicorn --factory services.payments.entrypoints.app:create_app`
(port 8103 by convention)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlmodel import Session

from services.payments.adapters.migrations import MIGRATIONS
from services.payments.entrypoints.consumers import register_consumers
from services.payments.entrypoints.http import router
from services.payments.service_layer.payout import run_payouts
from services.payments.service_layer.statements import Emit
from shared.clock import Clock
from shared.contracts.base import Event
from shared.contracts.envelope import Cause
from shared.service import Service
from shared.settings import ServiceSettings

NAME = "payments"


class PaymentsSettings(ServiceSettings):
    # Fault tests only: pause after each payout item so a test can kill the process mid-batch.
    payments_payout_item_delay_seconds: float = 0.0


def build_service(settings: ServiceSettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or PaymentsSettings()
    service = Service(NAME, migrations=MIGRATIONS, settings=settings, clock=clock)
    register_consumers(service)
    delay = float(getattr(settings, "payments_payout_item_delay_seconds", 0.0))

    @service.job("payout")
    def payout() -> None:
        run_payouts(service.db, lambda session: emitter(service, session), service.clock.now, item_delay_s=delay)

    return service


def emitter(service: Service, session: Session, cause: Cause | None = None) -> Emit:
    """Emit through the service's outbox in `session` (jobs: each run starts its own conversation)."""
    cause = cause or Cause.new()

    def emit(event: Event) -> None:
        service.outbox.add(session, event, cause)

    return emit


def create_app(settings: ServiceSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or PaymentsSettings()
    service = build_service(settings, clock)
    return service.http_app(router(service), title="payments service")
