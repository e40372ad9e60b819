"""A survey round opened by activity's job reaches the invited people as email: activity and
notify in-process on the real broker, notify sending to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from services.activity.adapters.tables import MeetingViewRow, PartnershipRow
from services.activity.entrypoints.app import create_app as create_activity
from services.activity.tests.support import PROGRAM, matched, program_event
from services.notify.entrypoints.app import create_app as create_notify
from services.notify.tests.support import running as running_notify
from services.notify.tests.support import service_settings
from shared.clock import ManualClock
from shared.contracts.matching import MenteeEnrolled, MentorEnrolled
from shared.messaging.admin import ensure_topics
from shared.service import Service
from shared.settings import ServiceSettings
from tests.mail import Mail, smtp_server
from tests.support import publish_events, wait_until

from .test_service_http import running as running_activity

pytestmark = [pytest.mark.integration, pytest.mark.kafka]
STAFF = {"X-Actor-Id": "staff-1", "X-Actor-Role": "staff"}
SURVEY = {
    "title": "After your first meeting", "schedule": "first_meeting", "audience": "mentor_and_mentee",
    "remind_after_days": 5,
    "questions": [{"question_id": "fit", "kind": "choice", "prompt": "Is this a good fit?",
                   "options": ["good fit", "not sure", "not a good fit"], "flag_answer": "not a good fit"}],
}


async def test_first_meeting_survey_is_emailed_answered_once_and_flags_a_bad_fit(
        tmp_path: Path, bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    clock = ManualClock(datetime(2026, 9, 3, 18, 0, tzinfo=UTC))
    activity = create_activity(ServiceSettings(kafka_bootstrap_servers=bootstrap, data_dir=tmp_path / "activity",
                                               topic_prefix=prefix, scheduler_interval_seconds=3600), clock)
    service: Service = activity.state.service
    start = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
    await publish_events(bootstrap, [
        program_event(),
        MentorEnrolled(person_id="ana", program_id=PROGRAM, name="Ana Alvarez", email="ana@school.example"),
        MenteeEnrolled(person_id="ben", program_id=PROGRAM, name="Ben Brooks", email="ben@school.example"),
        matched("pa-1", "ana", start, mentee_id="ben"),
    ], prefix=prefix, clock=clock)
    with smtp_server() as smtp:
        notify = create_notify(service_settings(tmp_path / "notify", smtp.port, f"sqlite:///{tmp_path}/notify.db",
                                                bootstrap, prefix), clock)
        async with running_activity(activity) as client, running_notify(notify):
            def stored(table: type[SQLModel], key: str) -> bool:
                with service.db.session() as session:
                    return session.get(table, key) is not None
            await wait_until(lambda: stored(PartnershipRow, "pa-1"), timeout_s=60)
            r = await client.post(f"/programs/{PROGRAM}/surveys", json=SURVEY, headers=STAFF)
            assert r.status_code == 201, r.text
            meeting = {"partnership_id": "pa-1", "started_at": "2026-09-02T10:00:00-06:00", "duration_minutes": 45,
                       "mode": "video", "intentional": True}
            r = await client.post("/meetings", json=meeting, headers={"X-Actor-Id": "ana", "X-Actor-Role": "mentor"})
            assert r.status_code == 201, r.text
            # The meeting view is built from MeetingLogged read back from the topic.
            await wait_until(lambda: stored(MeetingViewRow, r.json()["meeting_id"]), timeout_s=60)
            await service.run_job_now("surveys")
            await service.run_job_now("surveys")  # a second run opens nothing more
            def about_surveys() -> list[Mail]:  # (the match introductions go out too)
                return [r for r in smtp.received if "survey" in r.subject]
            await wait_until(lambda: len(about_surveys()) >= 2, timeout_s=60)
            subjects = {a: r.subject for r in about_surveys() for a in r.rcpt_tos}
            assert subjects == {"ana@school.example": "A short survey: After your first meeting",
                                "ben@school.example": "A short survey: After your first meeting"}
            invitations = (await client.get(f"/programs/{PROGRAM}/people/ben/survey-invitations")).json()
            [invitation] = invitations["invitations"]
            assert invitation["round_id"] in next(r for r in about_surveys() if "ben@school.example" in r.rcpt_tos).body()

            url = f"/programs/{PROGRAM}/survey-rounds/{invitation['round_id']}/answers"
            ben = {"X-Actor-Id": "ben", "X-Actor-Role": "mentee"}
            r = await client.post(url, json={"answers": {"fit": "not a good fit"}}, headers=ben)
            assert r.status_code == 201, r.text
            r = await client.post(url, json={"answers": {"fit": "good fit"}}, headers=ben)
            assert r.status_code == 409 and r.json()["detail"][0]["field"] == "person_id"
            flags = (await client.get(f"/programs/{PROGRAM}/partnership-flags")).json()["flags"]
            assert [f["partnership_id"] for f in flags] == ["pa-1"]

            # Five days on, the one who has not answered (ana) gets one reminder.
            clock.advance(timedelta(days=5))
            await service.run_job_now("surveys")
            await service.run_job_now("surveys")
            await wait_until(lambda: len(about_surveys()) >= 3, timeout_s=60)
            reminders = [r for r in about_surveys() if r.subject.startswith("Reminder")]
            assert [(r.rcpt_tos, r.subject) for r in reminders] == [
                (("ana@school.example",), 'Reminder: the survey "After your first meeting" is waiting for your answer')]
