"""What every route gets: the authenticated caller, and the one way to reach a service."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Depends, Header, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.adapters.upstream import checked
from services.gateway.domain.access import Principal, Role
from services.gateway.errors import ServiceFailed, Unauthenticated, Unprocessable
from services.gateway.runtime import Gateway
from shared.errors import Forbidden

# Every public route lives under this prefix (set on each router, so route.path is the full path).
API_PREFIX = "/api/v1"

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `python -m services.gateway.cli create-admin` or POST /api/v1/users/{id}/tokens.",
)

# Headers of the client's request that mean something to the service behind the route.
_PASSED_ON = ("content-type", "idempotency-key", "accept")
# Headers of the service's answer that the client needs (a CSV's file name, its caching).
_PASSED_BACK = ("content-disposition", "location", "etag", "cache-control")


@dataclass
class Caller:
    principal: Principal
    request_id: str
    gateway: Gateway
    request: Request

    async def send(
        self, service: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        json: Any = None, content: bytes | None = None, content_type: str | None = None,
    ) -> httpx.Response:
        """One call to a service as this caller; 4xx is passed on, 5xx/down becomes 502/503."""
        key = self.request.headers.get("idempotency-key")
        if json is not None:
            content, content_type, json = json_bytes(json), "application/json", None
        response = await self.gateway.upstreams.send(
            service, method, path, principal=self.principal, request_id=self.request_id, params=params,
            json=json, content=content, content_type=content_type,
            extra_headers={"Idempotency-Key": key} if key else None,
        )
        return checked(service, response)

    async def read(self, service: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self.send(service, "GET", path, params=params)
        try:
            return response.json()
        except ValueError:  # not JSON: the service is broken, not the request
            raise ServiceFailed(service, response.status_code) from None

    async def forward(
        self, service: str, method: str | None = None, path: str | None = None, *,
        params: Mapping[str, Any] | None = None, json: Any = None, raw_body: bool = False,
    ) -> Response:
        """Send the call and hand the service's answer back as it is (status, body, type).

        raw_body: pass the client's body bytes and content type on unchanged (CSV uploads)."""
        content: bytes | None = None
        content_type: str | None = None
        if raw_body:
            content = await self.request.body()
            content_type = self.request.headers.get("content-type")
        response = await self.send(
            service, method or self.request.method, path or self.service_path(),
            params=params, json=json, content=content, content_type=content_type,
        )
        return passthrough(response)

    def service_path(self) -> str:
        """This request's path as the service names it: the same path without /api/v1, still
        percent-encoded as the client sent it (an id cannot turn into a query or another route)."""
        raw = self.request.scope.get("raw_path")
        path = raw.decode("latin-1").split("?", 1)[0] if raw else self.request.url.path
        return path.removeprefix(API_PREFIX)

    def require_staff(self, program_id: str) -> None:
        if not self.principal.is_staff_of(program_id):
            raise Forbidden("program_id", f"only staff of program {program_id} may do this")

    def require_in_program(self, program_id: str) -> None:
        if not self.principal.in_program(program_id):
            raise Forbidden("program_id", f"you are not in program {program_id}")

    def require_admin(self) -> None:
        if self.principal.role is not Role.ADMIN:
            raise Forbidden("authorization", "only an admin may do this")


def json_bytes(value: Any) -> bytes:
    """A body as JSON for a service. Python's parser lets through what JSON (RFC 8259) does not
    have, and what could not be sent on: NaN and Infinity, unpaired surrogates (\\ud800)."""
    try:
        return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except ValueError as exc:
        if isinstance(exc, UnicodeEncodeError):
            raise Unprocessable("body", "a string holds an unpaired surrogate; not valid Unicode",
                                "invalid_unicode") from None
        raise Unprocessable("body", "NaN and Infinity are not JSON numbers", "invalid_json") from None


def seg(value: str) -> str:
    """An id as one path segment of a service URL."""
    return quote(value, safe="")


def passthrough(response: httpx.Response) -> Response:
    headers = {k: response.headers[k] for k in _PASSED_BACK if k in response.headers}
    return Response(
        content=response.content, status_code=response.status_code,
        media_type=response.headers.get("content-type"), headers=headers,
    )


def gateway_of(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Caller:
    gw = gateway_of(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        if credentials is None:
            raise Unauthenticated()
        principal = await gw.principal_for(f"Bearer {credentials.credentials}")
        if principal is None:
            raise Unauthenticated("unknown or revoked token")
        request.state.principal = principal
    return Caller(principal, request.state.request_id, gw, request)


async def idempotency_key_doc(
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", max_length=200,
        description="Retrying with the same key (same user, same request) has one effect and returns the "
        "first answer; the same key with a different request is refused (422).",
        examples=["3f1c2a9e-7b7e-4d0e-9d4c-2b1f0f8a6c11"],
    ),
) -> None:
    """Documents the Idempotency-Key header; the Idempotency middleware does the work."""


mutation = [Depends(idempotency_key_doc)]
