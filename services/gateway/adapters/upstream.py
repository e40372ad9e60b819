"""The services' HTTP APIs, as the gateway reaches them: one httpx client per service with a
short connect timeout and a bounded read timeout, over the lean HTTP/1.1 transport of http11.py
(unless a test gives its own). Every call carries the request id and the actor; a service that is
down or too slow becomes a 503 naming it, never a hang."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.gateway.adapters.http11 import Http11Transport
from services.gateway.domain.access import STAFF_ROLES, Principal
from services.gateway.errors import ServiceFailed, ServiceUnavailable
from services.gateway.settings import SERVICES, GatewaySettings

REQUEST_ID_HEADER = "X-Request-ID"
log = logging.getLogger("gateway.upstream")


class UpstreamAnswer(Exception):
    """A service refused the request (4xx): its answer goes back to the client unchanged."""

    def __init__(self, service: str, response: httpx.Response) -> None:
        super().__init__(f"{service} answered {response.status_code}")
        self.service = service
        self.response = response


class Upstreams:
    def __init__(
        self,
        settings: GatewaySettings,
        registry: CollectorRegistry,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        timeout = httpx.Timeout(
            settings.upstream_read_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
        )
        self.clients: dict[str, httpx.AsyncClient] = {
            name: httpx.AsyncClient(
                base_url=settings.service_url(name), timeout=timeout,
                transport=(transports or {}).get(name) or Http11Transport(), follow_redirects=False,
            )
            for name in SERVICES
        }
        self._calls = Counter(
            "gateway_upstream_requests_total", "calls to services", ["service", "outcome"], registry=registry
        )
        self._latency = Histogram(
            "gateway_upstream_request_seconds", "latency of calls to services", ["service"], registry=registry
        )

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients.values()))

    async def send(
        self,
        service: str,
        method: str,
        path: str,
        *,
        principal: Principal | None,
        request_id: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call; raises ServiceUnavailable when the service cannot be reached in time."""
        headers = {REQUEST_ID_HEADER: request_id}
        if principal is not None:
            headers["X-Actor-Id"] = principal.actor_id
            # Services know two kinds of actor: staff (the gateway has checked the program) and the
            # participant roles; the precise staff role travels alongside.
            headers["X-Actor-Role"] = "staff" if principal.role in STAFF_ROLES else principal.role.value
            if principal.role in STAFF_ROLES:
                headers["X-Actor-Staff-Role"] = principal.role.value
            headers["X-Actor-User-Id"] = principal.user_id
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(extra_headers or {})
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        started = time.perf_counter()
        try:
            response = await self.clients[service].request(
                method, path, params=clean_params, json=json, content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            self._calls.labels(service, "timeout").inc()
            log.warning("%s %s %s: no answer in time (%s) [request %s]", service, method, path, exc, request_id)
            raise ServiceUnavailable(service, f"{service} is unavailable (no answer in time)") from exc
        except httpx.TransportError as exc:
            self._calls.labels(service, "unreachable").inc()
            log.warning("%s %s %s: unreachable (%r) [request %s]", service, method, path, exc, request_id)
            raise ServiceUnavailable(service) from exc
        finally:
            self._latency.labels(service).observe(time.perf_counter() - started)
        self._calls.labels(service, str(response.status_code)).inc()
        return response

    async def ready(self, service: str, request_id: str) -> str:
        """The service's readiness in one word: ok, not ready, or unavailable."""
        try:
            response = await self.send(service, "GET", "/ready", principal=None, request_id=request_id)
        except ServiceUnavailable:
            return "unavailable"
        return "ok" if response.status_code == 200 else "not ready"


def checked(service: str, response: httpx.Response) -> httpx.Response:
    """The response if it succeeded; a 4xx is passed on unchanged; a 5xx becomes 502/503."""
    if response.status_code < 400:
        return response
    if response.status_code < 500:
        raise UpstreamAnswer(service, response)
    if response.status_code == 503:
        raise ServiceUnavailable(service)
    log.error("%s answered %s: %s", service, response.status_code, response.text[:500])
    raise ServiceFailed(service, response.status_code)
