"""The activity service process: uvicorn --factory services.activity.entrypoints.app:create_app --port 8102"""

from __future__ import annotations

from fastapi import FastAPI

from services.activity.adapters.migrations import MIGRATIONS
from services.activity.entrypoints.consumers import wire
from services.activity.entrypoints.http import build_router
from services.activity.entrypoints.reviews_http import build_review_router
from services.activity.entrypoints.surveys_http import build_health_router, build_survey_router
from services.activity.service_layer.compliance import sweep
from services.activity.service_layer.month_close import close_all_programs
from services.activity.service_layer.surveys import run_surveys
from shared.clock import Clock
from shared.contracts.envelope import Cause
from shared.service import Service
from shared.settings import ServiceSettings

NAME = "activity"


def build_service(settings: ServiceSettings | None = None, clock: Clock | None = None) -> Service:
    service = Service(NAME, migrations=MIGRATIONS, settings=settings, clock=clock)
    wire(service)

    @service.job("month-close")
    def close_due_months() -> None:
        close_all_programs(service.db, service.outbox, service.clock.now())

    @service.job("compliance")
    def daily_compliance() -> None:
        sweep(service.db, lambda: service.transaction(Cause.new()), service.clock.now())

    @service.job("surveys")
    def survey_rounds() -> None:
        run_surveys(lambda: service.transaction(Cause.new()), service.clock.now())

    return service


def create_app(settings: ServiceSettings | None = None, clock: Clock | None = None) -> FastAPI:
    service = build_service(settings, clock)
    return service.http_app(build_router(service), build_survey_router(service), build_review_router(service),
                            build_health_router(service),
                            title="activity service")
