"""The activity service end to end over its HTTP API, against the real broker: matching's events in,
meetings / time / activities / compliance / month close out, and two instances closing at once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from services.activity.adapters.tables import MonthCloseRow
from services.activity.entrypoints.app import create_app
from services.activity.tests.support import PROGRAM, matched, program_event
from shared.clock import ManualClock
from shared.messaging.admin import ensure_topics
from shared.service import Service
from shared.settings import ServiceSettings
from shared.topics import ACTIVITY
from tests.support import headers_of, publish_events, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka]
MENTOR = {"X-Actor-Id": "m1", "X-Actor-Role": "mentor"}
STAFF = {"X-Actor-Id": "staff-1", "X-Actor-Role": "staff"}


def settings_for(tmp_path: Path, bootstrap: str, prefix: str) -> ServiceSettings:
    return ServiceSettings(kafka_bootstrap_servers=bootstrap, data_dir=tmp_path, topic_prefix=prefix,
                           scheduler_interval_seconds=3600, allow_clock_control=True)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        yield client


async def events_of(bootstrap: str, prefix: str, event_type: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    records = await read_topic(bootstrap, prefix + ACTIVITY)
    return [(headers_of(r), json.loads(r.value)) for r in records if headers_of(r)["event_type"] == event_type]


def problems(r: httpx.Response) -> list[tuple[str, str]]:
    return [(d["field"], d["code"]) for d in r.json()["detail"]]


async def test_meetings_time_activities_compliance_and_month_close_over_http(tmp_path: Path, bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    clock = ManualClock(datetime(2026, 11, 20, 18, 0, tzinfo=UTC))
    app = create_app(settings_for(tmp_path, bootstrap, prefix), clock)
    service: Service = app.state.service
    started = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
    await publish_events(bootstrap, [program_event(), matched("p1", "m1", started), matched("p2", "m2", started)],
                         prefix=prefix, clock=clock)
    async with running(app) as client:
        await wait_until(lambda: service.consumers[0][0].stats.processed >= 3, timeout_s=60)

        meeting = {"partnership_id": "p1", "started_at": "2026-10-31T23:30:00-06:00", "duration_minutes": 60,
                   "mode": "video", "intentional": True, "topics": ["exit tickets"], "notes": "good"}
        r = await client.post("/meetings", json=meeting, headers={**MENTOR, "X-Request-ID": "req-1"})
        assert r.status_code == 201, r.text
        meeting_id = r.json()["meeting_id"]
        # Refusals name the field and the reason.
        refusals = [
            ({**meeting, "started_at": "2026-11-21T00:00:00Z"}, MENTOR, 400, [("started_at", "in_future")]),
            ({**meeting, "duration_minutes": 481}, MENTOR, 400, [("duration_minutes", "too_long")]),
            ({**meeting, "started_at": "2026-08-30T12:00:00Z"}, MENTOR, 400, [("started_at", "before_partnership")]),
            ({**meeting, "partnership_id": "p2"}, MENTOR, 403, [("partnership_id", "forbidden")]),
            ({**meeting, "partnership_id": "nope"}, MENTOR, 404, [("partnership_id", "not_found")]),
            (meeting, MENTOR, 409, [("started_at", "duplicate")]),
            (meeting, {}, 403, [("X-Actor-Id", "no_actor")]),
            ({**meeting, "started_at": "2026-10-31T23:30:00"}, MENTOR, 422, [("started_at", "timezone_aware")]),
        ]
        for body, headers, status, expected in refusals:
            r = await client.post("/meetings", json=body, headers=headers)
            assert (r.status_code, problems(r)) == (status, expected), (body, r.text)

        r = await client.post(f"/meetings/{meeting_id}/corrections", json={"duration_minutes": 45}, headers=MENTOR)
        assert r.status_code == 200 and r.json()["duration_minutes"] == 45 and r.json()["revision"] == 2

        r = await client.post("/time-entries", json={"program_id": PROGRAM, "kind": "workshop",
                                                     "work_date": "2026-10-07", "minutes": 60}, headers=MENTOR)
        assert r.status_code == 201, r.text
        workshop = r.json()["entry_id"]
        planning = {"program_id": PROGRAM, "kind": "planning", "work_date": "2026-10-06", "minutes": 121,
                    "workshop_entry_id": workshop}
        r = await client.post("/time-entries", json=planning, headers=MENTOR)
        assert (r.status_code, problems(r)) == (409, [("minutes", "planning_cap")])
        r = await client.post("/time-entries", json={**planning, "minutes": 120}, headers=MENTOR)
        assert r.status_code == 201
        r = await client.post("/time-entries", json={"program_id": PROGRAM, "kind": "meeting",
                                                     "work_date": "2026-10-06", "minutes": 10}, headers=MENTOR)
        assert (r.status_code, problems(r)) == (400, [("kind", "meeting_via_log")])
        r = await client.post("/time-entries", json={"program_id": PROGRAM, "mentor_id": "m2", "kind": "training",
                                                     "work_date": "2026-10-20", "minutes": 30}, headers=STAFF)
        assert r.status_code == 201
        training = r.json()["entry_id"]
        r = await client.post(f"/time-entries/{training}/amendments", json={"minutes": 40, "reason": "typo"},
                              headers=STAFF)
        assert r.status_code == 200 and r.json()["minutes"] == 40

        for stage in ("exploration", "collaboration", "application"):
            r = await client.post("/activities", headers=MENTOR, json={
                "partnership_id": "p1", "kind": "pip_stage", "stage": stage, "occurred_on": "2026-10-02",
                "details": {"pip_id": "pip-1"}})
            assert r.status_code == 201, r.text
        r = await client.get("/partnerships/p1/activities")
        assert r.json()["pips"][0]["complete"] is True

        # The meeting at 23:30 on 31 October (Denver) counts for October, once the consumer has read
        # MeetingLogged and MeetingCorrected back from the topic into the compliance view.
        await wait_until(lambda: service.consumers[0][0].stats.by_type.get("MeetingCorrected", 0) >= 1, 60)
        r = await client.get("/partnerships/p1/compliance")
        assert r.status_code == 200
        monthly = next(f for f in r.json()["findings"] if f["rule"] == "intentional_meetings_per_month")
        assert (monthly["period"], monthly["actual"], monthly["expected"]) == ("2026-10", 1, 2)
        assert r.json()["status"] == "at_risk"  # September had none either

        # The daily sweep records every partnership's status; changes go out as PartnershipAtRisk.
        r = await client.post("/admin/jobs/compliance")
        assert r.status_code == 200
        r = await client.get(f"/programs/{PROGRAM}/compliance")
        assert r.json()["counts"] == {"at_risk": 2}
        page = (await client.get(f"/programs/{PROGRAM}/compliance?status=at_risk&limit=1&offset=1")).json()
        assert [p["partnership_id"] for p in page["partnerships"]] == ["p2"] and page["partnerships"][0]["reasons"]
        far = await client.get(f"/programs/{PROGRAM}/compliance?offset=9223372036854775808")  # was a 500
        assert far.status_code == 422 and far.json()["detail"][0]["field"] == "offset"
        at_risk: list[Any] = []
        for _ in range(100):
            at_risk = await events_of(bootstrap, prefix, "PartnershipAtRisk")
            if len(at_risk) >= 2:
                break
            await asyncio.sleep(0.2)
        assert sorted(body["partnership_id"] for _, body in at_risk) == ["p1", "p2"]
        assert all(body["status"] == "at_risk" and body["reasons"] for _, body in at_risk)

        # Month close: staff only, not before it is due, then once per mentor.
        r = await client.post(f"/programs/{PROGRAM}/month-closes", json={}, headers=MENTOR)
        assert r.status_code == 403
        r = await client.post(f"/programs/{PROGRAM}/month-closes", json={"month": "2026-11"}, headers=STAFF)
        assert (r.status_code, problems(r)) == (409, [("month", "not_due")])
        r = await client.post(f"/programs/{PROGRAM}/month-closes", json={}, headers={**STAFF, "X-Request-ID": "c-1"})
        assert r.status_code == 200, r.text
        assert [c["month"] for c in r.json()["closed_now"]] == ["2026-10"]
        assert r.json()["closed_now"][0]["minutes_by_kind"] == {"meeting": 45, "planning": 120, "training": 40,
                                                                "workshop": 60}
        again = await client.post(f"/programs/{PROGRAM}/month-closes", json={}, headers={**STAFF, "X-Request-ID": "c-1"})
        assert again.status_code == 200 and again.json()["closed_now"] == []
        assert again.json()["next_month"] == "2026-11"
        assert again.json()["next_close_at"] == "2026-12-04T07:00:00+00:00"
        await service.run_job_now("month-close")  # the scheduler finds nothing left either

        closed: list[Any] = []
        for _ in range(100):
            closed = await events_of(bootstrap, prefix, "MonthClosed")
            if len(closed) >= 2:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        closed = await events_of(bootstrap, prefix, "MonthClosed")
        by_mentor: dict[str, tuple[dict[str, str], dict[str, Any]]] = {b["mentor_id"]: (h, b) for h, b in closed}
        assert len(closed) == 2 and set(by_mentor) == {"m1", "m2"}
        m1_headers, m1_body = by_mentor["m1"]
        assert m1_headers["key"] == "m1" and m1_headers["correlation_id"] == "c-1"
        assert m1_headers["producer"] == "activity"
        assert m1_body["month"] == "2026-10"
        assert m1_body["minutes_by_kind"] == {"meeting": 45, "workshop": 60, "planning": 120}
        assert {e["entry_id"] for e in m1_body["entries"]} >= {meeting_id, workshop}


async def test_two_instances_closing_the_same_month_at_once_emit_one_month_closed_per_mentor(
    tmp_path: Path, bootstrap: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    clock = ManualClock(datetime(2026, 11, 20, 18, 0, tzinfo=UTC))
    apps = [create_app(settings_for(tmp_path, bootstrap, prefix), clock) for _ in range(2)]
    await publish_events(bootstrap, [program_event()], prefix=prefix, clock=clock)
    async with running(apps[0]) as a, running(apps[1]) as b:
        await wait_until(lambda: sum(app.state.service.consumers[0][0].stats.processed for app in apps) >= 1, 60)
        for i in range(30):
            r = await a.post("/time-entries", headers=STAFF, json={
                "program_id": PROGRAM, "mentor_id": f"m{i % 3}", "kind": "planning",
                "work_date": f"2026-10-{1 + i % 28:02d}", "minutes": 30})
            assert r.status_code == 201, r.text
        results = await asyncio.gather(
            a.post(f"/programs/{PROGRAM}/month-closes", json={}, headers=STAFF),
            b.post(f"/programs/{PROGRAM}/month-closes", json={}, headers=STAFF),
            apps[0].state.service.run_job_now("month-close"),
            apps[1].state.service.run_job_now("month-close"),
        )
        closes = [c for r in results[:2] for c in r.json()["closed_now"]]
        assert len(closes) <= 1
        closed: list[Any] = []
        for _ in range(100):
            closed = await events_of(bootstrap, prefix, "MonthClosed")
            if len(closed) >= 3:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        closed = await events_of(bootstrap, prefix, "MonthClosed")
        assert sorted(body["mentor_id"] for _, body in closed) == ["m0", "m1", "m2"]
        assert sum(len(body["entries"]) for _, body in closed) == 30


async def test_the_scheduler_closes_the_month_when_the_injected_clock_passes_grace(
    tmp_path: Path, bootstrap: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    clock = ManualClock(datetime(2026, 12, 3, 12, 0, tzinfo=UTC))  # November closes 4 Dec 00:00 Denver
    settings = settings_for(tmp_path, bootstrap, prefix).model_copy(update={"scheduler_interval_seconds": 0.1})
    app = create_app(settings, clock)
    service: Service = app.state.service
    await publish_events(bootstrap, [program_event()], prefix=prefix, clock=clock)
    async with running(app) as client:
        await wait_until(lambda: service.consumers[0][0].stats.processed >= 1, timeout_s=60)
        r = await client.post("/time-entries", headers=STAFF, json={
            "program_id": PROGRAM, "mentor_id": "m1", "kind": "training", "work_date": "2026-11-30", "minutes": 50})
        assert r.status_code == 201
        await asyncio.sleep(0.5)  # several scheduler runs: not due yet
        status = (await client.get(f"/programs/{PROGRAM}/month-closes")).json()
        assert status["closed"] == [] and status["next_close_at"] == "2026-12-04T07:00:00+00:00"
        clock.set(datetime(2026, 12, 4, 7, 0, tzinfo=UTC))

        def closed() -> list[Any]:
            with service.db.session() as s:
                return list(s.exec(select(MonthCloseRow)).all())

        [row] = await wait_until(closed, timeout_s=10)
        assert (row.month, row.triggered_by, row.entries) == ("2026-11", "scheduler", 1)
