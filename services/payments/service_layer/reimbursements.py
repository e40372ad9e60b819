"""Reimbursement requests: checked against the partnership's budget for the school year, approved
(and paid in the next batch) or refused with the remaining budget."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, select

from services.payments.adapters.tables import PartnershipRow, ReimbursementRow
from services.payments.domain.reimbursements import (
    OverBudget,
    ReimbursementKind,
    budget_of,
    check_budget,
    school_year_label,
    school_year_of,
)
from services.payments.service_layer.statements import Emit, audit, cents, from_cents, policy_of
from shared.contracts.payments import ReimbursementApproved, ReimbursementRefused
from shared.errors import Conflict, NotFound
from shared.money import Money


def spent(session: Session, partnership_id: str, kind: ReimbursementKind, year: str) -> Decimal:
    total = session.exec(
        select(func.coalesce(func.sum(ReimbursementRow.amount_cents), 0)).where(
            ReimbursementRow.partnership_id == partnership_id, ReimbursementRow.kind == kind.value,
            ReimbursementRow.school_year == year, ReimbursementRow.status == "approved",
        )
    ).one()
    return from_cents(int(total))


def budgets(session: Session, partnership_id: str, on: date) -> dict[str, object]:
    partnership = _partnership(session, partnership_id, lock=False)
    policy = policy_of(session, partnership.program_id)
    if policy is None:
        raise NotFound("partnership_id", "the partnership's program is not configured yet")
    start, end = school_year_of(on, policy.school_year)
    year = school_year_label(start, end)
    out: dict[str, object] = {"partnership_id": partnership_id, "school_year": year, "currency": policy.pay.currency}
    for kind in ReimbursementKind:
        budget = budget_of(kind, policy.pay)
        used = spent(session, partnership_id, kind, year)
        out[kind.value] = {"budget": str(budget), "spent": str(used), "remaining": str(budget - used)}
    return out


def _partnership(session: Session, partnership_id: str, *, lock: bool) -> PartnershipRow:
    query = select(PartnershipRow).where(PartnershipRow.partnership_id == partnership_id)
    if lock:  # serialise requests against one partnership's budget (PostgreSQL; SQLite writes are serial)
        query = query.with_for_update()
    row = session.exec(query).first()
    if row is None:
        raise NotFound("partnership_id", f"no partnership {partnership_id}")
    return row


def request(
    session: Session, emit: Emit, now: datetime, *, partnership_id: str, kind: ReimbursementKind, amount: Decimal,
    spent_on: date, description: str, actor: str, reimbursement_id: str | None = None,
) -> tuple[ReimbursementRow, OverBudget | None]:
    """Approve the request if the budget allows, else record and announce the refusal. Returns
    the row and, when refused, the error for the caller to raise after the commit. A request
    sent again with the same id returns the first decision."""
    rid = reimbursement_id or str(uuid.uuid4())
    existing = session.get(ReimbursementRow, rid)
    if existing is not None:
        if existing.partnership_id != partnership_id or existing.amount_cents != cents(amount):
            raise Conflict("reimbursement_id", "already used for a different request", "duplicate_id")
        if existing.status == "refused":
            return existing, OverBudget("amount", existing.reason, "over_budget")
        return existing, None
    partnership = _partnership(session, partnership_id, lock=True)
    policy = policy_of(session, partnership.program_id)
    if policy is None:
        raise NotFound("partnership_id", "the partnership's program is not configured yet")
    start, end = school_year_of(spent_on, policy.school_year)
    year = school_year_label(start, end)
    currency = policy.pay.currency
    budget = budget_of(kind, policy.pay)
    used = spent(session, partnership_id, kind, year)
    row = ReimbursementRow(
        reimbursement_id=rid, program_id=partnership.program_id, partnership_id=partnership_id,
        payee_id=partnership.mentor_id, kind=kind.value, amount_cents=0, currency=currency, school_year=year,
        spent_on=spent_on, description=description, status="approved", requested_by=actor, created_at=now,
    )
    try:
        check = check_budget(kind, amount, budget, used, currency, year)
    except OverBudget as refused:
        row.amount_cents, row.status, row.reason = cents(amount), "refused", refused.problems[0].reason
        session.add(row)
        remaining = Money(amount=budget - used, currency=currency)
        audit(session, now, "reimbursement", rid, "refused", actor, amount=amount, remaining=remaining.amount)
        emit(ReimbursementRefused(
            reimbursement_id=rid, program_id=row.program_id, partnership_id=partnership_id, payee_id=row.payee_id,
            kind=kind.value, amount=Money(amount=amount, currency=currency), remaining_budget=remaining,
            reason=row.reason,
        ))
        return row, refused
    row.amount_cents = cents(amount)
    session.add(row)
    remaining_after = Money(amount=check.remaining - amount, currency=currency)
    audit(session, now, "reimbursement", rid, "approved", actor, amount=amount, remaining=remaining_after.amount)
    emit(ReimbursementApproved(
        reimbursement_id=rid, program_id=row.program_id, partnership_id=partnership_id, payee_id=row.payee_id,
        kind=kind.value, amount=Money(amount=amount, currency=currency), remaining_budget=remaining_after,
    ))
    return row, None
