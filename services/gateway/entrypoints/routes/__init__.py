"""Every router of the public API (each carries the /api/v1 prefix itself)."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.entrypoints.routes import (
    activity,
    matching,
    notify,
    ops,
    overview,
    payments,
    reports,
    users,
)

ROUTERS: list[APIRouter] = [
    users.router, matching.router, overview.router, activity.router, payments.router, notify.router,
    notify.public, ops.router, reports.router,
]
