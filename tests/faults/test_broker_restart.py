"""Broker restart: a dedicated Kafka broker is stopped for about 10 s and started again (same data)
while mentors keep logging meetings. Every request is either accepted (201: the meeting and its
MeetingLogged are in the store and its outbox, in one transaction) or refused with a clear error;
after the broker is back, with the same processes, every accepted meeting is on the topic once and
applied once; nothing refused or failed shows up.

The first test drives activity's HTTP API alone; the second drives the whole platform through the
gateway, with mentors' own tokens, and follows each accepted meeting on to notify (the program's
activity that feeds the newsletter) and payments (a line of the month's statement, once the month
closes).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.kafka.local import LocalKafka, free_port
from shared.topics import ACTIVITY
from tests.e2e.harness import Gateway, Platform, running_platform
from tests.faults.conftest import Faults, applied_in_store, fault_world, get, poll, record
from tests.faults.scenario import MATCHED_AT, Program
from tests.mail import RecordingSMTP
from tests.support import publish_events

pytestmark = [pytest.mark.faults, pytest.mark.kafka]
DOWN_S = 10.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka", heap="384m")
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop(kill=True)


@dataclass
class Outcomes:
    accepted: list[str] = field(default_factory=list)  # meeting ids answered 201
    refused: list[tuple[int, str]] = field(default_factory=list)  # status, body
    failed: list[str] = field(default_factory=list)  # no answer at all (the client gave up)


def log_meetings(f: Faults, url: str, prog: Program, stop: threading.Event, out: Outcomes) -> None:
    k = 0
    with httpx.Client(timeout=20.0) as client:
        while not stop.is_set():
            i = k % prog.n
            started = MATCHED_AT + timedelta(days=62, minutes=37 * k)  # early November, all distinct
            body = {"partnership_id": prog.partnership(i), "started_at": started.isoformat(),
                    "duration_minutes": 30, "mode": "video", "intentional": True}
            headers = {"X-Actor-Id": prog.mentor(i), "X-Actor-Role": "mentor", "X-Request-ID": f"req-{k}"}
            try:
                r = client.post(url + "/meetings", json=body, headers=headers)
            except httpx.HTTPError as exc:
                out.failed.append(f"{k}: {exc!r}")
            else:
                if r.status_code == 201:
                    out.accepted.append(r.json()["meeting_id"])
                else:
                    out.refused.append((r.status_code, r.text))
            k += 1
            time.sleep(0.25)


def test_meetings_logged_while_the_broker_is_down_arrive_once_after_it_returns(
    broker: LocalKafka, tmp_path: Path
) -> None:
    with fault_world(broker.bootstrap, tmp_path / "world") as faults:
        prog = Program(3)
        activity = faults.add("activity")
        faults.start(activity)
        asyncio.run(publish_events(faults.bootstrap, [prog.configured(), *prog.matches()], prefix=faults.prefix,
                                   producer="matching"))
        poll(lambda: applied_in_store(faults.data_dir, "activity", "MenteeMatched") == prog.n, "partnerships known")

        out, stop = Outcomes(), threading.Event()
        writer = threading.Thread(target=log_meetings, args=(faults, activity.url, prog, stop, out), daemon=True)
        writer.start()
        time.sleep(2.0)
        before_stop = len(out.accepted)
        broker.stop()
        down_at = time.monotonic()
        time.sleep(DOWN_S)
        during = len(out.accepted) - before_stop
        broker.start()
        down_s = time.monotonic() - down_at
        time.sleep(3.0)
        stop.set()
        writer.join(30)

        assert before_stop > 0 and during > 0, (before_stop, during)  # requests were made while it was down
        for status, text in out.refused:  # a refusal must say why
            assert 400 <= status < 600 and json.loads(text).get("detail"), (status, text)

        # Every accepted meeting is in activity's outbox, none lost; the same activity process
        # (its relay makes a new producer after a failed send) publishes them once the broker is back.

        def published() -> list[tuple[dict[str, str], dict[str, str]]] | None:
            found = [(h, json.loads(v)) for h, v in faults.events(ACTIVITY, "MeetingLogged")]
            return found if {m["meeting_id"] for _, m in found} >= set(out.accepted) else None

        poll(published, "every accepted meeting on the topic", 60)
        time.sleep(1.0)
        records = [(h, json.loads(v)) for h, v in faults.events(ACTIVITY, "MeetingLogged")]
        events: dict[str, set[str]] = {}  # meeting id -> the event ids that announced it
        for h, m in records:
            events.setdefault(m["meeting_id"], set()).add(h["event_id"])
        lost = len(set(out.accepted) - set(events))
        dup = sum(len(ids) - 1 for ids in events.values())  # one request announced twice
        copies = len(records) - sum(len(ids) for ids in events.values())  # the same event re-sent
        assert lost == 0 and dup == 0, (lost, dup)
        assert set(events) == set(out.accepted)  # nothing refused or failed was published
        # Downstream, each is applied once: the consumer's inbox and the hours it counts.
        poll(lambda: applied_in_store(faults.data_dir, "activity", "MeetingLogged") == len(out.accepted),
             "every accepted meeting applied by the consumer", 60)
        logged = sum(len(get(activity, f"/partnerships/{prog.partnership(i)}/meetings")["meetings"])
                     for i in range(prog.n))
        assert logged == len(out.accepted)
        hours = Decimal(0)
        for i in range(prog.n):
            found = get(activity, f"/partnerships/{prog.partnership(i)}/compliance")
            (rule,) = [f for f in found["findings"] if f["rule"] == "hours_per_school_year"]
            hours += Decimal(str(rule["actual"]))
        assert hours == Decimal("0.5") * len(out.accepted)
        record(f"broker down {down_s:.0f} s: {during} accepted while down, {len(out.refused)} refused, "
               f"{len(out.failed)} unanswered, {copies} same-id copies",
               sent=len(out.accepted), received=len(events), lost=lost, duplicated=dup)


# -- the same, through the gateway, on to notify and payments ----------------------------------------
PROGRAM_ID = "prog-broker-restart"
POLICY = {"timezone": "UTC", "cadence": {"intentional_meetings_per_month": 2},
          "matching": {"metamentor_caseload_min": 0, "metamentor_caseload_max": 40},
          "pay": {"currency": "USD", "hourly_rates": {"meeting": "40.00"}, "month_close_grace_days": 2}}
MENTORS = 3
MID_MONTH = "2026-12-20T12:00:00+00:00"
AFTER_GRACE = "2027-01-03T12:00:00+00:00"


def known(client: Gateway, path: str) -> bool:
    return client.http.get(path).status_code == 200


def seed_partnerships(admin: Gateway, platform: Platform) -> list[tuple[str, Gateway]]:
    """A program of three matched pairs, published; each mentor's (partnership, own client)."""
    admin.post("/ops/clock", {"now": "2026-12-01T12:00:00+00:00"})
    admin.post("/programs", {"program_id": PROGRAM_ID, "name": "Broker restart", "policy": POLICY}, expect=201)
    csv_headers = {"Content-Type": "text/csv"}
    people = "name,email,grade_band,subjects,role,site"
    mentors = admin.call("POST", f"/programs/{PROGRAM_ID}/mentors/import", 201, headers=csv_headers, content=(
        f"{people},years_in_position,training_completed,capacity\n" + "".join(
            f"Mentor {i},mentor{i}@restart.example.org,6-8,math,teacher,Site,5,yes,1\n" for i in range(MENTORS))
    )).json()
    admin.call("POST", f"/programs/{PROGRAM_ID}/mentees/import", 201, headers=csv_headers, content=(
        f"{people}\n" + "".join(f"Mentee {i},mentee{i}@restart.example.org,6-8,math,teacher,Site\n"
                                for i in range(MENTORS))))
    proposal = admin.post(f"/programs/{PROGRAM_ID}/proposals", {}, expect=201)
    published = admin.post(f"/proposals/{proposal['proposal_id']}/publish", {})["partnerships"]
    assert len(published) == MENTORS, published
    out = []
    for mentor_id in mentors["person_ids"]:
        (pair,) = [p for p in published if p["mentor_id"] == mentor_id]
        user = admin.post("/users", {"name": mentor_id, "role": "mentor", "program_ids": [PROGRAM_ID],
                                     "person_id": mentor_id}, expect=201)
        token = admin.post(f"/users/{user['id']}/tokens", {"label": "restart"}, expect=201)["token"]
        out.append((pair["partnership_id"], platform.client(token)))
    admin.post("/ops/clock", {"now": MID_MONTH})
    for partnership_id, mentor in out:  # activity learns of each partnership from matching's events
        path = f"/partnerships/{partnership_id}/compliance"
        poll(partial(known, mentor, path), "activity knows the partnership")
    return out


