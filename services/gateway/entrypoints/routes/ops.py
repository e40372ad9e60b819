"""Operator controls for end-to-end runs (admin only, and only where clock control is allowed:
MENTORING_ALLOW_CLOCK_CONTROL=true): move every service's clock, run a service's job now."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from services.gateway.entrypoints.deps import API_PREFIX, Caller, caller, mutation, seg
from services.gateway.entrypoints.routes.common import json_body, text_field
from services.gateway.errors import ServiceFailed, ServiceUnavailable
from services.gateway.settings import SERVICES
from shared.errors import NotFound

router = APIRouter(prefix=API_PREFIX + "/ops", tags=["ops"])
Service = Literal["matching", "activity", "payments", "notify"]


def _allowed(c: Caller) -> None:
    if not c.gateway.settings.allow_clock_control:
        raise NotFound("path", "clock control is off (MENTORING_ALLOW_CLOCK_CONTROL)")
    c.require_admin()


@router.post("/clock", dependencies=mutation, summary="Set every service's clock (admin; test environments only)")
async def set_clock(body: dict[str, Any] = json_body({"now": "2026-11-04T08:00:00+00:00"}),
                    c: Caller = Depends(caller)) -> dict[str, Any]:
    _allowed(c)
    text_field(body, "now")

    async def one(service: str) -> Any:
        try:
            return (await c.send(service, "POST", "/admin/clock", json=body)).json()
        except (ServiceUnavailable, ServiceFailed) as exc:
            return {"error": exc.problems[0].reason}

    results = await asyncio.gather(*(one(s) for s in SERVICES))
    return dict(zip(SERVICES, results, strict=True))


@router.post("/jobs/{service}/{name}", dependencies=mutation,
             summary="Run a service's periodic job now, e.g. month close or pay day (admin; test environments only)")
async def run_job(service: Service, name: str = Path(max_length=100, examples=["month-close"]),
                  c: Caller = Depends(caller)) -> Response:
    _allowed(c)
    return await c.forward(service, "POST", f"/admin/jobs/{seg(name)}")
