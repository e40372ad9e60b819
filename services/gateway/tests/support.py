"""A gateway in a test: its app on an ASGI transport (lifespan run), its store in tmp_path, and
users of every role created straight in its store. Services behind it are fakes: FastAPI apps on
httpx.ASGITransport (no port), or real processes/servers on 127.0.0.1 for network faults."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.domain.access import Role
from services.gateway.runtime import Gateway
from services.gateway.service_layer import accounts
from services.gateway.settings import GatewaySettings
from shared.clock import SystemClock


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def gateway(self) -> Gateway:
        gw: Gateway = self.app.state.gateway
        return gw

    def user(self, name: str, role: Role, programs: list[str] | None = None, person_id: str | None = None) -> str:
        """Create a user with a token; remember the token under `name`; return it."""
        with self.gateway.db.session() as s:
            user = accounts.create_user(
                s, SystemClock(), name=name, role=role, program_ids=programs or [], person_id=person_id
            )
            token = accounts.issue_token(s, SystemClock(), user.id, "test")
        self.tokens[name] = token.secret
        return token.secret

    def auth(self, name: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}", **extra}


def settings_for(tmp_path: Path, **overrides: Any) -> GatewaySettings:
    return GatewaySettings(data_dir=tmp_path, database_url="", **overrides)


@contextlib.asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    services: Mapping[str, FastAPI] | None = None,
    *,
    network: bool = False,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """services: fake service apps reached in-process; any service not given is unreachable.
    network: reach the services over real sockets at the URLs in the settings instead."""
    transports: dict[str, httpx.AsyncBaseTransport] | None = None
    if not network:
        transports = {name: httpx.ASGITransport(app=fake) for name, fake in (services or {}).items()}
        for name in ("matching", "activity", "payments", "notify"):
            transports.setdefault(name, httpx.MockTransport(_refuse_connection))
    app = create_app(settings_for(tmp_path, **overrides), transports=transports)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        yield Harness(app, client)


def _refuse_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port; yield its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                         timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
