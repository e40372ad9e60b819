"""Broker restart: a dedicated Kafka broker is stopped for about 10 s and started again (same data)
while mentors keep logging meetings through activity's HTTP API. Every request is either accepted
(201: the meeting and its MeetingLogged are in the store and its outbox, in one transaction) or
refused with a clear error; after the broker is back, with the same activity process, every
accepted meeting is on the topic once and applied by activity's consumer once; nothing refused or
failed shows up.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from deploy.kafka.local import LocalKafka, free_port
from shared.topics import ACTIVITY
from tests.faults.conftest import Faults, applied_in_store, fault_world, get, poll, record
from tests.faults.scenario import MATCHED_AT, Program
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
