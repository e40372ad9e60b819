"""Exactly one email per recipient and cause, against the real broker and a real SMTP server:
under redelivery, a restart that replays the topics, two instances in one group, and an SMTP
server that refuses (retries, then failed, then a resend that succeeds, nothing sent twice)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata

from services.notify.entrypoints.app import create_app
from services.notify.tests.support import (
    PROGRAM,
    RecordingSMTP,
    assigned_partitions,
    match,
    people,
    rows,
    running,
    runtime,
    service_settings,
    smtp_server,
)
from shared.contracts.base import Event
from shared.contracts.envelope import Envelope
from shared.messaging.admin import ensure_topics
from shared.topics import MATCHING, NOTIFY
from tests.support import headers_of, publish_events, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka]
async def republish(bootstrap: str, topic: str, event: Event, envelope: Envelope) -> None:
    """Put the very same record (same event id) on the topic again: a redelivery."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, event.to_json(), key=envelope.key.encode(), headers=envelope.to_headers())
    finally:
        await producer.stop()


async def rewind_group(bootstrap: str, group: str, topic: str) -> None:
    """Commit offset 0 on every partition: the next start replays the whole topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.subscribe([topic])
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)  # joins the group (alone: it gets every partition)
        await consumer.commit({tp: OffsetAndMetadata(0, "") for tp in consumer.assignment()})
    finally:
        await consumer.stop()


def delivered_once(smtp: RecordingSMTP) -> None:
    ids = smtp.message_ids()
    assert len(ids) == len(set(ids)), "an email was sent twice"


async def test_redelivery_and_a_replaying_restart_send_no_second_email(
    tmp_path: Path, bootstrap: str, store_url: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    with smtp_server() as smtp:
        cfg = service_settings(tmp_path, smtp.port, store_url, bootstrap, prefix)
        first = create_app(cfg)
        async with running(first):
            envs = await publish_events(bootstrap, [*people(2), match(0)], prefix=prefix)
            await wait_until(lambda: len(smtp.received) == 2, timeout_s=60)
            await republish(bootstrap, prefix + MATCHING, match(0), envs[-1])
            consumer = runtime(first).service.consumers[0][0]
            await wait_until(lambda: consumer.stats.duplicates >= 1, timeout_s=60)
            await asyncio.sleep(0.5)  # give a wrong second email time to go out
            assert len(smtp.received) == 2
        # Restart with every committed offset lost: the whole topic is delivered again.
        await rewind_group(bootstrap, runtime(first).service.consumers[0][0].name, prefix + MATCHING)
        second = create_app(cfg)
        async with running(second):
            await publish_events(bootstrap, [match(1)], prefix=prefix)
            await wait_until(lambda: len(smtp.received) == 4, timeout_s=60)
            consumer = runtime(second).service.consumers[0][0]
            await wait_until(lambda: consumer.stats.duplicates >= 6, timeout_s=60)  # the replayed history
            await asyncio.sleep(0.5)
            assert sorted(a for r in smtp.received for a in r.rcpt_tos) == [
                "mentee-0@example.org", "mentee-1@example.org", "mentor-0@example.org", "mentor-1@example.org"]
            delivered_once(smtp)
            await wait_until(lambda: sum(m.status == "sent" for m in rows(second)) == 4, timeout_s=30)
            assert len(rows(second)) == 4 and {m.kind for m in rows(second)} == {"match_introduction"}
            async def email_sent_events() -> list[Any]:
                return [r for r in await read_topic(bootstrap, prefix + NOTIFY)
                        if headers_of(r)["event_type"] == "EmailSent"]
            for _ in range(100):
                if len(await email_sent_events()) >= 4:
                    break
                await asyncio.sleep(0.2)
            assert len(await email_sent_events()) == 4


async def test_two_instances_in_one_group_send_each_email_once(
    tmp_path: Path, bootstrap: str, store_url: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    with smtp_server() as smtp:
        cfg = service_settings(tmp_path, smtp.port, store_url, bootstrap, prefix, mail_batch_size=7)
        a, b = create_app(cfg), create_app(cfg)
        async with running(a) as client_a, running(b):
            # Both members hold partitions (matching, activity, payments: 6 each) before the stream.
            await wait_until(lambda: assigned_partitions(a) > 0 and assigned_partitions(b) > 0
                             and assigned_partitions(a) + assigned_partitions(b) == 18, timeout_s=60)
            await publish_events(bootstrap, [*people(60), *[match(i) for i in range(30)]], prefix=prefix)
            await wait_until(lambda: len(smtp.received) == 60, timeout_s=90)
            r = await client_a.post("/announcements", json={"program_id": PROGRAM, "audience": "everyone",
                                                            "title": "Survey", "body": "Please answer."})
            assert r.status_code == 201, r.text
            r = await client_a.post(f"/announcements/{r.json()['announcement_id']}/send")
            assert r.status_code == 200 and r.json()["recipients"] == 120
            await wait_until(lambda: len(smtp.received) == 180, timeout_s=90)
            await asyncio.sleep(1.0)
            assert len(smtp.received) == 180
            delivered_once(smtp)
            consumed = [runtime(x).service.consumers[0][0].stats.processed for x in (a, b)]
            assert sum(consumed) == 151 and all(consumed), consumed  # both instances took partitions


async def test_failing_smtp_retries_then_fails_then_a_resend_succeeds_once(
    tmp_path: Path, bootstrap: str, store_url: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    with smtp_server() as smtp:
        smtp.refuse_with = "451 4.3.0 mailbox temporarily unavailable"
        app = create_app(service_settings(tmp_path, smtp.port, store_url, bootstrap, prefix, mail_attempts=3))
        async with running(app) as client:
            await publish_events(bootstrap, [*people(1), match(0)], prefix=prefix)

            async def failed() -> list[dict[str, Any]]:
                body = (await client.get("/messages/failed")).json()
                return list(body["items"])

            for _ in range(300):
                if len(await failed()) == 2:
                    break
                await asyncio.sleep(0.1)
            items = await failed()
            assert len(items) == 2 and all(m["attempts"] == 3 for m in items)
            assert all("451" in m["last_error"] for m in items)
            assert smtp.refused == 6 and smtp.received == []  # 3 attempts each, with backoff

            smtp.refuse_with = "554 5.7.1 rejected by policy"
            # A permanent refusal is not retried: one attempt, then failed.
            target = items[0]["message_id"]
            assert (await client.post(f"/messages/{target}/resend", headers={"X-Actor-Id": "staff-1"})).status_code == 200
            await wait_until(lambda: smtp.refused == 7, timeout_s=30)
            for _ in range(100):
                m = (await client.get(f"/messages/{target}")).json()
                if m["status"] == "failed":
                    break
                await asyncio.sleep(0.1)
            assert m["status"] == "failed" and m["attempts"] == 1 and m["last_error"].startswith("554")

            smtp.refuse_with = None
            for item in items:
                r = await client.post(f"/messages/{item['message_id']}/resend", headers={"X-Actor-Id": "staff-1"})
                assert r.status_code == 200 and r.json()["status"] == "pending"
            await wait_until(lambda: len(smtp.received) == 2, timeout_s=30)
            again = await client.post(f"/messages/{target}/resend")
            for _ in range(50):
                if (await client.get(f"/messages/{target}")).json()["status"] == "sent":
                    break
                await asyncio.sleep(0.1)
            again = await client.post(f"/messages/{target}/resend")
            assert again.status_code == 409 and again.json()["detail"][0]["code"] == "not_failed"
            await asyncio.sleep(0.5)
            assert len(smtp.received) == 2
            delivered_once(smtp)
            by_person = (await client.get("/messages", params={"person_id": "mentor-0"})).json()
            assert by_person["total"] == 1 and by_person["items"][0]["status"] == "sent"
            assert by_person["items"][0]["resent_by"] == "staff-1"

            async def notify_events() -> list[str]:
                return [headers_of(r)["event_type"] for r in await read_topic(bootstrap, prefix + NOTIFY)]
            for _ in range(100):
                kinds = await notify_events()
                if kinds.count("EmailSent") == 2 and kinds.count("EmailFailed") == 3:
                    break
                await asyncio.sleep(0.2)
            kinds = await notify_events()
            assert kinds.count("EmailFailed") == 3 and kinds.count("EmailSent") == 2
