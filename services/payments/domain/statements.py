"""Stipend arithmetic: what a month of time entries is worth, and the lines of a statement.

Rounding is stated once, here: **each line is rounded** half-up to the cent with
shared.money.round_money (an entry line from `minutes / 60 * hourly rate`), and a statement's
total is the exact sum of its rounded lines. So the total always equals the sum of the lines a
mentor sees, and an adjustment line is the exact difference of two rounded amounts.

Rules (from PayPolicy, per program):
- a kind without an hourly rate is not paid (its line shows rate 0);
- a void entry is not paid (its line shows 0 paid minutes);
- planning time is paid up to `planning_multiple_of_workshop` x the month's workshop minutes,
  planning entries taking the allowance in date order;
- an optional monthly cap limits what one month of work pays; the excess is a negative
  `monthly_cap` line.

Late entries (recorded after their month closed) and amendments of entries already counted on
another statement are settled against *their own work month*: the month is recomputed with the
entries as they are now (`month_pay`), and the statement carries, per entry, the difference
between that corrected amount and what other statements already counted for it. Summed over all
statements, a month therefore always pays exactly its corrected amount, caps included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from shared.contracts.program import PayPolicy, TimeEntryKind
from shared.money import round_money

ZERO = Decimal("0")
SIXTY = Decimal("60")
CAP_KEY = "monthly_cap"  # the key of a month's cap line in `counted_elsewhere`


class LineType(StrEnum):
    ENTRY = "entry"  # an entry of the statement's own month, counted for the first time
    LATE = "late"  # an entry of an earlier month, recorded after that month closed
    AMENDMENT = "amendment"  # a change to an entry already counted on another statement
    MONTHLY_CAP = "monthly_cap"  # what a month's work earns beyond the monthly cap (negative)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


@dataclass(frozen=True)
class WorkEntry:
    """A time entry as payments knows it now (from MonthClosed, then TimeEntryAmended)."""

    entry_id: str
    kind: TimeEntryKind
    work_date: date
    minutes: int
    voided: bool = False

    @property
    def work_month(self) -> str:
        return month_of(self.work_date)


@dataclass(frozen=True)
class EntryPay:
    """What one entry earns in its month."""

    entry: WorkEntry
    paid_minutes: Decimal
    rate: Decimal
    amount: Decimal
    note: str = ""


@dataclass(frozen=True)
class MonthPay:
    """What one month of a mentor's work earns, entry by entry, after the caps."""

    month: str
    entries: dict[str, EntryPay]
    cap_adjustment: Decimal  # <= 0: the monthly cap's reduction
    total: Decimal

    @property
    def planning_paid_minutes(self) -> Decimal:
        return sum(
            (p.paid_minutes for p in self.entries.values() if p.entry.kind == TimeEntryKind.PLANNING), ZERO
        )

    @property
    def workshop_minutes(self) -> int:
        return sum(
            p.entry.minutes
            for p in self.entries.values()
            if p.entry.kind == TimeEntryKind.WORKSHOP and not p.entry.voided
        )


def line_amount(minutes: Decimal | int, rate: Decimal) -> Decimal:
    """One line's amount: minutes at an hourly rate, rounded once (half-up, to the cent)."""
    return round_money(Decimal(minutes) * rate / SIXTY)