def log_through_gateway(mentors: list[tuple[str, Gateway]], stop: threading.Event, out: Outcomes) -> None:
    k = 0
    while not stop.is_set():
        partnership_id, mentor = mentors[k % len(mentors)]
        # From the day they were matched, before the services' clock; 37 minutes apart: all distinct.
        started = datetime(2026, 12, 1, 13, tzinfo=UTC) + timedelta(minutes=37 * k)
        body = {"partnership_id": partnership_id, "started_at": started.isoformat(), "duration_minutes": 30,
                "mode": "video", "intentional": True}
        try:
            r = mentor.http.post("/meetings", json=body, timeout=20.0)
        except httpx.HTTPError as exc:
            out.failed.append(f"{k}: {exc!r}")
        else:
            if r.status_code == 201:
                out.accepted.append(r.json()["meeting_id"])
            else:
                out.refused.append((r.status_code, r.text))
        k += 1
        time.sleep(0.25)


def notify_meetings(data_dir: Path) -> tuple[int, int]:
    """Meetings in notify's program activity (what the newsletter counts): rows, minutes."""
    with sqlite3.connect(data_dir / "notify" / "notify.db") as conn:
        rows, minutes = conn.execute("SELECT count(*), coalesce(sum(minutes), 0) FROM notify_program_activity "
                                     "WHERE program_id = ? AND kind = 'meeting'", (PROGRAM_ID,)).fetchone()
    return int(rows), int(minutes)


