"""ASGI middlewares of the gateway, outermost first:

- RequestContext: gives each request an X-Request-ID (the client's, or a new one), echoes it on the
  response, and measures requests and latency per route for /metrics.
- BodyLimit: reads a request body up to the configured size; a larger one is refused (413).
- NoNul: a NUL character in the path, the query or a JSON body is refused (400): no service can
  keep one (PostgreSQL refuses NUL in text outright, which would be a 500 behind the gateway).
- Idempotency: a mutating /api request with an Idempotency-Key is answered once per user and key.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.errors import PayloadTooLarge
from services.gateway.runtime import Gateway
from services.gateway.service_layer import idempotency
from shared.errors import DomainError

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_REQUEST_ID = 200


async def _send_error(send: Send, error: DomainError, headers: dict[str, str] | None = None) -> None:
    await _send_raw(send, error.status, "application/json", json.dumps(error.body()).encode(), headers)


async def _send_raw(
    send: Send, status: int, content_type: str | None, body: bytes, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-length", str(len(body)).encode())]
    if content_type:
        raw.append((b"content-type", content_type.encode()))
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # the disconnect, when it comes

    return replay


class RequestContext:
    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app, self.gateway = app, gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        usable = 0 < len(given) <= MAX_REQUEST_ID and given.isascii() and given.isprintable()
        request_id = given if usable else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.gateway.http_requests.labels(scope["method"], route, str(status)).inc()
            self.gateway.http_latency.labels(scope["method"], route).observe(time.perf_counter() - started)


class BodyLimit:
    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app, self.limit = app, gateway.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge("body", f"request body larger than {self.limit} bytes", "too_large")
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_error(send, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _send_error(send, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope.setdefault("state", {})["body"] = body
        await self.app(scope, _replay(body, receive), send)


# A \u0000 escape in raw JSON: the escape itself, not an escaped backslash followed by "u0000".
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def json_has_nul(body: bytes) -> bool:
    return b"\\u0000" in body and _JSON_NUL.search(body) is not None


class NoNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = None
        if "\x00" in scope["path"]:
            where = "path"
        elif b"%00" in scope.get("query_string", b""):
            where = "query"
        elif json_has_nul(scope.get("state", {}).get("body", b"")) and "json" in Headers(scope=scope).get(
                "content-type", ""):
            where = "body"
        if where is None:
            await self.app(scope, receive, send)
            return
        await _send_error(send, DomainError(where, "contains a NUL character (%00 or \\u0000); no value may",
                                            "nul_character"))


class Idempotency:
    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app, self.gateway = app, gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        principal = await self.gateway.principal_for(headers.get("authorization"))
        if principal is None:  # the route refuses it (401) — nothing to remember
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["principal"] = principal
        body: bytes = state.get("body", b"")
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        try:
            outcome = await asyncio.to_thread(
                idempotency.claim, self.gateway.db, self.gateway.clock, user_id=principal.user_id, key=key,
                method=scope["method"], path=path, body=body, ttl=self.gateway.idempotency_ttl,
            )
        except DomainError as exc:
            await _send_error(send, exc)
            return
        if isinstance(outcome, idempotency.StoredAnswer):
            await _send_raw(send, outcome.status, outcome.content_type, outcome.body, {"Idempotent-Replayed": "true"})
            return
        await self._answer_once(scope, receive, send, outcome.record_id)

    async def _answer_once(self, scope: Scope, receive: Receive, send: Send, record_id: int) -> None:
        status = 500
        content_type: str | None = None
        chunks: list[bytes] = []
        # The answer's last message is held back until the key is completed or released: a client
        # retrying the moment it has the answer must get it replayed, not "in progress".
        last: Message | None = None

        async def capture(message: Message) -> None:
            nonlocal status, content_type, last
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = Headers(raw=message.get("headers", [])).get("content-type")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    last = message
                    return
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await asyncio.to_thread(idempotency.release, self.gateway.db, record_id)
            raise
        if status >= 500:
            # Not answered (a service down or failing): let the client's retry try again.
            await asyncio.to_thread(idempotency.release, self.gateway.db, record_id)
        else:
            await asyncio.to_thread(
                idempotency.complete, self.gateway.db, record_id, status, content_type, b"".join(chunks)
            )
        if last is not None:
            await send(last)
