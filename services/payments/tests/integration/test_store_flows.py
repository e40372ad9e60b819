"""Statements, review, payout and reimbursements on the real stores (SQLite and PostgreSQL), driven
through the service layer as the consumer and HTTP handlers drive it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from services.payments.adapters.tables import BatchRow, PayoutItemRow, ReimbursementRow, StatementRow
from services.payments.domain.reimbursements import OverBudget, ReimbursementKind
from services.payments.entrypoints.app import emitter
from services.payments.service_layer import reimbursements, statements, views
from services.payments.service_layer.payout import run_payouts
from services.payments.service_layer.statements import statement_id_for
from services.payments.tests.support import PROGRAM, Harness, closed, matched, mentor, program
from shared.contracts.activity import MonthClosed, TimeEntryAmended
from shared.contracts.program import PayPolicy, TimeEntryKind
from shared.errors import Conflict, DomainError
from shared.messaging import TransientError

pytestmark = pytest.mark.integration
OCT_CLOSE = datetime(2026, 11, 1, 12, tzinfo=UTC)  # Sunday 1 Nov: pay day is Monday 2 Nov
NOV_PAY_DAY = datetime(2026, 11, 2, 16, tzinfo=UTC)  # 09:00 in Denver


@pytest.fixture
def h(store_url: str) -> Iterator[Harness]:
    harness = Harness(store_url, OCT_CLOSE)
    harness.tx(lambda s, e: statements.program_configured(s, program(PayPolicy(monthly_cap=Decimal("500")))))
    for m in ("ann", "bob"):
        event = mentor(m)
        harness.tx(lambda s, e: statements.mentor_enrolled(s, event))  # noqa: B023
    yield harness
    harness.close()


def close_month(h: Harness, event: MonthClosed) -> None:
    h.tx(lambda s, e: statements.month_closed(s, e, h.clock.now(), event))


def statement(h: Harness, mentor_id: str, month: str) -> dict[str, Any]:
    return h.read(lambda s: views.statement_detail(s, statement_id_for(PROGRAM, mentor_id, month)))


def payout(h: Harness) -> list[str]:
    return run_payouts(h.service.db, lambda s: emitter(h.service, s), h.clock.now)


def test_month_close_prepares_one_statement_with_a_line_per_entry(h: Harness) -> None:
    event = closed("ann", "2026-10", ("w1", "workshop", 60, 5), ("p1", "planning", 150, 2), ("m1", "meeting", 45, 7))
    close_month(h, event)
    close_month(h, event)  # MonthClosed sent again (another event id): nothing new
    st = statement(h, "ann", "2026-10")
    assert st["status"] == "in_review" and st["revision"] == 1
    assert [(line["entry_id"], line["kind"], line["minutes"], line["paid_minutes"], line["rate"], line["amount"])
            for line in st["lines"]] == [
        ("p1", "planning", 150, "120", "30.00", "60.00"),  # planning capped at 2 x 60 min
        ("w1", "workshop", 60, "60", "50.00", "50.00"),
        ("m1", "meeting", 45, "45", "40.00", "30.00"),
    ]
    assert st["total"] == "140.00" and st["currency"] == "USD"
    assert [e["event_type"] for e in h.events()] == ["StatementPrepared"]
    assert h.read(lambda s: len(s.exec(select(StatementRow)).all())) == 1


def test_review_clarify_answer_approve_and_audit(h: Harness) -> None:
    close_month(h, closed("ann", "2026-10", ("m1", "meeting", 60), ("m2", "meeting", 600)))
    sid = statement_id_for(PROGRAM, "ann", "2026-10")
    now = h.clock.now()
    with pytest.raises(DomainError) as unknown:
        h.tx(lambda s, e: statements.ask_clarification(s, e, now, sid, "staff-1", ["nope"], "what is this?"))
    assert unknown.value.problems[0].field == "entry_ids"
    h.tx(lambda s, e: statements.ask_clarification(s, e, now, sid, "staff-1", ["m2"], "Ten hours in one meeting?"))
    with pytest.raises(Conflict, match="clarification"):
        h.tx(lambda s, e: statements.approve(s, e, now, sid, "staff-1"))
    # The mentor corrects the entry in activity: the statement is recomputed and back in review.
    h.tx(lambda s, e: statements.time_entry_amended(s, e, now, TimeEntryAmended(
        entry_id="m2", mentor_id="ann", program_id=PROGRAM, kind=TimeEntryKind.MEETING,
        work_date=date(2026, 10, 3), minutes=60, reason="typo", month="2026-10")))
    st = statement(h, "ann", "2026-10")
    assert (st["status"], st["revision"], st["total"]) == ("in_review", 2, "80.00")
    assert st["clarifications"][0]["answered_at"] is not None
    with pytest.raises(Conflict) as stale:
        h.tx(lambda s, e: statements.approve(s, e, now, sid, "staff-2", revision=1))
    assert stale.value.problems[0].field == "revision"
    h.tx(lambda s, e: statements.approve(s, e, now, sid, "staff-2", revision=2))
    h.tx(lambda s, e: statements.approve(s, e, now, sid, "staff-2", revision=2))  # a retried approval
    approvals = h.events("PaymentApproved")
    assert len(approvals) == 1
    assert approvals[0]["amount"] == {"amount": "80.00", "currency": "USD"} and approvals[0]["approved_by"] == "staff-2"
    assert h.events("ClarificationRequested")[0]["entry_ids"] == ["m2"]
    trail = h.read(lambda s: views.audit_trail(s, sid))
    assert [(a["action"], a["actor"]) for a in trail] == [
        ("prepared", "system"), ("clarification_requested", "staff-1"), ("recomputed", "system"),
        ("approved", "staff-2"),
    ]


def test_payout_pays_each_approved_statement_once_and_lists_the_rest_as_pending(h: Harness) -> None:
    close_month(h, closed("ann", "2026-10", ("a1", "meeting", 90)))
    close_month(h, closed("bob", "2026-10", ("b1", "meeting", 30)))
    h.tx(lambda s, e: statements.approve(s, e, h.clock.now(), statement_id_for(PROGRAM, "ann", "2026-10"), "staff"))
    assert payout(h) == [], "Sunday 1 November is not pay day"
    h.clock.set(NOV_PAY_DAY)
    [batch_id] = payout(h)
    assert payout(h) == [] and payout(h) == [], "a re-run pays nothing"
    detail = h.read(lambda s: views.batch_detail(s, batch_id))
    assert (detail["pay_date"], detail["total"], detail["items"]) == ("2026-11-02", "60.00", 1)
    rows = list(csv.DictReader(io.StringIO(h.read(lambda s: views.get_batch(s, batch_id).csv))))
    assert rows == [{"payee": "Mentor ann", "payee_email": "ann@example.org", "amount": "60.00", "currency": "USD",
                     "memo": "stipend 2026-10 (statement revision 1)",
                     "reference": statement_id_for(PROGRAM, "ann", "2026-10")}]
    pending = h.read(lambda s: views.pending_payouts(s, PROGRAM))
    assert [(p["mentor_id"], p["waiting_for"]) for p in pending] == [("bob", "waiting for approval")]
    issued = h.events("PayoutIssued")
    assert len(issued) == 1 and issued[0]["total"] == {"amount": "60.00", "currency": "USD"}
    with pytest.raises(Conflict, match="already paid"):
        h.tx(lambda s, e: statements.approve(s, e, h.clock.now(), statement_id_for(PROGRAM, "ann", "2026-10"), "x"))
    # The database itself refuses a second payout item for a paid statement.
    with pytest.raises(IntegrityError):
        h.tx(lambda s, e: s.add(PayoutItemRow(batch_id="other", reference_type="statement",
                                              reference=statement_id_for(PROGRAM, "ann", "2026-10"),
                                              payee_id="ann", amount_cents=6000)))
    assert h.read(lambda s: len(s.exec(select(BatchRow)).all())) == 1


def test_amendment_and_late_entry_of_a_paid_month_settle_on_the_next_statement(h: Harness) -> None:
    close_month(h, closed("ann", "2026-10", ("a1", "meeting", 60), ("a2", "meeting", 60)))
    sid = statement_id_for(PROGRAM, "ann", "2026-10")
    h.tx(lambda s, e: statements.approve(s, e, h.clock.now(), sid, "staff"))
    h.clock.set(NOV_PAY_DAY)
    payout(h)
    h.tx(lambda s, e: statements.time_entry_amended(s, e, h.clock.now(), TimeEntryAmended(
        entry_id="a2", mentor_id="ann", program_id=PROGRAM, kind=TimeEntryKind.MEETING,
        work_date=date(2026, 10, 3), minutes=0, voided=True, reason="duplicate", month="2026-10")))
    assert statement(h, "ann", "2026-10")["status"] == "issued", "a paid statement never changes"
    november = closed("ann", "2026-11", ("n1", "meeting", 30, 10))
    late = closed("ann", "2026-11", ("n1", "meeting", 30, 10), ("late1", "workshop", 60, 28)).entries[1]
    november = november.model_copy(update={"entries": [
        *november.entries, late.model_copy(update={"work_date": date(2026, 10, 28), "late": True})]})
    close_month(h, november)
    st = statement(h, "ann", "2026-11")
    assert st["settles_months"] == ["2026-10", "2026-11"]
    assert [(line["type"], line["entry_id"], line["amount"]) for line in st["lines"]] == [
        ("entry", "n1", "20.00"), ("amendment", "a2", "-40.00"), ("late", "late1", "50.00"),
    ]
    assert st["total"] == "30.00"
    # What October paid in all is October as corrected: 40.00 (a1) + 50.00 (late workshop).
    assert Decimal(statement(h, "ann", "2026-10")["total"]) + Decimal("-40.00") + Decimal("50.00") == Decimal("90.00")


def test_reimbursements_within_budget_are_paid_and_over_budget_refused(h: Harness) -> None:
    h.tx(lambda s, e: statements.mentee_matched(s, matched("pa-1", "ann")))
    now = h.clock.now()

    def ask(amount: str, rid: str) -> tuple[ReimbursementRow, OverBudget | None]:
        return h.tx(lambda s, e: reimbursements.request(
            s, e, now, partnership_id="pa-1", kind=ReimbursementKind.BOOK, amount=Decimal(amount),
            spent_on=date(2026, 10, 12), description="book study", actor="staff", reimbursement_id=rid))

    row, refused = ask("30.00", "r1")
    assert refused is None and row.payee_id == "ann"
    assert ask("30.00", "r1")[1] is None, "the same request again is the same reimbursement"
    _, refused = ask("25.00", "r2")
    assert isinstance(refused, OverBudget)
    assert "remaining book budget of 20.00 USD" in refused.problems[0].reason
    assert [e["event_type"] for e in h.events() if e["event_type"].startswith("Reimbursement")] == [
        "ReimbursementApproved", "ReimbursementRefused"]
    assert h.events("ReimbursementRefused")[0]["remaining_budget"] == {"amount": "20.00", "currency": "USD"}
    budgets = h.read(lambda s: reimbursements.budgets(s, "pa-1", date(2026, 12, 1)))
    assert budgets["book"] == {"budget": "50.00", "spent": "30.00", "remaining": "20.00"}
    h.clock.set(NOV_PAY_DAY)
    [batch_id] = payout(h)
    items = h.read(lambda s: views.batch_detail(s, batch_id))["payout_items"]
    assert items == [{"reference_type": "reimbursement", "reference": "r1", "payee_id": "ann", "amount": "30.00"}]


def test_approving_many_at_once_follows_the_same_rules(h: Harness) -> None:
    for m in ("ann", "bob"):
        close_month(h, closed(m, "2026-10", (f"{m}1", "meeting", 60)))
    ann, bob = (statement_id_for(PROGRAM, m, "2026-10") for m in ("ann", "bob"))
    now = h.clock.now()
    h.tx(lambda s, e: statements.ask_clarification(s, e, now, bob, "staff", ["bob1"], "Which mentee?"))
    done = h.tx(lambda s, e: statements.approve_many(s, e, now, [ann, bob, "nope"], "staff-9"))
    assert done["approved"] == [ann] and done["unchanged"] == []
    assert [(r["statement_id"], r["reason"][:21]) for r in done["refused"]] == [
        (bob, "a clarification is op"), ("nope", "no such statement")]
    again = h.tx(lambda s, e: statements.approve_many(s, e, now, [ann], "staff-9"))
    assert again == {"approved": [], "unchanged": [ann], "refused": []}
    assert [(a["statement_id"], a["approved_by"]) for a in h.events("PaymentApproved")] == [(ann, "staff-9")]
    assert statement(h, "ann", "2026-10")["status"] == "approved"
    assert [a["action"] for a in h.read(lambda s: views.audit_trail(s, ann))] == ["prepared", "approved"]


def test_a_month_closed_before_its_program_is_known_is_retried_not_lost(store_url: str) -> None:
    harness = Harness(store_url, OCT_CLOSE)
    october = closed("ann", "2026-10", ("a1", "meeting", 60))
    with pytest.raises(TransientError, match="not configured yet"):
        harness.tx(lambda s, e: statements.month_closed(s, e, OCT_CLOSE, october))
    assert harness.read(lambda s: s.exec(select(StatementRow)).all()) == []
    harness.tx(lambda s, e: statements.program_configured(s, program()))
    harness.tx(lambda s, e: statements.month_closed(s, e, OCT_CLOSE, october))
    assert statement(harness, "ann", "2026-10")["total"] == "40.00"
    harness.close()


def test_two_instances_running_the_payout_at_once_pay_once(h: Harness) -> None:
    for i in range(30):
        m = f"mentor-{i}"
        close_month(h, closed(m, "2026-10", (f"{m}-1", "meeting", 60)))
    ids = h.read(lambda s: list(s.exec(select(StatementRow.statement_id)).all()))
    h.tx(lambda s, e: statements.approve_many(s, e, h.clock.now(), ids, "staff"))
    h.clock.set(NOV_PAY_DAY)
    other = Harness(h.service.db.url, NOV_PAY_DAY)  # a second instance on the same store
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(payout, h), pool.submit(payout, other)]
        issued = [r.result(timeout=60) for r in runs]
    other.close()
    assert sorted(len(batches) for batches in issued) == [0, 1]
    assert h.read(lambda s: len(s.exec(select(BatchRow)).all())) == 1
    assert h.read(lambda s: len(s.exec(select(PayoutItemRow)).all())) == 30
    assert len(h.events("PayoutIssued")) == 1


def test_a_statement_waits_for_the_answer_about_the_questioned_entry(h: Harness) -> None:
    close_month(h, closed("ann", "2026-10", ("m1", "meeting", 60), ("m2", "meeting", 90)))
    sid = statement_id_for(PROGRAM, "ann", "2026-10")
    now = h.clock.now()
    h.tx(lambda s, e: statements.ask_clarification(s, e, now, sid, "staff-1", ["m2"], "90 minutes?"))

    def amend(entry_id: str, minutes: int) -> None:
        h.tx(lambda s, e: statements.time_entry_amended(s, e, now, TimeEntryAmended(
            entry_id=entry_id, mentor_id="ann", program_id=PROGRAM, kind=TimeEntryKind.MEETING,
            work_date=date(2026, 10, 3), minutes=minutes, month="2026-10")))

    amend("m1", 30)  # another entry changes: recomputed, but the question about m2 is still open
    st = statement(h, "ann", "2026-10")
    assert (st["status"], st["revision"], st["total"]) == ("clarification", 2, "80.00")
    amend("m2", 90)  # the mentor confirms m2 as it was
    st = statement(h, "ann", "2026-10")
    assert (st["status"], st["revision"], st["total"]) == ("in_review", 3, "80.00")
    assert [e["revision"] for e in h.events("StatementPrepared")] == [1, 2, 3]
