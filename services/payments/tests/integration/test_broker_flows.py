"""Payments against the real broker and the real stores: events from matching and activity in,
review through HTTP, payout on pay day, events out. Redelivered events, repeated approvals and a
re-run payout pay nothing twice."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlmodel import select

from services.payments.adapters.tables import BatchRow, PayoutItemRow, StatementRow
from services.payments.entrypoints.app import PaymentsSettings, create_app
from services.payments.service_layer.statements import statement_id_for
from services.payments.tests.support import PROGRAM, closed, matched, mentor, program
from shared.clock import ManualClock
from shared.contracts.activity import TimeEntryAmended
from shared.contracts.base import Event
from shared.contracts.envelope import Cause, new_envelope
from shared.contracts.program import TimeEntryKind
from shared.messaging.admin import ensure_topics
from shared.service import Service
from shared.topics import PAYMENTS
from tests.support import headers_of, publish_events, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka]
OCT_CLOSE = datetime(2026, 11, 1, 12, tzinfo=UTC)
NOV_PAY_DAY = datetime(2026, 11, 2, 16, tzinfo=UTC)


async def publish_twice(bootstrap: str, event: Event, prefix: str) -> None:
    """The same record twice (same envelope, same event_id): what a redelivery looks like."""
    env = new_envelope(event_type=event.event_type, event_version=event.event_version, key=event.aggregate_key(),
                       producer="activity", clock=ManualClock(OCT_CLOSE), cause=Cause.new())
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await kafka.start()
    try:
        for _ in range(2):
            await kafka.send_and_wait(prefix + event.topic, event.to_json(), key=env.key.encode(),
                                      headers=env.to_headers())
    finally:
        await kafka.stop()


async def test_redelivery_repeated_approval_and_rerun_payout_pay_once(tmp_path, bootstrap: str, store_url: str) -> None:
    prefix = f"t{uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    clock = ManualClock(OCT_CLOSE)
    settings = PaymentsSettings(
        kafka_bootstrap_servers=bootstrap, database_url=store_url, data_dir=tmp_path, topic_prefix=prefix,
        allow_clock_control=True, scheduler_interval_seconds=3600,
    )
    app = create_app(settings, clock)
    service: Service = app.state.service
    october = closed("ann", "2026-10", ("a1", "meeting", 90), ("a2", "workshop", 60), ("a3", "planning", 60))
    await publish_events(bootstrap, [program(), mentor("ann"), mentor("bob"), matched("pa-1", "ann")], prefix=prefix,
                         producer="matching")
    await publish_twice(bootstrap, october, prefix)  # redelivered
    await publish_events(bootstrap, [october, closed("bob", "2026-10", ("b1", "meeting", 60))], prefix=prefix,
                         producer="activity")  # and sent again by activity with a new event id

    def rows(model: type[Any]) -> list[Any]:
        with service.db.session() as s:
            return list(s.exec(select(model)).all())

    sid = statement_id_for(PROGRAM, "ann", "2026-10")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payments") as client,
    ):
        await wait_until(lambda: len(rows(StatementRow)) == 2, timeout_s=60)
        st = (await client.get(f"/statements/{sid}")).json()
        assert (st["total"], st["status"], len(st["lines"])) == ("140.00", "in_review", 3)

        refused = await client.post(f"/statements/{sid}/approve", json={})
        assert refused.status_code == 400
        assert refused.json()["detail"][0]["field"] == "X-Actor-Id"
        for _ in range(2):  # the gateway retries the approval
            ok = await client.post(f"/statements/{sid}/approve", json={"revision": 1},
                                   headers={"X-Actor-Id": "staff-7", "X-Request-ID": "approve-1"})
            assert ok.status_code == 200, ok.text
            assert ok.json()["status"] == "approved"
        listed = (await client.get("/statements", params={"status": "in_review"})).json()
        assert [s["mentor_id"] for s in listed] == ["bob"]

        # Staff ask bob about an entry; bob corrects it in activity; the statement comes back.
        bob = statement_id_for(PROGRAM, "bob", "2026-10")
        asked = await client.post(f"/statements/{bob}/clarifications", headers={"X-Actor-Id": "staff-7"},
                                  json={"entry_ids": ["b1"], "question": "Was this an intentional meeting?"})
        assert asked.status_code == 201 and asked.json()["status"] == "clarification"
        await publish_events(bootstrap, [TimeEntryAmended(
            entry_id="b1", mentor_id="bob", program_id=PROGRAM, kind=TimeEntryKind.MEETING,
            work_date=date(2026, 10, 3), minutes=45, reason="it was 45 minutes", month="2026-10")],
            prefix=prefix, producer="activity")

        async def bob_back_in_review() -> bool:
            st = (await client.get(f"/statements/{bob}")).json()
            return (st["status"], st["revision"], st["total"]) == ("in_review", 2, "30.00")

        for _ in range(300):
            if await bob_back_in_review():
                break
            await asyncio.sleep(0.1)
        assert await bob_back_in_review()

        over = await client.post("/reimbursements", headers={"X-Actor-Id": "staff-7"}, json={
            "partnership_id": "pa-1", "kind": "travel", "amount": "350.00", "spent_on": "2026-10-20"})
        assert over.status_code == 409
        assert over.json()["detail"][0]["field"] == "amount"
        assert "remaining travel budget of 300.00 USD" in over.json()["detail"][0]["reason"]
        as_float = await client.post("/reimbursements", headers={"X-Actor-Id": "staff-7"}, json={
            "partnership_id": "pa-1", "kind": "book", "amount": 12.5, "spent_on": "2026-10-20"})
        assert as_float.status_code == 422 and as_float.json()["detail"][0]["field"] == "amount"
        book = await client.post("/reimbursements", headers={"X-Actor-Id": "staff-7"}, json={
            "reimbursement_id": "rb-1", "partnership_id": "pa-1", "kind": "book", "amount": "24.99",
            "spent_on": "2026-10-20", "description": "book study: Visible Learning"})
        assert book.status_code == 201, book.text

        assert (await client.post("/admin/clock", json={"now": NOV_PAY_DAY.isoformat()})).status_code == 200
        for _ in range(3):  # pay day's job, re-run
            assert (await client.post("/admin/jobs/payout")).status_code == 200
        [batch] = (await client.get("/batches")).json()
        assert (batch["pay_date"], batch["total"], batch["items"]) == ("2026-11-02", "164.99", 2)
        text = (await client.get(f"/batches/{batch['batch_id']}/csv")).text
        assert {(r["reference"], r["amount"]) for r in csv.DictReader(io.StringIO(text))} == {
            ("rb-1", "24.99"), (sid, "140.00")}
        pending = (await client.get("/payouts/pending")).json()
        assert [(p["mentor_id"], p["waiting_for"]) for p in pending] == [("bob", "waiting for approval")]
        audit = (await client.get(f"/statements/{sid}/audit")).json()
        assert [(a["action"], a["actor"]) for a in audit] == [("prepared", "system"), ("approved", "staff-7")]

        by_type: dict[str, list[dict[str, str]]] = {}

        async def read_out() -> bool:
            by_type.clear()
            for record in await read_topic(bootstrap, prefix + PAYMENTS):
                h = headers_of(record)
                by_type.setdefault(h["event_type"], []).append(h)
            return "PayoutIssued" in by_type

        for _ in range(100):
            if await read_out():
                break
        assert {t: len(v) for t, v in by_type.items()} == {
            "StatementPrepared": 3, "ClarificationRequested": 1, "PaymentApproved": 1, "ReimbursementRefused": 1, "ReimbursementApproved": 1,
            "PayoutIssued": 1,
        }
        assert by_type["PaymentApproved"][0]["correlation_id"] == "approve-1"
    assert len(rows(BatchRow)) == 1
    assert sorted(i.reference for i in rows(PayoutItemRow)) == sorted(["rb-1", sid])
