"""The gateway against services over real sockets on 127.0.0.1: a service with nothing listening
on its port, and one that accepts but never answers, give 503 naming it within the bounded
timeouts (never a hang); a working one answers through the gateway served by uvicorn."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.domain.access import Role
from services.gateway.tests.fakes import world
from services.gateway.tests.support import free_port, running_gateway, serve, settings_for

pytestmark = pytest.mark.integration


async def test_a_service_with_nothing_listening_gives_503_at_once(tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with running_gateway(tmp_path, network=True, activity_url=dead, matching_url=dead) as h:
        h.user("coord", Role.COORDINATOR, ["prog-a"])
        started = time.monotonic()
        r = await h.client.post("/api/v1/programs/prog-a/month-closes", json={}, headers=h.auth("coord"))
        assert time.monotonic() - started < 5.0  # refused at once (bound generous for a loaded machine)
        assert r.status_code == 503
        assert r.json() == {"detail": [{"field": "service", "reason": "activity is unavailable",
                                        "code": "service_unavailable"}]}
        r = await h.client.get("/api/v1/partnerships/pa-1", headers=h.auth("coord"))
        assert r.status_code == 503 and r.json()["detail"][0]["reason"] == "matching is unavailable"
        ready = await h.client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["services"]["activity"] == "unavailable"
        metrics = (await h.client.get("/metrics")).text
        assert 'gateway_upstream_requests_total{outcome="unreachable",service="activity"} 2.0' in metrics


async def test_a_service_that_never_answers_gives_503_after_the_read_timeout(tmp_path) -> None:
    hung = FastAPI()

    @hung.api_route("/{path:path}", methods=["GET", "POST"])
    async def never(path: str) -> None:
        await asyncio.sleep(30)

    async with serve(hung) as url, running_gateway(
        tmp_path, network=True, payments_url=url, upstream_read_timeout_seconds=0.5
    ) as h:
        h.user("coord", Role.COORDINATOR, ["prog-a"])
        started = time.monotonic()
        r = await h.client.get("/api/v1/batches", headers=h.auth("coord"))
        elapsed = time.monotonic() - started
        assert r.status_code == 503
        assert r.json()["detail"][0] == {"field": "service", "reason": "payments is unavailable (no answer in time)",
                                         "code": "service_unavailable"}
        assert 0.4 < elapsed < 10.0  # the 0.5 s read timeout, not the 30 s the service would take


async def test_gateway_process_forwards_over_the_network(tmp_path) -> None:
    fakes = world()
    async with (
        serve(fakes["matching"].app()) as matching_url,
        serve(fakes["activity"].app()) as activity_url,
    ):
        app = create_app(settings_for(tmp_path, matching_url=matching_url, activity_url=activity_url))
        async with serve(app) as gateway_url:
            from services.gateway.service_layer import accounts
            from shared.clock import SystemClock

            with app.state.gateway.db.session() as s:
                user = accounts.create_user(s, SystemClock(), name="M", role=Role.MENTOR, program_ids=["prog-a"],
                                            person_id="mentor-1")
                token = accounts.issue_token(s, SystemClock(), user.id).secret
            async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {token}"}) as client:
                r = await client.post("/api/v1/meetings", json={"partnership_id": "pa-1"},
                                      headers={"Idempotency-Key": "net-1"})
                assert r.status_code == 200, r.text
                r2 = await client.post("/api/v1/meetings", json={"partnership_id": "pa-1"},
                                       headers={"Idempotency-Key": "net-1"})
                assert r2.json() == r.json()
                assert len(fakes["activity"].mutations()) == 1
                r = await client.post("/api/v1/meetings", json={"partnership_id": "pa-2"})
                assert r.status_code == 404  # another mentor's partnership: not even its existence
                assert len(fakes["activity"].mutations()) == 1
                docs = await client.get("/openapi.json")
                assert docs.status_code == 200 and "/api/v1/meetings" in docs.json()["paths"]
