"""A service built with shared.service: HTTP change -> outbox -> relay -> Kafka -> consumer -> effect,
plus health, readiness, metrics and the error body."""

from __future__ import annotations

import gc
import sys

import httpx
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlmodel import select

from shared.contracts.envelope import Cause
from shared.errors import Conflict
from shared.messaging import HandlerContext
from shared.migrations import Migration, create_tables
from shared.service import Service, request_cause
from shared.settings import ServiceSettings
from tests.support import Ping, PingEffect, create_topic, headers_of, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


class PingIn(BaseModel):
    key: str = Field(min_length=1)
    seq: int = Field(ge=0)


async def test_http_change_reaches_consumer_through_outbox(tmp_path, bootstrap: str, topic_name: str) -> None:
    await create_topic(bootstrap, topic_name)
    settings = ServiceSettings(
        kafka_bootstrap_servers=bootstrap, data_dir=tmp_path, scheduler_interval_seconds=0.2
    )
    service = Service(
        "runtime-test", migrations=[Migration(1, "pings", create_tables(PingEffect))], settings=settings
    )
    consumer = service.consumer(topic_name)
    ticks: list[int] = []

    @consumer.handles(Ping)
    def on_ping(ctx: HandlerContext, ping: Ping) -> None:
        ctx.session.add(PingEffect(event_id=str(ctx.envelope.event_id), key=ping.key, seq=ping.seq))

    @service.job("tick")
    def tick() -> None:
        ticks.append(1)

    router = APIRouter()

    @router.post("/pings", status_code=201)
    def post_ping(body: PingIn, cause: Cause = Depends(request_cause)) -> dict[str, str]:
        if body.seq == 13:
            raise Conflict("seq", "13 is refused by this test service", "unlucky")
        with service.transaction(cause) as tx:
            env = tx.emit(Ping(key=body.key, seq=body.seq), topic=topic_name)
        return {"event_id": str(env.event_id)}

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug in a handler")

    app = service.http_app(router)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client,
    ):
        r = await client.post("/pings", json={"key": "p-1", "seq": 1}, headers={"X-Request-ID": "req-7"})
        assert r.status_code == 201, r.text

        def effects() -> list[PingEffect]:
            with service.db.session() as s:
                return list(s.exec(select(PingEffect)).all())

        await wait_until(lambda: len(effects()) == 1, timeout_s=30)
        assert effects()[0].event_id == r.json()["event_id"]
        [record] = await read_topic(bootstrap, topic_name)
        assert headers_of(record)["correlation_id"] == "req-7"
        assert headers_of(record)["producer"] == "runtime-test"

        bad = await client.post("/pings", json={"key": "", "seq": -1})
        assert bad.status_code == 422
        fields = {d["field"]: d["reason"] for d in bad.json()["detail"]}
        assert set(fields) == {"key", "seq"}
        conflict = await client.post("/pings", json={"key": "k", "seq": 13})
        assert conflict.status_code == 409
        assert conflict.json() == {
            "detail": [{"field": "seq", "reason": "13 is refused by this test service", "code": "unlucky"}]
        }

        await wait_until(lambda: service.broker_connected, timeout_s=30)
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"store": "ok", "broker": "ok", "ready": True}
        assert sys.getswitchinterval() == pytest.approx(0.001), "a started service sets its GIL switch interval"
        assert gc.get_freeze_count() > 10_000, "... and takes what it started with out of the collector's walks"
        assert (await client.get("/no-such-route")).status_code == 404
        with pytest.raises(RuntimeError, match="a bug in a handler"):  # the test transport re-raises it
            await client.get("/boom")
        metrics = (await client.get("/metrics")).text
        assert 'messages_processed_total{consumer="runtime-test"} 1.0' in metrics
        assert "outbox_pending 0.0" in metrics
        assert f'consumer_lag{{group="runtime-test",partition="0",topic="{topic_name}"}} 0.0' in metrics
        assert 'http_requests_total{method="POST",route="/pings",status="201"} 1.0' in metrics
        assert 'http_requests_total{method="POST",route="/pings",status="422"} 1.0' in metrics
        assert 'http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in metrics
        assert 'http_requests_total{method="GET",route="/boom",status="500"} 1.0' in metrics
        await wait_until(lambda: len(ticks) >= 2, timeout_s=10)
