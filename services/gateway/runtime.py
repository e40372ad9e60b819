"""The gateway process in one object: its store, its clock, its clients to the services and its
metrics. Built once by create_app (and by the CLI for the store alone)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.gateway.adapters.migrations import MIGRATIONS
from services.gateway.adapters.tables import accounts_version
from services.gateway.adapters.upstream import Upstreams
from services.gateway.domain.access import PartnershipFacts, Principal
from services.gateway.service_layer import accounts
from services.gateway.settings import SERVICES, GatewaySettings
from shared.clock import Clock, SystemClock
from shared.db import Database
from shared.migrations import migrate

NAME = "gateway"
AUTH_CACHE_MAX = 10_000


def open_store(settings: GatewaySettings) -> Database:
    db = Database(settings.store_url(NAME))
    migrate(db, NAME, MIGRATIONS)
    return db


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        *,
        clock: Clock | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock(timedelta(seconds=settings.clock_offset_seconds))
        self.db = Database(settings.store_url(NAME))
        self.metrics = CollectorRegistry()
        self.upstreams = Upstreams(settings, self.metrics, transports)
        self.idempotency_ttl = timedelta(hours=settings.idempotency_ttl_hours)
        self._missing_routes: dict[str, float] = {}
        # sha256 of a token -> (its principal, valid until (monotonic), accounts_version read at).
        self._principals: dict[str, tuple[Principal, float, int]] = {}
        # partnership id -> (who it belongs to, valid until (monotonic)).
        self._partnerships: dict[str, tuple[PartnershipFacts, float]] = {}
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.metrics
        )
        self.http_latency = Histogram(
            "http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.metrics
        )

    # Reads by id that a service may not offer (yet): when one answers "no such route", the
    # gateway uses its fallback for a while instead of asking again on every request.
    MISSING_ROUTE_RECHECK_S = 60.0

    def route_missing_recently(self, key: str) -> bool:
        seen = self._missing_routes.get(key)
        return seen is not None and time.monotonic() - seen < self.MISSING_ROUTE_RECHECK_S

    def note_route_missing(self, key: str) -> None:
        self._missing_routes[key] = time.monotonic()

    async def start(self) -> None:
        self.settings.apply_to_process()
        await asyncio.to_thread(migrate, self.db, NAME, MIGRATIONS)

    async def stop(self) -> None:
        await self.upstreams.aclose()
        self.db.dispose()

    def _principal(self, secret: str) -> Principal | None:
        with self.db.session() as session:
            user = accounts.authenticate(session, secret)
            return accounts.principal_of(user) if user is not None else None

    async def principal_for(self, authorization: str | None) -> Principal | None:
        """The principal an `Authorization: Bearer <secret>` header names, or None.

        A known token's principal is remembered for settings.auth_cache_seconds (keyed by the
        token's hash, never the secret) unless a user or token was changed since: on a loaded
        gateway the store read and its thread hop were a large part of each request's cost."""
        if not authorization:
            return None
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            return None
        ttl = self.settings.auth_cache_seconds
        if ttl <= 0:
            return await asyncio.to_thread(self._principal, secret)
        key = accounts.hash_token(secret)
        version = accounts_version()  # before the read: a change committed during it voids the entry
        now = time.monotonic()
        known = self._principals.get(key)
        if known is not None and known[1] > now and known[2] == version:
            return known[0]
        principal = await asyncio.to_thread(self._principal, secret)
        if principal is not None:
            if len(self._principals) >= AUTH_CACHE_MAX:
                self._principals.clear()
            self._principals[key] = (principal, now + ttl, version)
        else:
            self._principals.pop(key, None)
        return principal

    def known_partnership(self, partnership_id: str) -> PartnershipFacts | None:
        """Who a partnership belongs to, as matching said within settings.partnership_cache_seconds."""
        known = self._partnerships.get(partnership_id)
        if known is None or known[1] <= time.monotonic():
            return None
        return known[0]

    def remember_partnership(self, facts: PartnershipFacts) -> None:
        ttl = self.settings.partnership_cache_seconds
        if ttl <= 0:
            return
        if len(self._partnerships) >= AUTH_CACHE_MAX:
            self._partnerships.clear()
        self._partnerships[facts.partnership_id] = (facts, time.monotonic() + ttl)

    async def readiness(self, request_id: str) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            await asyncio.to_thread(self.db.ping)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"failed: {exc}"
        states = await asyncio.gather(*(self.upstreams.ready(s, request_id) for s in SERVICES))
        checks["services"] = dict(zip(SERVICES, states, strict=True))
        checks["ready"] = checks["store"] == "ok" and all(s == "ok" for s in states)
        return checks
