"""The staff action "run the payout now" (POST /programs/{id}/payouts) over HTTP on the real
stores (SQLite and PostgreSQL): the same batch as the pay-day job, once per program and pay day,
whoever runs it first; unapproved statements stay pending; refusals name the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.payments.entrypoints.app import emitter
from services.payments.entrypoints.http import router
from services.payments.service_layer import statements
from services.payments.service_layer.payout import pay_now, run_payouts
from services.payments.service_layer.statements import statement_id_for
from services.payments.tests.support import PROGRAM, Harness, closed, mentor, program

pytestmark = pytest.mark.integration
SUNDAY_1_NOV = datetime(2026, 11, 1, 12, tzinfo=UTC)  # 05:00 in Denver; pay day is Monday 2 Nov
PAY_DAY = datetime(2026, 11, 2, 16, tzinfo=UTC)
ANN, BOB = (statement_id_for(PROGRAM, m, "2026-10") for m in ("ann", "bob"))


class Api:
    def __init__(self, h: Harness, client: httpx.AsyncClient) -> None:
        self.h, self.client = h, client

    async def pay(self, status: int, body: Any = None, actor: str | None = "staff-3",
                  program_id: str = PROGRAM) -> Any:
        headers = {"X-Actor-Id": actor} if actor else {}
        r = await self.client.post(f"/programs/{program_id}/payouts", json=body, headers=headers)
        assert r.status_code == status, r.text
        return r.json()

    async def get(self, path: str) -> Any:
        r = await self.client.get(path)
        assert r.status_code == 200, r.text
        return r.json()

    def job(self) -> list[str]:
        return run_payouts(self.h.service.db, lambda s: emitter(self.h.service, s), self.h.clock.now)


@pytest.fixture
async def api(store_url: str) -> AsyncIterator[Api]:
    h = Harness(store_url, SUNDAY_1_NOV)
    h.tx(lambda s, e: statements.program_configured(s, program()))
    for m in ("ann", "bob"):
        enrolled, october = mentor(m), closed(m, "2026-10", (f"{m}1", "meeting", 90))
        h.tx(lambda s, e: statements.mentor_enrolled(s, enrolled))  # noqa: B023
        h.tx(lambda s, e: statements.month_closed(s, e, h.clock.now(), october))  # noqa: B023
    h.tx(lambda s, e: statements.approve(s, e, h.clock.now(), ANN, "staff-1"))
    app = h.service.http_app(router(h.service))  # the HTTP API only: no broker, no relay
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payments") as client:
        yield Api(h, client)
    h.close()


async def test_staff_run_now_issues_the_days_batch_once_and_a_rerun_returns_it(api: Api) -> None:
    first = await api.pay(201)
    assert (first["pay_date"], first["created"]) == ("2026-11-01", True)  # today in Denver
    batch = first["batch"]
    assert [(i["reference"], i["amount"]) for i in batch["payout_items"]] == [(ANN, "60.00")]
    again = await api.pay(200, actor="staff-4")
    assert again["created"] is False and again["batch"]["batch_id"] == batch["batch_id"]
    assert again["batch"]["payout_items"] == batch["payout_items"]
    assert [b["batch_id"] for b in await api.get("/batches")] == [batch["batch_id"]]
    assert len(api.h.events("PayoutIssued")) == 1
    audit = (await api.get(f"/batches/{batch['batch_id']}"))["audit"]
    assert [(a["action"], a["actor"]) for a in audit] == [("issued", "staff-3"), ("rerun", "staff-4")]
    # the unapproved statement is not paid: still pending, waiting for approval
    pending = await api.get(f"/payouts/pending?program_id={PROGRAM}")
    assert [(p["statement_id"], p["status"], p["waiting_for"]) for p in pending] == [
        (BOB, "in_review", "waiting for approval")]
    assert (await api.get(f"/statements/{ANN}"))["status"] == "issued"

    # pay day: the job finds ann already paid; bob, approved now, is paid once in the day's batch
    api.h.clock.set(PAY_DAY)
    assert api.job() == []
    api.h.tx(lambda s, e: statements.approve(s, e, api.h.clock.now(), BOB, "staff-1"))
    [pay_day_batch] = api.job()
    # the staff action for the same day answers with the job's batch: one batch per program and day
    same_day = await api.pay(200, {"pay_date": "2026-11-02"})
    assert same_day["created"] is False and same_day["batch"]["batch_id"] == pay_day_batch
    assert [(i["reference"], i["amount"]) for i in same_day["batch"]["payout_items"]] == [(BOB, "60.00")]
    assert [(a["action"], a["actor"]) for a in same_day["batch"]["audit"]] == [("issued", "system"),
                                                                               ("rerun", "staff-3")]
    # an earlier day with nothing left to pay issues nothing
    empty = await api.pay(200, {"pay_date": "2026-10-30"})
    assert (empty["created"], empty["batch"]) == (False, None)
    assert len(api.h.events("PayoutIssued")) == 2


async def test_refusals_name_the_field_and_the_reason(api: Api) -> None:
    future = await api.pay(400, {"pay_date": "2026-11-02"})  # tomorrow in Denver (already 2 Nov in UTC+1)
    assert future == {"detail": [{"field": "pay_date", "code": "in_future",
                                  "reason": "2026-11-02 is in the future: today is 2026-11-01 in America/Denver"}]}
    bad = await api.pay(422, {"pay_date": "2026-13-01"})
    assert bad["detail"][0]["field"] == "pay_date" and bad["detail"][0]["reason"]
    unknown = await api.pay(404, program_id="nope")
    assert unknown == {"detail": [{"field": "program_id", "reason": "no program nope", "code": "not_found"}]}
    anonymous = await api.pay(400, actor=None)
    assert anonymous["detail"][0]["field"] == "X-Actor-Id"
    assert await api.get("/batches") == [] and api.h.events("PayoutIssued") == []


async def test_staff_and_the_pay_day_job_at_once_issue_one_batch(api: Api) -> None:
    api.h.clock.set(PAY_DAY)
    other = Harness(api.h.service.db.url, PAY_DAY)  # the job on a second instance, same store

    def staff() -> str | None:
        run = pay_now(api.h.service.db, lambda s: emitter(api.h.service, s), PAY_DAY, PROGRAM, None, "staff-3")
        return run.batch_id

    def job() -> list[str]:
        return run_payouts(other.service.db, lambda s: emitter(other.service, s), other.clock.now)

    with ThreadPoolExecutor(2) as pool:
        by_staff, by_job = pool.submit(staff), pool.submit(job)
        staff_batch, job_batches = by_staff.result(timeout=60), by_job.result(timeout=60)
    other.close()
    [batch] = await api.get("/batches")
    assert staff_batch == batch["batch_id"] and job_batches in ([], [batch["batch_id"]])
    assert batch["pay_date"] == "2026-11-02" and batch["items"] == 1
    assert len(api.h.events("PayoutIssued")) == 1