def month_pay(month: str, entries: Iterable[WorkEntry], pay: PayPolicy) -> MonthPay:
    """What these entries (all of one work month) earn under the program's pay policy."""
    ordered = sorted(entries, key=lambda e: (e.work_date, e.entry_id))
    for e in ordered:
        if e.work_month != month:
            raise ValueError(f"entry {e.entry_id} of {e.work_month} is not in {month}")
    workshop = sum(e.minutes for e in ordered if e.kind == TimeEntryKind.WORKSHOP and not e.voided)
    planning_left = Decimal(workshop) * pay.planning_multiple_of_workshop
    paid: dict[str, EntryPay] = {}
    for e in ordered:
        rate = pay.hourly_rates.get(e.kind, ZERO)
        note = ""
        minutes = Decimal(e.minutes)
        if e.voided:
            minutes, note = ZERO, "void: not paid"
        elif e.kind == TimeEntryKind.PLANNING:
            if minutes > planning_left:
                note = (
                    f"planning capped at {pay.planning_multiple_of_workshop}x workshop time: "
                    f"{_minutes(planning_left)} of {e.minutes} min paid"
                )
                minutes = planning_left
            planning_left -= minutes
        if rate == ZERO and not e.voided:
            note = f"no rate for {e.kind.value}: not paid"
        paid[e.entry_id] = EntryPay(e, minutes, rate, line_amount(minutes, rate), note)
    earned = sum((p.amount for p in paid.values()), ZERO)
    cap = ZERO
    if pay.monthly_cap is not None and earned > pay.monthly_cap:
        cap = round_money(pay.monthly_cap) - earned
    return MonthPay(month, paid, cap, earned + cap)


def _minutes(value: Decimal) -> str:
    return f"{value.normalize():f}"


@dataclass(frozen=True)
class StatementLine:
    line_type: LineType
    work_month: str
    amount: Decimal
    entry_id: str | None = None
    kind: TimeEntryKind | None = None
    work_date: date | None = None
    minutes: int = 0  # the entry's minutes as recorded now
    paid_minutes: Decimal = ZERO
    rate: Decimal = ZERO
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.work_month, self.entry_id or CAP_KEY)


@dataclass(frozen=True)
class StatementDraft:
    month: str
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    def entry_ids(self) -> set[str]:
        return {line.entry_id for line in self.lines if line.entry_id is not None}


def statement_lines(
    month: str,
    targets: Sequence[MonthPay],
    counted_elsewhere: Mapping[tuple[str, str], Decimal],
) -> StatementDraft:
    """The lines of a mentor's statement for `month`.

    targets: what each work month this statement settles should pay in all (`month_pay` of the
    entries as they are now): the statement's own month and any earlier month with late or
    amended entries. counted_elsewhere: per (work month, entry id or CAP_KEY), the sum of what
    the mentor's *other* statements already count for it (a key is present, maybe with 0, when
    another statement has a line for it).

    A line carries target - counted elsewhere. Entries of the statement's own month and late
    entries always get a line (0 for a void entry, so the mentor sees it was not paid);
    amendments and cap changes only when they change the amount.
    """
    lines: list[StatementLine] = []
    for target in sorted(targets, key=lambda t: t.month, reverse=True):
        own = target.month == month
        for p in target.entries.values():
            key = (target.month, p.entry.entry_id)
            elsewhere = counted_elsewhere.get(key)
            amount = p.amount - (elsewhere or ZERO)
            if elsewhere is None:
                line_type = LineType.ENTRY if own else LineType.LATE
            else:
                line_type = LineType.AMENDMENT
                if amount == ZERO:
                    continue
            lines.append(
                StatementLine(
                    line_type, target.month, amount, p.entry.entry_id, p.entry.kind, p.entry.work_date,
                    p.entry.minutes, p.paid_minutes, p.rate,
                    _amendment_note(p, elsewhere) if line_type == LineType.AMENDMENT else p.note,
                )
            )
        cap = target.cap_adjustment - counted_elsewhere.get((target.month, CAP_KEY), ZERO)
        if cap != ZERO:
            lines.append(
                StatementLine(
                    LineType.MONTHLY_CAP, target.month, cap,
                    note=f"monthly cap for {target.month}: {target.total} of {target.total - target.cap_adjustment}",
                )
            )
    return StatementDraft(month, lines)


def _amendment_note(p: EntryPay, elsewhere: Decimal | None) -> str:
    was = elsewhere or ZERO
    why = f"; {p.note}" if p.note else ""
    return f"corrected {p.entry.work_month} entry: now {p.amount}, counted before {was}{why}"
