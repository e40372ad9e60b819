"""Pay day and the payout batch file for the external payment system (pure)."""

from __future__ import annotations

import calendar
import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from shared.clock import local_date

CSV_COLUMNS = ("payee", "payee_email", "amount", "currency", "memo", "reference")


def pay_day(year: int, month: int, rule: Literal["first_working_day"] | int) -> date:
    """The pay day of a month: its first working day (Monday to Friday), or a configured day
    of the month (clamped to the month's last day). Public holidays are not modelled."""
    if rule == "first_working_day":
        day = date(year, month, 1)
        while day.weekday() >= 5:
            day = day.replace(day=day.day + 1)
        return day
    last = calendar.monthrange(year, month)[1]
    return date(year, month, max(1, min(int(rule), last)))


def due_pay_day(now: datetime, timezone: str, rule: Literal["first_working_day"] | int) -> date | None:
    """This month's pay day if it has come (in the program's time zone), else None."""
    today = local_date(now, timezone)
    day = pay_day(today.year, today.month, rule)
    return day if today >= day else None


def previous_month(day: date) -> str:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return f"{year:04d}-{month:02d}"


@dataclass(frozen=True)
class PayoutCandidate:
    """An approved, unpaid statement or reimbursement."""

    reference: str
    reference_type: Literal["statement", "reimbursement"]
    payee_id: str
    amount: Decimal
    memo: str


@dataclass(frozen=True)
class PayoutPlan:
    paid: list[PayoutCandidate]  # go into the batch (amount 0 ones are settled, not in the CSV)
    held: list[tuple[PayoutCandidate, str]]  # wait for a later batch, with the reason


def plan_payout(candidates: Sequence[PayoutCandidate]) -> PayoutPlan:
    """Which candidates a batch pays. A payee whose items net below zero (a correction larger
    than what they earned) is held whole: nothing negative is ever sent to the payment system,
    and the correction is settled by a later batch when there is pay to set it against."""
    by_payee: dict[str, list[PayoutCandidate]] = defaultdict(list)
    for c in candidates:
        by_payee[c.payee_id].append(c)
    paid: list[PayoutCandidate] = []
    held: list[tuple[PayoutCandidate, str]] = []
    for payee in sorted(by_payee):
        items = by_payee[payee]
        net = sum((c.amount for c in items), Decimal("0"))
        if net < 0:
            held.extend((c, f"payee's items net {net}: held until later pay covers it") for c in items)
        else:
            paid.extend(sorted(items, key=lambda c: c.reference))
    return PayoutPlan(paid, held)


@dataclass(frozen=True)
class CsvRow:
    payee: str
    payee_email: str
    amount: Decimal
    currency: str
    memo: str
    reference: str


def payout_csv(rows: Sequence[CsvRow]) -> str:
    """The batch file: one row per payee and reference with a positive amount, amounts as
    plain decimals with two places ("1234.50"), UTF-8, comma separated, header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        if r.amount <= 0:
            continue
        writer.writerow([r.payee, r.payee_email, f"{r.amount:.2f}", r.currency, r.memo, r.reference])
    return out.getvalue()
