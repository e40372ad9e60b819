"""Pay day, batch planning and the CSV file; reimbursement budgets."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.payments.domain.payout import (
    CsvRow,
    PayoutCandidate,
    due_pay_day,
    pay_day,
    payout_csv,
    plan_payout,
    previous_month,
)
from services.payments.domain.reimbursements import (
    OverBudget,
    ReimbursementKind,
    check_budget,
    school_year_of,
)
from shared.contracts.program import SchoolYear
from shared.errors import DomainError

pytestmark = pytest.mark.unit


def test_pay_day_is_the_first_working_day_or_a_configured_day() -> None:
    assert pay_day(2026, 11, "first_working_day") == date(2026, 11, 2)  # 1 Nov 2026 is a Sunday
    assert pay_day(2026, 12, "first_working_day") == date(2026, 12, 1)
    assert pay_day(2027, 5, "first_working_day") == date(2027, 5, 3)  # Saturday 1st
    assert pay_day(2027, 2, 15) == date(2027, 2, 15)
    assert pay_day(2027, 2, 31) == date(2027, 2, 28)


def test_pay_day_comes_in_the_programs_time_zone() -> None:
    # 2 Nov 2026 06:30 UTC is still 1 Nov (Sunday) in Denver, and already Monday 2 Nov in Berlin.
    instant = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    assert due_pay_day(instant, "America/Denver", "first_working_day") is None
    assert due_pay_day(instant, "Europe/Berlin", "first_working_day") == date(2026, 11, 2)
    assert due_pay_day(datetime(2026, 11, 20, tzinfo=UTC), "America/Denver", "first_working_day") == date(2026, 11, 2)
    assert previous_month(date(2027, 1, 4)) == "2026-12"


def test_a_payee_whose_items_net_negative_is_held() -> None:
    items = [
        PayoutCandidate("s1", "statement", "ann", Decimal("120.00"), "Oct"),
        PayoutCandidate("s2", "statement", "bob", Decimal("-30.00"), "Oct correction"),
        PayoutCandidate("s3", "statement", "bob", Decimal("10.00"), "Nov"),
        PayoutCandidate("r1", "reimbursement", "ann", Decimal("20.00"), "book"),
    ]
    plan = plan_payout(items)
    assert [c.reference for c in plan.paid] == ["r1", "s1"]
    assert sorted(c.reference for c, _ in plan.held) == ["s2", "s3"]
    assert "net -20.00" in plan.held[0][1]


def test_csv_has_the_columns_the_payment_system_imports() -> None:
    text = payout_csv(
        [
            CsvRow("Ann Lee", "ann@example.org", Decimal("120.5"), "USD", "stipend 2026-10", "st-1"),
            CsvRow("Zero", "z@example.org", Decimal("0.00"), "USD", "nothing owed", "st-2"),
            CsvRow('Bob "B", Jr', "bob@example.org", Decimal("12.00"), "USD", "book", "rb-1"),
        ]
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["reference"] for r in rows] == ["st-1", "rb-1"]
    assert rows[0] == {
        "payee": "Ann Lee", "payee_email": "ann@example.org", "amount": "120.50",
        "currency": "USD", "memo": "stipend 2026-10", "reference": "st-1",
    }
    assert rows[1]["payee"] == 'Bob "B", Jr'


def test_school_year_shifts_the_configured_year() -> None:
    sy = SchoolYear()  # 2026-08-01 .. 2027-07-31
    assert school_year_of(date(2026, 9, 1), sy) == (date(2026, 8, 1), date(2027, 7, 31))
    assert school_year_of(date(2027, 8, 1), sy) == (date(2027, 8, 1), date(2028, 7, 31))
    assert school_year_of(date(2026, 7, 31), sy) == (date(2025, 8, 1), date(2026, 7, 31))


def test_over_budget_is_refused_with_the_remaining_budget() -> None:
    ok = check_budget(ReimbursementKind.BOOK, Decimal("30.00"), Decimal("50.00"), Decimal("0"), "USD", "2026-2027")
    assert ok.remaining == Decimal("50.00")
    with pytest.raises(OverBudget) as refused:
        check_budget(ReimbursementKind.BOOK, Decimal("30.00"), Decimal("50.00"), Decimal("30.00"), "USD", "2026-2027")
    [problem] = refused.value.problems
    assert problem.field == "amount" and problem.code == "over_budget"
    assert "remaining book budget of 20.00 USD" in problem.reason
    with pytest.raises(DomainError, match="whole cents"):
        check_budget(ReimbursementKind.TRAVEL, Decimal("1.005"), Decimal("300"), Decimal("0"), "USD", "2026-2027")
    with pytest.raises(DomainError, match="more than 0"):
        check_budget(ReimbursementKind.TRAVEL, Decimal("0"), Decimal("300"), Decimal("0"), "USD", "2026-2027")
