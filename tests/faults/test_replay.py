"""Replay: activity, payments and notify run a small program to the end (meetings, compliance,
statements approved and paid, emails sent); then each is stopped, its consumer group is reset to
the earliest offset and its inbox is emptied, and it is restarted. It reads every event again; its
read views (compliance statuses, statements and batches, the sent-email log) are unchanged, no new
event is published and no email is sent twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from deploy.ops import consumer_lag
from shared.topics import ACTIVITY, MATCHING, NOTIFY, PAYMENTS
from tests.faults.conftest import (
    STAFF,
    Faults,
    applied_in_store,
    clear_inbox,
    get,
    poll,
    record,
    reset_group_to_earliest,
)
from tests.faults.scenario import CLOSED_MONTH, Program
from tests.mail import RecordingSMTP
from tests.processes import ServiceProcess
from tests.support import publish_events

pytestmark = [pytest.mark.faults, pytest.mark.kafka]
READS = {"activity": (MATCHING, ACTIVITY), "payments": (MATCHING, ACTIVITY), "notify": (MATCHING, ACTIVITY, PAYMENTS)}


def views(procs: dict[str, ServiceProcess], prog: Program) -> dict[str, Any]:
    out: dict[str, Any] = {"activity.program": get(procs["activity"], f"/programs/{prog.id}/compliance")}
    for i in range(prog.n):
        found = get(procs["activity"], f"/partnerships/{prog.partnership(i)}/compliance")
        found.pop("evaluated_at")
        out[f"activity.{i}"] = found
    statements = get(procs["payments"], "/statements", program_id=prog.id)
    out["payments.statements"] = statements
    for s in statements:
        out[f"payments.{s['statement_id']}"] = get(procs["payments"], f"/statements/{s['statement_id']}")
    out["payments.batches"] = get(procs["payments"], "/batches")
    out["notify.messages"] = get(procs["notify"], "/messages", program_id=prog.id, limit=1000)
    return out


def event_counts(f: Faults) -> dict[str, int]:
    return {t: len(f.events(t)) for t in (ACTIVITY, PAYMENTS, NOTIFY)}


def lag_is_zero(f: Faults, service: str) -> bool:
    lags = asyncio.run(consumer_lag(f.bootstrap, f.prefix + service))
    mine = [lag for lag in lags if lag.topic in {f.topic(t) for t in READS[service]}]
    return bool(mine) and all(lag.lag == 0 for lag in mine)


def test_a_consumer_group_reset_to_the_earliest_offset_changes_nothing(faults: Faults, smtp: RecordingSMTP) -> None:
    prog = Program(3)
    env = {"activity": {}, "payments": {}, "notify": smtp.notify_env(faults.data_dir)}
    procs = {name: faults.add(name, env=env[name]) for name in READS}
    faults.start(*procs.values())
    asyncio.run(publish_events(faults.bootstrap, [*prog.people(), *prog.matches()], prefix=faults.prefix,
                               producer="matching"))
    asyncio.run(publish_events(faults.bootstrap, [*prog.meetings(2), *prog.month_closes()], prefix=faults.prefix,
                               producer="activity"))
    def caught_up() -> None:
        for name in READS:
            poll(lambda: lag_is_zero(faults, name), f"{name} read everything", 90)  # noqa: B023

    poll(lambda: len(get(procs["payments"], "/statements", program_id=prog.id, month=CLOSED_MONTH)) == prog.n,
         "the statements")
    ids = [s["statement_id"] for s in get(procs["payments"], "/statements", program_id=prog.id)]
    r = httpx.post(f"{procs['payments'].url}/statements/approvals", json={"statement_ids": ids}, headers=STAFF,
                   timeout=15)
    assert r.status_code == 200, r.text
    poll(lambda: get(procs["payments"], "/batches"), "the payout batch")
    # Introductions (2 per match), payment approved and payout notices (1 per mentor each).
    expected_mails = 2 * prog.n + 2 * prog.n
    poll(lambda: len(smtp.snapshot()) >= expected_mails, "every email sent", 90)
    poll(lambda: applied_in_store(faults.data_dir, "activity", "MeetingLogged") == 2 * prog.n, "meetings applied")
    caught_up()
    time.sleep(1.5)  # the relays publish what the last batches caused (reminders too)
    caught_up()
    before, counts_before, mails_before = views(procs, prog), event_counts(faults), len(smtp.snapshot())
    assert all(m["status"] == "sent" for m in before["notify.messages"]["items"])
    assert mails_before == before["notify.messages"]["total"] >= expected_mails

    applied_before = {}
    for name, proc in procs.items():
        proc.stop()
        applied_before[name] = clear_inbox(faults.data_dir, name)
        reset_group_to_earliest(faults.bootstrap, faults.prefix + name, [faults.topic(t) for t in READS[name]])
        assert not lag_is_zero(faults, name)
    procs = {name: faults.add(name, env=env[name]) for name in READS}
    faults.start(*procs.values())
    caught_up()
    # Every event was applied again (the inbox was empty), and changed nothing.
    reapplied = {name: applied_in_store(faults.data_dir, name, t) for name, t in
                 (("activity", "MeetingLogged"), ("payments", "MonthClosed"), ("notify", "MenteeMatched"))}
    assert reapplied == {"activity": 2 * prog.n, "payments": prog.n, "notify": prog.n}
    time.sleep(2.0)  # anything the replay caused would be published and sent now
    after = views(procs, prog)
    for key in before:
        assert after[key] == before[key], key
    assert event_counts(faults) == counts_before
    mails_after = len(smtp.snapshot())
    assert mails_after == mails_before
    record("group reset to earliest + inbox emptied (activity, payments, notify)",
           sent=sum(applied_before.values()), received=sum(applied_before.values()), lost=0,
           duplicated=(mails_after - mails_before) + sum(event_counts(faults).values()) - sum(counts_before.values()))
