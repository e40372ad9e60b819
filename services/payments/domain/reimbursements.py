"""Reimbursements against a partnership's yearly budgets (book study, partner meet-up travel)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from shared.contracts.program import PayPolicy, SchoolYear
from shared.errors import DomainError
from shared.money import round_money


class ReimbursementKind(StrEnum):
    BOOK = "book"  # book purchase for a book study
    TRAVEL = "travel"  # travel to meet in person (site visit / partner meet-up)


def budget_of(kind: ReimbursementKind, pay: PayPolicy) -> Decimal:
    if kind == ReimbursementKind.BOOK:
        return pay.book_budget_per_partnership_year
    return pay.travel_budget_per_partnership_year


def school_year_of(day: date, configured: SchoolYear) -> tuple[date, date]:
    """The school year a day falls in: the configured one, shifted by whole years."""
    shift = day.year - configured.start.year
    for years in (shift - 1, shift, shift + 1):
        start = _add_years(configured.start, years)
        end = _add_years(configured.end, years)
        if start <= day <= end:
            return start, end
    raise DomainError("spent_on", f"{day} is not inside any school year of the program", "no_school_year")


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def school_year_label(start: date, end: date) -> str:
    return f"{start.year}-{end.year}" if end.year != start.year else str(start.year)


class OverBudget(DomainError):
    status = 409


@dataclass(frozen=True)
class BudgetCheck:
    budget: Decimal
    spent: Decimal

    @property
    def remaining(self) -> Decimal:
        return round_money(self.budget - self.spent)


def check_budget(
    kind: ReimbursementKind, amount: Decimal, budget: Decimal, spent: Decimal, currency: str, year: str
) -> BudgetCheck:
    """Refuse a request that would take the partnership past its budget for the school year;
    the error names the remaining budget."""
    if amount <= 0:
        raise DomainError("amount", "must be more than 0", "not_positive")
    if round_money(amount) != amount:
        raise DomainError("amount", "must be in whole cents", "too_precise")
    check = BudgetCheck(budget, spent)
    if amount > check.remaining:
        raise OverBudget(
            "amount",
            f"{amount} {currency} exceeds the remaining {kind.value} budget of {check.remaining} {currency} "
            f"for this partnership in school year {year}",
            "over_budget",
        )
    return check
