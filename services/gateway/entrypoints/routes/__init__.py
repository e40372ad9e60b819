"""Every router of the public API, mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.entrypoints.routes import users

ROUTERS: list[APIRouter] = [users.router]