def test_meetings_logged_through_the_gateway_while_the_broker_is_down_reach_notify_and_payments_once(
    broker: LocalKafka, smtp: RecordingSMTP, tmp_path: Path
) -> None:
    data_dir = tmp_path / "platform"
    with running_platform(broker.bootstrap, data_dir, smtp, tag="restart") as platform:
        admin = platform.client(platform.admin_token)
        mentors = seed_partnerships(admin, platform)

        out, stop = Outcomes(), threading.Event()
        writer = threading.Thread(target=log_through_gateway, args=(mentors, stop, out), daemon=True)
        writer.start()
        time.sleep(2.0)
        before_stop = len(out.accepted)
        broker.stop()
        down_at = time.monotonic()
        time.sleep(DOWN_S)
        during = len(out.accepted) - before_stop
        broker.start()
        down_s = time.monotonic() - down_at
        time.sleep(3.0)
        stop.set()
        writer.join(30)
        assert before_stop > 0 and during > 0, (before_stop, during, out.refused[:3], out.failed[:3])
        for status, text in out.refused:  # a refusal must say why
            assert 400 <= status < 600 and json.loads(text).get("detail"), (status, text)
        accepted = set(out.accepted)
        assert len(accepted) == len(out.accepted)

        # activity: each accepted meeting stored and applied by its consumer once.
        poll(lambda: applied_in_store(data_dir, "activity", "MeetingLogged") >= len(accepted),
             "every accepted meeting applied by activity", 90)
        listed = [m["meeting_id"] for pid, mentor in mentors
                  for m in mentor.get(f"/partnerships/{pid}/meetings")["meetings"]]
        assert sorted(listed) == sorted(accepted)
        # notify: each counted once in the program's activity.
        poll(lambda: notify_meetings(data_dir)[0] >= len(accepted), "every accepted meeting in notify", 90)
        time.sleep(1.0)  # a second copy would be applied now
        assert applied_in_store(data_dir, "activity", "MeetingLogged") == len(accepted)
        assert applied_in_store(data_dir, "notify", "MeetingLogged") == len(accepted)
        assert notify_meetings(data_dir) == (len(accepted), 30 * len(accepted))

        # payments: the month closes; each mentor's statement has one line per accepted meeting.
        admin.post("/ops/clock", {"now": AFTER_GRACE})
        admin.post(f"/programs/{PROGRAM_ID}/month-closes", {"month": "2026-12"})

        def statements() -> list[dict[str, Any]] | None:
            found = admin.get("/statements", params={"program_id": PROGRAM_ID, "month": "2026-12"})
            return found if len(found) == MENTORS else None

        lines: list[str] = []  # a meeting's time entry has the meeting's id
        total = Decimal(0)
        for s in poll(statements, "a statement per mentor in payments", 90):
            detail = admin.get(f"/statements/{s['statement_id']}")
            lines += [line["entry_id"] for line in detail["lines"] if line["kind"] == "meeting"]
            total += Decimal(detail["total"])
        lost = len(accepted - set(lines))
        dup = len(lines) - len(set(lines))
        assert lost == 0 and dup == 0, (lost, dup)
        assert set(lines) == accepted  # nothing refused or unanswered is paid
        assert total == Decimal("20.00") * len(accepted)  # 30 minutes at 40.00 an hour each
        reasons = sorted({f"{status} {json.loads(text)['detail'][0].get('reason', '')}" for status, text in out.refused})
        record(f"broker down {down_s:.0f} s under gateway POST /meetings, on to notify and payments: "
               f"{during} accepted while down, {len(out.refused)} refused {reasons}, {len(out.failed)} unanswered",
               sent=len(accepted), received=len(set(lines)), lost=lost, duplicated=dup)
        admin.close()
        for _, mentor in mentors:
            mentor.close()
