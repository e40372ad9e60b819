"""Crash between effect and commit: each consuming service SIGKILLs itself right after its first
committed batch and before the offset commit (MENTORING_FAULT_CRASH_AFTER_COMMITS=1), is restarted
without the knob, and must then show every event applied once: nothing lost, no side effect twice.

Each test first brings the service's projections up to date (program, people, partnerships) with
a normal run, then publishes the events under test while it is down, so the crashing run's first
batch is made of them: that batch is committed in the store and its offsets are not.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from decimal import Decimal

import httpx
import pytest

from shared.contracts.base import Event
from shared.topics import ACTIVITY, MATCHING, PAYMENTS
from tests.faults.conftest import (
    STAFF,
    Faults,
    applied_in_store,
    committed_offsets,
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

pytestmark = [pytest.mark.faults, pytest.mark.kafka]
CRASH = {"MENTORING_FAULT_CRASH_AFTER_COMMITS": "1"}


def publish(f: Faults, events: list[Event], producer: str) -> list[str]:
    envs = asyncio.run(publish_events(f.bootstrap, events, prefix=f.prefix, producer=producer))
    return [str(e.event_id) for e in envs]


def bring_up_to_date(f: Faults, name: str, events: list[Event], producer: str, last_type: str, count: int,
                     env: dict[str, str] | None = None) -> None:
    """Run the service normally until it has applied `events`, then stop it cleanly."""
    proc = f.add(name, env=env)
    f.start(proc)
    publish(f, events, producer)
    poll(lambda: applied_in_store(f.data_dir, name, last_type) == count, f"{name} applied the setup")
    proc.stop()


def crash_on_first_batch(f: Faults, name: str, event_type: str, topic: str, env: dict[str, str] | None = None
                         ) -> tuple[int, int]:
    """Start the service with the knob; return (events applied, offsets committed) when it died."""
    group, topic = f.prefix + name, f.topic(topic)
    committed_before = committed_offsets(f.bootstrap, group, topic)
    proc = f.add(name, env={**CRASH, **(env or {})})
    proc.start()
    code = wait_exit(proc)
    assert code == -9, f"{name} exited with {code}, not SIGKILL:\n{proc.log_tail()}"
    assert "fault injection: SIGKILL after commit 1" in proc.log_tail(200)
    applied = applied_in_store(f.data_dir, name, event_type)
    committed = committed_offsets(f.bootstrap, group, topic)
    # The window under test: effects committed in the store, offsets not: Kafka delivers them again.
    assert applied > 0 and committed == committed_before, (applied, committed_before, committed)
    return applied, committed


def restart(f: Faults, name: str, env: dict[str, str] | None = None) -> ServiceProcess:
    proc = f.add(name, env=env)
    f.start(proc)
    return proc


def test_activity_applies_each_meeting_once_after_a_crash_between_effect_and_commit(faults: Faults) -> None:
    prog = Program(4)
    bring_up_to_date(faults, "activity", [prog.configured(), *prog.matches()], "matching", "MenteeMatched", prog.n)
    meetings = prog.meetings(3)  # 30 minutes each
    publish(faults, meetings, "activity")
    at_crash, _ = crash_on_first_batch(faults, "activity", "MeetingLogged", ACTIVITY)

    activity = restart(faults, "activity")
    poll(lambda: applied_in_store(faults.data_dir, "activity", "MeetingLogged") == len(meetings),
         "every meeting applied after the restart")

    def hours(i: int) -> Decimal:
        found = get(activity, f"/partnerships/{prog.partnership(i)}/compliance")
        (rule,) = [f for f in found["findings"] if f["rule"] == "hours_per_school_year"]
        return Decimal(str(rule["actual"]))

    # Three 30-minute meetings each: 1.5 hours; a meeting lost shows 1.0, one counted twice 2.0.
    counted = [int(hours(i) * 2) for i in range(prog.n)]
    lost = sum(max(0, 3 - c) for c in counted)
    assert counted == [3] * prog.n, counted

    # The status is re-judged after each meeting and PartnershipAtRisk is emitted on each change:
    # a meeting applied twice would emit a change twice.
    recorded = {prog.partnership(i): get(activity, f"/partnerships/{prog.partnership(i)}/compliance")["recorded_status"]
                for i in range(prog.n)}

    def changes_published() -> list[dict[str, str]] | None:
        found = [json.loads(v) for _, v in faults.events(ACTIVITY, "PartnershipAtRisk")]
        last = {c["partnership_id"]: c["status"] for c in found}
        return found if last == recorded else None

    changes = poll(changes_published, "the last status change of each partnership published", 30)
    time.sleep(1.0)
    # Once per event_id: a relay killed between publishing and marking re-sends the same events.
    changes = faults.announced(ACTIVITY, "PartnershipAtRisk")
    dup = duplicates([(c["partnership_id"], c["previous_status"], c["status"]) for c in changes])
    for i in range(prog.n):
        chain = [c for c in changes if c["partnership_id"] == prog.partnership(i)]
        for before, after in itertools.pairwise(chain):
            assert after["previous_status"] == before["status"], chain
    assert dup == 0, changes
    dup += sum(max(0, c - 3) for c in counted)
    record(f"activity SIGKILL after commit 1 ({at_crash} applied, uncommitted)", sent=len(meetings),
           received=applied_in_store(faults.data_dir, "activity", "MeetingLogged"), lost=lost, duplicated=dup)


def test_payments_prepares_one_statement_and_pays_once_after_a_crash_between_effect_and_commit(
    faults: Faults,
) -> None:
    prog = Program(5)
    bring_up_to_date(faults, "payments", prog.people(), "matching", "MentorEnrolled", prog.n)
    publish(faults, prog.month_closes(), "activity")
    at_crash, _ = crash_on_first_batch(faults, "payments", "MonthClosed", ACTIVITY)

    payments = restart(faults, "payments")

    def statements() -> list[dict[str, object]]:
        found: list[dict[str, object]] = get(payments, "/statements", program_id=prog.id, month=CLOSED_MONTH)
        return found

    poll(lambda: len(statements()) >= prog.n, "a statement per mentor")
    time.sleep(1.0)  # anything redelivered late would show now
    found = statements()
    by_mentor = {str(s["mentor_id"]): s for s in found}
    assert len(found) == prog.n == len(by_mentor), found
    for i in range(prog.n):
        assert Decimal(str(by_mentor[prog.mentor(i)]["total"])) == prog.expected_pay(i)
    prepared = [str(s["statement_id"]) for s in found]

    def announced() -> list[str] | None:
        ids = [json.loads(v)["statement_id"] for _, v in faults.events(PAYMENTS, "StatementPrepared")]
        return ids if len(ids) >= prog.n else None

    poll(announced, "a StatementPrepared per statement", 30)
    time.sleep(0.5)
    announcements = announced() or []
    assert sorted(announcements) == sorted(prepared), announcements

    # Staff approve them at once; pay day (November's first working day) has passed: one batch
    # pays all (a statement approved after the batch waits for December's).
    r = httpx.post(f"{payments.url}/statements/approvals", json={"statement_ids": prepared}, headers=STAFF,
                   timeout=15)
    assert r.status_code == 200, r.text
    poll(lambda: faults.events(PAYMENTS, "PayoutIssued"), "the payout batch")
    approved = [json.loads(v)["statement_id"] for _, v in faults.events(PAYMENTS, "PaymentApproved")]
    assert sorted(approved) == sorted(prepared)
    # A crash after the payout and a restart: the job runs again and must not pay again.
    payments.kill()
    payments = restart(faults, "payments")
    time.sleep(2.0)  # several job intervals (0.5 s)
    payouts = [json.loads(v) for _, v in faults.events(PAYMENTS, "PayoutIssued")]
    paid = [item["reference"] for p in payouts for item in p["items"]]
    assert len(payouts) == 1, payouts
    assert sorted(paid) == sorted(str(s["statement_id"]) for s in found)
    assert Decimal(payouts[0]["total"]["amount"]) == sum(prog.expected_pay(i) for i in range(prog.n))
    record(f"payments SIGKILL after commit 1 ({at_crash} applied) + SIGKILL after payout",
           sent=prog.n, received=len(set(paid)), lost=prog.n - len(set(paid)),
           duplicated=duplicates(announcements) + duplicates(approved) + duplicates(paid))


def test_notify_sends_one_email_per_recipient_and_cause_after_a_crash_between_effect_and_commit(
    faults: Faults, smtp: RecordingSMTP,
) -> None:
    prog = Program(4)
    mail_env = smtp.notify_env(faults.data_dir)
    bring_up_to_date(faults, "notify", prog.people(), "matching", "MenteeEnrolled", prog.n, env=mail_env)
    causes = publish(faults, prog.matches(), "matching")
    # The crashing run's sender runs once at start (nothing is pending yet) and not again, so the
    # crash can only fall between the consumer's commit and its offset commit.
    at_crash, _ = crash_on_first_batch(faults, "notify", "MenteeMatched", MATCHING,
                                       env={**mail_env, "MENTORING_MAIL_INTERVAL_SECONDS": "3600"})
    assert smtp.snapshot() == []

    notify = restart(faults, "notify", env=mail_env)
    expected = {(prog.email(p), c) for i, c in enumerate(causes) for p in (prog.mentor(i), prog.mentee(i))}
    poll(lambda: len(smtp.snapshot()) >= len(expected), "every introduction email")
    time.sleep(1.5)  # a second copy would arrive now
    mails = smtp.snapshot()
    page = get(notify, "/messages", program_id=prog.id, kind="match_introduction", limit=1000)
    by_id = {m["message_id"]: m for m in page["items"]}
    assert all(m["status"] == "sent" for m in by_id.values()), page
    assert {(m["recipient_email"], m["cause_id"]) for m in by_id.values()} == expected
    received = []
    for mail in mails:
        rcpts, msg = mail.rcpt_tos, mail.message
        message_id = str(msg["Message-ID"]).strip("<>").split("@")[0]
        row = by_id[message_id]
        assert rcpts == (row["recipient_email"],)
        received.append((row["recipient_email"], row["cause_id"]))
    dup = duplicates(received)
    lost = len(expected - set(received))
    assert dup == 0 and lost == 0, received
    record(f"notify SIGKILL after commit 1 ({at_crash} applied)", sent=len(causes), received=len(received),
           lost=lost, duplicated=dup)
