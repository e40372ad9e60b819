"""The notify HTTP API as the gateway uses it, on the real broker and a real SMTP server:
newsletter draft -> items -> preview -> publish (NewsletterPublished, emails with
List-Unsubscribe), the one-click unsubscribe link, preferences, announcements with a preview,
messages by person and status, the scheduled draft, the refusal bodies; and the embedded sink."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest

from deploy.kafka.local import free_port
from services.notify.entrypoints.app import create_app
from services.notify.tests.support import (
    PROGRAM,
    match,
    people,
    running,
    runtime,
    service_settings,
    smtp_server,
)
from shared.clock import ManualClock
from shared.contracts.activity import MeetingLogged
from shared.messaging.admin import ensure_topics
from shared.topics import NOTIFY
from tests.support import headers_of, publish_events, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


async def test_newsletter_draft_preview_publish_unsubscribe_and_announcements(
    tmp_path: Path, bootstrap: str, store_url: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    clock = ManualClock(datetime(2026, 12, 1, 15, tzinfo=UTC))  # 1 December: newsletter day in Denver
    with smtp_server() as smtp:
        app = create_app(service_settings(tmp_path, smtp.port, store_url, bootstrap, prefix, allow_clock_control=True), clock)
        async with running(app) as client:
            await publish_events(bootstrap, [*people(3), match(0), match(1), MeetingLogged(
                meeting_id="m-1", partnership_id="p-0", program_id=PROGRAM, mentor_id="mentor-0",
                mentee_id="mentee-0", started_at=datetime(2026, 11, 10, 17, tzinfo=UTC), duration_minutes=90,
                mode="in_person", intentional=True)], prefix=prefix)
            await wait_until(lambda: len(smtp.received) == 4, timeout_s=60)
            consumer = runtime(app).service.consumers[0][0]
            await wait_until(lambda: consumer.stats.processed == 10, timeout_s=30)

            # The schedule opened November's draft on the newsletter day; staff can also open one.
            r = await client.post("/admin/jobs/newsletter-drafts")
            assert r.status_code == 200
            r = await client.post("/newsletters", json={"program_id": PROGRAM, "month": "2026-11"})
            assert r.status_code == 409 and r.json()["detail"][0]["code"] == "newsletter_exists"
            [listed] = (await client.get("/newsletters", params={"program_id": PROGRAM})).json()
            assert listed["month"] == "2026-11" and listed["status"] == "draft" and listed["created_by"] == "schedule"
            nid = listed["newsletter_id"]
            assert r.json()["detail"][0]["reason"].endswith(nid)
            bad = await client.post("/newsletters", json={"program_id": PROGRAM, "month": "Nov"})
            assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "month"
            unknown = await client.post("/newsletters", json={"program_id": "nope", "month": "2026-10"})
            assert unknown.status_code == 404 and unknown.json()["detail"][0]["field"] == "program_id"

            r = await client.post(f"/newsletters/{nid}/items",
                                  json={"title": "Mentor meet-up", "body": "Join us at the library.", "date": "2026-12-12"})
            assert r.status_code == 201, r.text
            r = await client.put("/people/mentee-2/preferences", json={"newsletter": False},
                                 headers={"X-Actor-Id": "mentee-2"})
            assert r.json() == {"person_id": "mentee-2", "newsletter": False, "transactional": True}

            preview = (await client.get(f"/newsletters/{nid}/preview")).json()
            assert preview["status"] == "draft" and preview["recipients"] == 5
            assert preview["subject"] == "Reps newsletter: November 2026"
            assert "1 meeting held (1.5 hours together)" in preview["text"] and "2 new matches" in preview["text"]
            assert "2026-12-12: Mentor meet-up" in preview["text"]
            assert "List-Unsubscribe" in preview["headers"]
            assert len(smtp.received) == 4  # a preview sends nothing

            r = await client.post(f"/newsletters/{nid}/publish", headers={"X-Actor-Id": "staff-1",
                                                                          "X-Request-ID": "req-nl"})
            assert r.status_code == 200 and r.json()["status"] == "published" and r.json()["recipients"] == 5
            assert r.json()["published_by"] == "staff-1"
            again = await client.post(f"/newsletters/{nid}/publish")
            assert again.status_code == 409 and again.json()["detail"][0]["code"] == "already_published"
            late = await client.post(f"/newsletters/{nid}/items", json={"title": "x", "body": "y"})
            assert late.status_code == 409

            await wait_until(lambda: len(smtp.received) == 9, timeout_s=30)
            letters = [m for m in smtp.received if "newsletter" in m.subject]
            assert sorted(a for m in letters for a in m.rcpt_tos) == sorted(
                [f"mentor-{i}@example.org" for i in range(3)] + ["mentee-0@example.org", "mentee-1@example.org"])
            link = str(letters[0].message["List-Unsubscribe"]).strip("<>")
            person = urlparse(link).path.rsplit("/", 1)[1]

            for _ in range(100):
                records = await read_topic(bootstrap, prefix + NOTIFY)
                published = [r for r in records if headers_of(r)["event_type"] == "NewsletterPublished"]
                if published:
                    break
                await asyncio.sleep(0.2)
            [event] = published
            assert json.loads(event.value)["recipients"] == 5 and headers_of(event)["correlation_id"] == "req-nl"

            # The one-click link: no login, signed for that person only.
            forged = await client.post(f"/unsubscribe/{person}", params={"token": "0" * 32})
            assert forged.status_code == 403 and forged.json()["detail"][0]["field"] == "token"
            url = urlparse(link).path + "?" + urlparse(link).query
            page = await client.get(url)  # opening the link (or a mail scanner doing so) changes nothing
            assert page.status_code == 200 and '<form method="post"' in page.text
            assert (await client.get(f"/people/{person}/preferences")).json()["newsletter"] is True
            r = await client.post(url)
            assert r.status_code == 200 and r.json()["newsletter"] is False
            assert (await client.get(f"/people/{person}/preferences")).json()["newsletter"] is False

            # Announcements: preview, then send to the mentors only.
            r = await client.post("/announcements", json={"program_id": PROGRAM, "audience": "mentors",
                                                          "title": "New survey", "body": "Please answer by Friday."})
            aid = r.json()["announcement_id"]
            preview = (await client.get(f"/announcements/{aid}/preview")).json()
            assert preview["recipients"] == 3 and "pass this update on to your mentees" in preview["text"]
            r = await client.post(f"/announcements/{aid}/send", headers={"X-Actor-Id": "staff-2"})
            assert r.status_code == 200 and r.json()["recipients"] == 3 and r.json()["sent_by"] == "staff-2"
            assert (await client.post(f"/announcements/{aid}/send")).status_code == 409
            assert (await client.get(f"/announcements/{aid}")).json()["status"] == "sent"
            await wait_until(lambda: len(smtp.received) == 12, timeout_s=30)

            page = (await client.get("/messages", params={"person_id": "mentor-0", "status": "sent"})).json()
            assert page["total"] == 3
            assert {m["kind"] for m in page["items"]} == {"match_introduction", "newsletter", "announcement"}
            assert all(m["recipient_email"] == "mentor-0@example.org" and m["subject"] for m in page["items"])
            letter = next(m for m in page["items"] if m["kind"] == "newsletter")
            content = (await client.get(f"/messages/{letter['message_id']}/content")).json()
            assert content["subject"] == letter["subject"] and "1 meeting held" in content["text"]
            assert (await client.get("/messages", params={"status": "nonsense"})).status_code == 422
            assert (await client.get("/messages/failed")).json()["total"] == 0
            missing = await client.get("/messages/does-not-exist")
            assert missing.status_code == 404 and missing.json()["detail"][0]["field"] == "message_id"

            draft = (await client.get(f"/newsletters/{nid}")).json()
            assert draft["content"]["highlights"]["meetings"] == 1
            assert draft["items"] == [{"title": "Mentor meet-up", "body": "Join us at the library.", "date": "2026-12-12"}]
            assert date.fromisoformat(draft["content"]["dates"][0]["date"]) == date(2026, 12, 1)
            metrics = (await client.get("/metrics")).text
            assert 'notify_messages{status="sent"} 12.0' in metrics
            assert 'notify_messages{status="failed"} 0.0' in metrics


async def test_the_service_starts_the_local_sink_and_mail_lands_as_eml_files(
    tmp_path: Path, bootstrap: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    port = free_port()
    cfg = service_settings(tmp_path, port, f"sqlite:///{tmp_path / 'notify.db'}", bootstrap, prefix,
                   embedded_sink=True, mail_dir=tmp_path / "mail")
    app = create_app(cfg)
    async with running(app):
        await publish_events(bootstrap, [*people(1), match(0)], prefix=prefix)
        await wait_until(lambda: len(list((tmp_path / "mail").glob("*.eml"))) == 2, timeout_s=60)
    texts = [f.read_text() for f in (tmp_path / "mail").glob("*.eml")]
    assert any("Subject: Meet your mentee: Mentee 0" in t for t in texts)
    assert any("Subject: Meet your mentor: Mentor 0" in t for t in texts)
