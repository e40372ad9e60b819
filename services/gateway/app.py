"""The gateway: the one public HTTP entry of the platform.

    uvicorn --factory services.gateway.app:create_app --port 8000

It authenticates bearer tokens, checks each caller's role against the program and the people a
resource belongs to (asking the owning service, never keeping a copy), forwards to the services'
HTTP APIs with the request id and the actor, composes read views, and answers /health, /ready and
/metrics. It keeps only users, hashed tokens and idempotency records, and never publishes events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.adapters.upstream import UpstreamAnswer
from services.gateway.entrypoints import middleware
from services.gateway.entrypoints.deps import passthrough
from services.gateway.entrypoints.routes import ROUTERS
from services.gateway.errors import ERROR_RESPONSES
from services.gateway.runtime import Gateway
from services.gateway.settings import GatewaySettings
from shared.clock import Clock
from shared.errors import DomainError
from shared.service import validation_body

DESCRIPTION = """
The public API of the mentoring platform: programs, people and matching; meetings, activities and
time entries; stipend statements and payouts; email and newsletters.

**Authentication**: `Authorization: Bearer <token>`. The first admin token comes from
`python -m services.gateway.cli create-admin --name <you>`; admins (and coordinators, for their
programs' participants) issue more under `/api/v1/users`.

**Roles**: *admin* (every program), *coordinator* (staff of their programs: match, approve
statements, run payouts), *metamentor* (their caseload), *mentor* (their own partnerships, time
and pay), *mentee* (their own partnership: change mentor, report an incident). Nobody sees
another program's data.

**Errors**: every refusal is `{"detail": [{"field", "reason", "code"}]}`. A service that is down
or too slow gives 503 with `field: "service"` naming it.

**Retries**: send an `Idempotency-Key` header with any POST/PUT/PATCH/DELETE; a retry with the
same key gets the first answer and has no second effect.
"""

HTTP_ERRORS = {400: ("body", "invalid_json"), 404: ("path", "not_found"), 405: ("method", "method_not_allowed")}


def create_app(
    settings: GatewaySettings | None = None,
    *,
    clock: Clock | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """transports: per-service httpx transports instead of the network (unit tests)."""
    gateway = Gateway(settings or GatewaySettings(), clock=clock, transports=transports)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="Mentoring platform API", version="1.0", description=DESCRIPTION, lifespan=lifespan,
        openapi_tags=[
            {"name": "users", "description": "Gateway users and bearer tokens"},
            {"name": "programs", "description": "Programs and their policy (matching service)"},
            {"name": "people", "description": "Mentors, mentees, metamentors (matching service)"},
            {"name": "matching", "description": "Proposals, matches, rematch, transitions (matching service)"},
            {"name": "partnerships", "description": "Partnerships, incidents and the overview"},
            {"name": "activity", "description": "Meetings, activities, time entries, compliance, month close"},
            {"name": "payments", "description": "Statements, review, payouts, reimbursements"},
            {"name": "notify", "description": "Messages, preferences, newsletters, announcements"},
            {"name": "ops", "description": "Health, readiness, metrics"},
        ],
    )
    app.state.gateway = gateway
    for router in ROUTERS:
        app.include_router(router, responses=ERROR_RESPONSES)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # What Starlette and FastAPI refuse themselves, in the one error shape too: an unknown path
        # (404) or method (405), a body that is not JSON (400).
        field, code = HTTP_ERRORS.get(exc.status_code, ("request", "http_error"))
        reason = str(exc.detail).lower()
        if exc.status_code == 400:
            reason = f"not valid JSON ({reason})"
        body = {"detail": [{"field": field, "reason": reason, "code": code}]}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(UpstreamAnswer)
    async def service_refused(_: Request, exc: UpstreamAnswer) -> Response:
        return passthrough(exc.response)

    @app.get("/health", tags=["ops"], summary="The gateway process is alive")
    async def health() -> dict[str, str]:
        return {"status": "alive", "service": "gateway"}

    @app.get("/ready", tags=["ops"], summary="Its store and every service are ready")
    async def ready(request: Request) -> JSONResponse:
        checks = await gateway.readiness(request.state.request_id)
        return JSONResponse(checks, status_code=200 if checks["ready"] else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics() -> Response:
        body = await asyncio.to_thread(generate_latest, gateway.metrics)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # Added innermost first: RequestContext wraps everything, then BodyLimit, NoNul, Idempotency.
    app.add_middleware(middleware.Idempotency, gateway=gateway)
    app.add_middleware(middleware.NoNul)
    app.add_middleware(middleware.BodyLimit, gateway=gateway)
    app.add_middleware(middleware.RequestContext, gateway=gateway)
    return app
