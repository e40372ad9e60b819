"""Poison and bad events through a real service process (activity, which reads activity.events):
undecodable bytes, schema-invalid payloads, unknown types and versions go to the dead-letter topic
with their reason; the partition keeps moving (a good event on the same key after them is
applied); a dead letter whose cause was fixed (a consumer that now reads its version) is replayed
by the operator CLI and applied once, even when replayed twice.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from deploy.kafka.local import REPO_ROOT
from deploy.ops import consumer_lag, replay_dead_letter
from shared.clock import SystemClock
from shared.contracts.envelope import Cause, new_envelope
from shared.topics import ACTIVITY
from tests.faults.conftest import Faults, applied_in_store, get, poll, record
from tests.faults.scenario import MATCHED_AT, Program
from tests.support import publish_events

pytestmark = [pytest.mark.faults, pytest.mark.kafka]


def headers(event_type: str, version: int, key: str) -> list[tuple[str, bytes]]:
    env = new_envelope(event_type=event_type, event_version=version, key=key, producer="activity",
                       clock=SystemClock(), cause=Cause.new())
    return env.to_headers()


def meeting(prog: Program, meeting_id: str, minutes: int, **extra: Any) -> bytes:
    return json.dumps({
        "meeting_id": meeting_id, "partnership_id": prog.partnership(0), "program_id": prog.id,
        "mentor_id": prog.mentor(0), "mentee_id": prog.mentee(0),
        "started_at": MATCHED_AT.replace(day=8).isoformat(), "duration_minutes": minutes, "mode": "video",
        "intentional": True, **extra,
    }).encode()


async def send_raw(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value, hdrs in records:
            await producer.send_and_wait(topic, value, key=key, headers=hdrs)
    finally:
        await producer.stop()


def test_poison_events_are_dead_lettered_with_their_reason_and_a_fixed_one_replays_once(faults: Faults) -> None:
    prog = Program(1)
    activity = faults.add("activity")
    faults.start(activity)
    asyncio.run(publish_events(faults.bootstrap, [prog.configured(), prog.matched(0)], prefix=faults.prefix,
                               producer="matching"))
    poll(lambda: applied_in_store(faults.data_dir, "activity", "MenteeMatched") == 1, "the partnership projected")

    key = prog.partnership(0).encode()  # all on one key, so all on one partition, in this order
    v2 = headers("MeetingLogged", 2, prog.partnership(0))
    v2_event_id = dict(v2)["event_id"].decode()
    bad: list[tuple[str, bytes, list[tuple[str, bytes]]]] = [
        ("undecodable", b"\x00\xff\xfe not an event", []),
        ("invalid_payload", json.dumps({"meeting_id": "m-bad", "partnership_id": prog.partnership(0)}).encode(),
         headers("MeetingLogged", 1, prog.partnership(0))),
        ("invalid_payload", meeting(prog, "m-long", 24 * 60), headers("MeetingLogged", 1, prog.partnership(0))),
        ("unknown_type", meeting(prog, "m-teleported", 30), headers("MeetingTeleported", 1, prog.partnership(0))),
        ("unknown_version", meeting(prog, "m-v2", 60, location="library"), v2),
    ]
    good = meeting(prog, "m-good", 30)
    asyncio.run(send_raw(faults.bootstrap, faults.topic(ACTIVITY), [
        *((key, value, hdrs) for _, value, hdrs in bad),
        (key, good, headers("MeetingLogged", 1, prog.partnership(0))),
    ]))

    serving = [activity]  # the process answering reads (the upgraded one after the fix)

    def hours() -> Decimal:
        found = get(serving[-1], f"/partnerships/{prog.partnership(0)}/compliance")
        (rule,) = [f for f in found["findings"] if f["rule"] == "hours_per_school_year"]
        return Decimal(str(rule["actual"]))

    # The good meeting after five poison records on its partition is applied.
    poll(lambda: hours() == Decimal("0.5"), "the good meeting after the poison applied")
    dlq = faults.topic(ACTIVITY) + ".dlq"
    def dead_letters() -> list[tuple[dict[str, str], bytes]] | None:
        found = faults.events(ACTIVITY + ".dlq")
        return found if len(found) >= len(bad) else None

    dead = poll(dead_letters, "every poison record dead-lettered")
    assert [h["dlq_reason"] for h, _ in dead] == [reason for reason, _, _ in bad]
    for (h, value), (reason, sent, _) in zip(dead, bad, strict=True):
        assert value == sent, reason  # the original bytes, for the operator to read and fix
        assert h["dlq_error"], reason
        assert h["dlq_consumer"] == faults.prefix + "activity"
        assert h["dlq_original_topic"] == faults.topic(ACTIVITY)
    assert "unknown event type 'MeetingTeleported'" in dead[3][0]["dlq_error"]
    assert "MeetingLogged version 2 is not known" in dead[4][0]["dlq_error"]
    assert "duration_minutes" in dead[2][0]["dlq_error"]
    # The partition moved past all of them: nothing left to read for the group.
    lags = asyncio.run(consumer_lag(faults.bootstrap, faults.prefix + "activity"))
    poll(lambda: all(lag.lag == 0 for lag in asyncio.run(consumer_lag(faults.bootstrap, faults.prefix + "activity"))
                     if lag.topic == faults.topic(ACTIVITY)), "no lag on activity.events")
    assert lags

    # The fix: a release that reads MeetingLogged v2. The operator replays the dead letter with the
    # CLI, then (by mistake) once more with the library function: it is applied once.
    activity.kill()
    upgraded = faults.add("activity")
    upgraded.target = "tests.faults.upgraded_activity:create_app"
    faults.start(upgraded)
    serving.append(upgraded)
    v2_offset = int(dead[4][0]["dlq_original_offset"])
    v2_partition, v2_dlq_offset = _place_in_dlq(faults, v2_event_id)
    done = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "dlq", "replay", dlq, "-p", str(v2_partition), "-o", str(v2_dlq_offset),
         "--bootstrap", faults.bootstrap],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert v2_event_id in done.stdout
    asyncio.run(replay_dead_letter(faults.bootstrap, dlq, v2_partition, v2_dlq_offset))
    poll(lambda: hours() == Decimal("1.5"), "the replayed v2 meeting applied")
    replays = [h for h, _ in faults.events(ACTIVITY) if h.get("event_id") == v2_event_id]
    assert len(replays) == 3 and v2_offset >= 0  # published once, replayed twice
    poll(lambda: all(lag.lag == 0 for lag in asyncio.run(consumer_lag(faults.bootstrap, faults.prefix + "activity"))
                     if lag.topic == faults.topic(ACTIVITY)), "the replays consumed")
    applied_v2 = _inbox_rows(faults, v2_event_id)
    assert applied_v2 == 1
    assert hours() == Decimal("1.5")
    record("5 poison (undecodable, 2 invalid, unknown type, unknown version) + 1 good + 2 replays",
           sent=len(bad) + 1, received=len(dead) + 1, lost=0, duplicated=applied_v2 - 1)


def _place_in_dlq(faults: Faults, event_id: str) -> tuple[int, int]:
    from tests.support import read_topic

    records = asyncio.run(read_topic(faults.bootstrap, faults.topic(ACTIVITY) + ".dlq"))
    (found,) = [r for r in records if dict(r.headers or ()).get("event_id") == event_id.encode()]
    return int(found.partition), int(found.offset)


def _inbox_rows(faults: Faults, event_id: str) -> int:
    import sqlite3

    with sqlite3.connect(faults.data_dir / "activity" / "activity.db") as conn:
        return int(conn.execute("SELECT count(*) FROM inbox WHERE event_id = ?", (event_id,)).fetchone()[0])

