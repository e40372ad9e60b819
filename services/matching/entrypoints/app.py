"""The matching service process: `uvicorn --factory services.matching.entrypoints.app:create_app --port 8101`."""

from __future__ import annotations

from fastapi import FastAPI

from services.matching.adapters.migrations import MIGRATIONS
from services.matching.entrypoints.http import make_router
from shared.clock import Clock
from shared.service import Service
from shared.settings import ServiceSettings

SERVICE_NAME = "matching"


def build_service(settings: ServiceSettings | None = None, clock: Clock | None = None) -> Service:
    # Matching consumes no other service's events: it is the source of programs and partnerships.
    return Service(SERVICE_NAME, migrations=MIGRATIONS, settings=settings, clock=clock)


def create_app(settings: ServiceSettings | None = None, clock: Clock | None = None) -> FastAPI:
    service = build_service(settings, clock)
    return service.http_app(make_router(service), title="matching service")
