"""Scale-out: two instances each of activity, payments and notify, each pair in one consumer group
and sharing one PostgreSQL database. Instance "b" of each is SIGKILLed mid-stream; the survivors
take over its partitions, and the totals are exact: every meeting counted once, one statement
per mentor with the exact amount, one email per recipient and cause. Matching, which consumes
nothing, is scaled out too: its relay's lease holder is killed between the broker's acknowledgement
and marking the rows sent, and the other instance publishes them.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import httpx
import pytest

from shared.topics import ACTIVITY, MATCHING
from tests.faults.conftest import (
    STAFF,
    Faults,
    applied_in_database,
    applied_in_store,
    duplicates,
    get,
    poll,
    record,
    wait_exit,
)
from tests.faults.scenario import CLOSED_MONTH, Program
from tests.mail import RecordingSMTP
from tests.processes import ServiceProcess
from tests.support import publish_events

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.postgres]
SERVICES = ("activity", "payments", "notify")


def test_a_survivor_takes_over_when_one_of_two_instances_dies_mid_stream(
    faults: Faults, smtp: RecordingSMTP, postgres_server: str
) -> None:
    from conftest import fresh_postgres_database

    prog = Program(8)
    urls = {name: fresh_postgres_database(postgres_server) for name in SERVICES}
    envs = {name: {"MENTORING_DATABASE_URL": urls[name]} for name in SERVICES}
    # A sender that dies holding claimed messages keeps them until the claim expires (300 s by
    # default); a short claim lets the survivor take them over within the test.
    envs["notify"].update(smtp.notify_env(faults.data_dir, MENTORING_MAIL_CLAIM_SECONDS="3"))
    # The first instance migrates the database alone; then the second joins the group.
    a = {name: faults.add(name, env=envs[name]) for name in SERVICES}
    faults.start(*a.values())
    b = {name: faults.add(name, instance="b", env=envs[name]) for name in SERVICES}
    faults.start(*b.values())
    time.sleep(3.0)  # both members of each group hold partitions

    matches = asyncio.run(publish_events(faults.bootstrap, [*prog.people(), *prog.matches()],
                                         prefix=faults.prefix, producer="matching"))
    causes = [str(e.event_id) for e in matches[-prog.n:]]
    # Mid-stream: once each service has applied part of the matches, its instance b dies.
    poll(lambda: all(applied_in_database(urls[n], "MenteeMatched") >= 1 for n in SERVICES), "the stream under way")
    for proc in b.values():
        proc.kill()
    asyncio.run(publish_events(faults.bootstrap, [*prog.meetings(2), *prog.month_closes()], prefix=faults.prefix,
                               producer="activity"))
    survivors: dict[str, ServiceProcess] = a

    # activity: two 30-minute meetings per partnership, each counted once.
    poll(lambda: applied_in_database(urls["activity"], "MeetingLogged") == 2 * prog.n, "meetings applied", 120)
    hours = []
    for i in range(prog.n):
        found = get(survivors["activity"], f"/partnerships/{prog.partnership(i)}/compliance")
        (rule,) = [f for f in found["findings"] if f["rule"] == "hours_per_school_year"]
        hours.append(Decimal(str(rule["actual"])))
    assert hours == [Decimal("1")] * prog.n, hours

    # payments: one statement per mentor, exact.
    poll(lambda: len(get(survivors["payments"], "/statements", program_id=prog.id, month=CLOSED_MONTH)) >= prog.n,
         "statements", 120)
    statements = get(survivors["payments"], "/statements", program_id=prog.id, month=CLOSED_MONTH)
    assert sorted(s["mentor_id"] for s in statements) == sorted(prog.mentor(i) for i in range(prog.n))
    assert {s["mentor_id"]: Decimal(s["total"]) for s in statements} == {
        prog.mentor(i): prog.expected_pay(i) for i in range(prog.n)}

    # notify: an introduction to each mentor and mentee, once.
    expected = {(prog.email(p), c) for i, c in enumerate(causes) for p in (prog.mentor(i), prog.mentee(i))}
    def introductions() -> dict[str, tuple[str, str]] | None:
        page = get(survivors["notify"], "/messages", program_id=prog.id, kind="match_introduction", limit=1000)
        sent = [m for m in page["items"] if m["status"] == "sent"]
        return {m["message_id"]: (m["recipient_email"], m["cause_id"]) for m in sent} \
            if len(sent) >= len(expected) else None

    poll(introductions, "introductions sent", 120)
    time.sleep(1.5)  # a second copy would arrive now
    by_id = introductions() or {}
    assert set(by_id.values()) == expected and len(by_id) == len(expected), by_id
    ids = [str(msg["Message-ID"]).strip("<>").split("@")[0] for msg in (m.message for m in smtp.snapshot())]
    received = [by_id[i] for i in ids if i in by_id]
    # The one copy notify allows (README "the one window SMTP leaves open"): b died after the SMTP
    # server accepted a message and before recording it; the survivor sends it again with the
    # same Message-ID. Two different messages for one recipient and cause would be a duplicate.
    same_id_copies = len(received) - len(set(ids) & set(by_id))
    changes = faults.announced(ACTIVITY, "PartnershipAtRisk")  # once per event_id
    dup = duplicates(list(by_id.values())) + duplicates([(c["partnership_id"], c["previous_status"], c["status"])
                                                         for c in changes])
    lost = len(expected - set(received))
    assert dup == 0 and lost == 0, (received, changes)
    assert same_id_copies <= 2 * prog.n  # at most one sender batch
    received_total = (len({c for _, c in set(received)}) + applied_in_database(urls["activity"], "MeetingLogged")
                      + len(statements))
    record(f"3 svc x 2 (PostgreSQL), b SIGKILLed mid-stream; {same_id_copies} same-Message-ID re-sends",
           sent=4 * prog.n, received=received_total, lost=lost + 4 * prog.n - received_total, duplicated=dup)


def test_matching_second_instance_publishes_what_the_killed_relay_left_unmarked(
    faults: Faults, postgres_server: str
) -> None:
    """Two matching instances on one PostgreSQL database: only the lease holder's relay publishes.
    It is killed right after the broker acknowledged a batch of 300 MentorEnrolled, before marking
    the rows sent; the other instance takes the lease when it runs out and publishes them again.
    Downstream, payments applies each enrolment once."""
    from conftest import fresh_postgres_database

    prog = Program(300)
    env = {"MENTORING_DATABASE_URL": fresh_postgres_database(postgres_server)}
    payments = faults.add("payments")
    # a starts first and holds the relay's lease (renewed while idle); b waits for it to run out.
    # a's first batch is the ProgramConfigured, its second the import; it dies after the second.
    a = faults.add("matching", env={**env, "MENTORING_FAULT_CRASH_AFTER_PUBLISHED": "2"})
    faults.start(a, payments)
    b = faults.add("matching", instance="b", env=env)
    faults.start(b)
    r = httpx.post(b.url + "/programs", json={"program_id": prog.id, "name": "Relay failover"}, headers=STAFF,
                   timeout=30)
    assert r.status_code == 201, r.text
    poll(lambda: faults.events(MATCHING, "ProgramConfigured"), "the program published by a")
    roster = "name,email\n" + "".join(f"Mentor {i},{prog.email(prog.mentor(i))}\n" for i in range(prog.n))
    r = httpx.post(f"{b.url}/programs/{prog.id}/mentors/import", content=roster,
                   headers={**STAFF, "Content-Type": "text/csv"}, timeout=60)
    assert r.status_code == 201, r.text
    assert wait_exit(a) == -9
    assert "fault injection: SIGKILL after published batch 2" in a.log_tail(200)

    def enrolments() -> list[tuple[dict[str, str], bytes]] | None:
        found = faults.events(MATCHING, "MentorEnrolled")
        return found if len(found) >= 2 * prog.n else None

    # On the topic: a's batch, then b's copy of it (same event_ids) once a's lease ran out.
    records = poll(enrolments, "the unmarked batch published again by b", 90)
    ids = [h["event_id"] for h, _ in records]
    people = {json.loads(v)["person_id"] for _, v in records}
    assert len(set(ids)) == prog.n == len(people) and len(ids) == 2 * prog.n
    # payments applies each enrolment once (its inbox) and knows every mentor once.
    poll(lambda: applied_in_store(faults.data_dir, "payments", "MentorEnrolled") >= prog.n,
         "every enrolment applied by payments", 60)
    time.sleep(1.0)
    applied = applied_in_store(faults.data_dir, "payments", "MentorEnrolled")
    assert applied == prog.n
    record(f"matching x 2 (PostgreSQL), relay holder SIGKILLed after the broker acked {prog.n} events, before "
           f"marking; the other re-sent them ({len(ids) - len(set(ids))} same-id copies)",
           sent=prog.n, received=applied, lost=prog.n - applied, duplicated=0 if applied == prog.n else applied - prog.n)
