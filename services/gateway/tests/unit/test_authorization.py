"""Every route against every role: admin, the program's coordinator, another program's
coordinator, the partnership's metamentor, mentor and mentee, another mentor of the same program,
and a mentor of another program. Resources belong to prog-a's partnership pa-1 (mentor-1,
mentee-1, meta-1); the table is services/gateway/tests/matrix.py. A refused request is 403 or 404
and never reaches the service's write."""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.gateway.tests.fakes import FakeService, world
from services.gateway.tests.matrix import CASES, LISTS, WHO
from services.gateway.tests.support import Harness, running_gateway

pytestmark = pytest.mark.unit

class World:
    def __init__(self, h: Harness, fakes: dict[str, FakeService]) -> None:
        self.h, self.fakes = h, fakes

    def reset(self) -> None:
        for f in self.fakes.values():
            f.calls.clear()

    def writes(self) -> list[Any]:
        return [c for f in self.fakes.values() for c in f.mutations()]

    async def call(self, who: str, method: str, path: str, body: Any = None) -> Any:
        headers = self.h.auth(who)
        kwargs: dict[str, Any] = {}
        if isinstance(body, str):
            kwargs["content"] = body.encode()
            headers["Content-Type"] = "text/csv"
        elif body is not None:
            kwargs["json"] = body
        return await self.h.client.request(method, "/api/v1" + path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    fakes = world()
    tmp: Path = tmp_path_factory.mktemp("gateway-authz")
    async with running_gateway(tmp, {n: f.app() for n, f in fakes.items()}) as h:
        for name, (role, programs, person) in WHO.items():
            h.user(name, role, programs, person)
        yield World(h, fakes)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), CASES, ids=[f"{m} {p}" for m, p, _, _ in CASES])
async def test_every_role_against_the_route(env: World, method: str, path: str, body: Any, allowed: set[str]) -> None:
    for who in WHO:
        env.reset()
        r = await env.call(who, method, path, body)
        if who in allowed:
            assert r.status_code < 300, (who, r.status_code, r.text)
            if method != "GET":
                assert len(env.writes()) == 1, (who, env.writes())
        else:
            assert r.status_code in (403, 404), (who, r.status_code, r.text)
            assert env.writes() == [], (who, env.writes())
            assert r.json()["detail"][0]["field"], r.text


async def test_every_route_needs_a_token(env: World) -> None:
    for method, path, body, _ in CASES:
        r = await env.h.client.request(method, "/api/v1" + path, json=body if isinstance(body, dict) else None)
        assert r.status_code == 401, (method, path)
    assert env.writes() == []


OPS_PATHS = ("/health", "/ready", "/metrics", "/admin/")


def _real_routes(tmp: Path) -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    """(method, path pattern) of every route of the real services' HTTP apps (built, not started)."""
    from shared.settings import ServiceSettings

    routes: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for name in ("matching", "activity", "payments", "notify"):
        module = importlib.import_module(f"services.{name}.entrypoints.app")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate operation ids of GET+POST routes
            paths = module.create_app(ServiceSettings(data_dir=tmp / name)).openapi()["paths"]
        routes[name] = [
            (method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
            for path, ops in paths.items() for method in ops if not path.startswith(OPS_PATHS)
        ]
    return routes




async def test_without_a_read_of_an_announcement_only_admins_send_it(env: World) -> None:
    announcement = env.fakes["notify"].routes.pop(("GET", "/announcements/ann-a"))
    env.h.gateway._missing_routes.clear()
    try:
        env.reset()
        assert (await env.call("coord_a", "POST", "/announcements/ann-a/send")).status_code == 403
        assert env.writes() == []
        assert (await env.call("admin", "POST", "/announcements/ann-a/send")).status_code == 200
    finally:
        env.fakes["notify"].routes[("GET", "/announcements/ann-a")] = announcement
        env.h.gateway._missing_routes.clear()


async def test_a_coordinator_cannot_slip_another_programs_statement_into_a_bulk_approval(env: World) -> None:
    env.reset()
    r = await env.call("coord_a", "POST", "/statements/approvals", {"statement_ids": ["st-1", "st-b"]})
    assert r.status_code == 404 and env.writes() == []
    r = await env.call("admin", "POST", "/statements/approvals", {"statement_ids": ["st-1", "st-b"]})
    assert r.status_code == 200 and len(env.writes()) == 1


async def test_every_call_the_gateway_makes_exists_in_the_real_service(env: World, tmp_path: Path) -> None:
    """Contract check: the fakes answer whatever they are asked, so prove each path the gateway
    called (for every route, as admin and as a participant) is a route of the real service."""
    real = _real_routes(tmp_path)
    seen: set[tuple[str, str, str]] = set()
    for method, path, body in [(m, p, b) for m, p, b, _ in CASES] + [(m, p, None) for m, p in LISTS]:
        for who in ("admin", "mentor_1", "mentee_1", "meta_1"):
            env.reset()
            await env.call(who, method, path, body)
            seen |= {(c.service, c.method, c.path) for f in env.fakes.values() for c in f.calls}
    missing = [
        call for call in sorted(seen)
        if not any(m == call[1] and rx.match(call[2]) for m, rx in real[call[0]])
    ]
    assert missing == []
    # ...and every capability of every service is reachable through some gateway route.
    unreached = [
        (service, method, rx.pattern) for service, routes in real.items() for method, rx in routes
        if not any(s == service and m == method and rx.match(p) for s, m, p in seen)
    ]
    assert unreached == [], f"{unreached}: service routes with no gateway route (add one in services/gateway/entrypoints/routes)"
