"""Read models for the HTTP API: statements with lines, batches, pending payouts, audit trail."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from services.payments.adapters.tables import (
    AuditRow,
    BatchRow,
    ClarificationRow,
    PayeeRow,
    PayoutItemRow,
    ReimbursementRow,
    StatementLineRow,
    StatementRow,
)
from services.payments.domain.review import StatementStatus
from services.payments.service_layer.statements import from_cents
from shared.errors import NotFound


def statement_summary(s: StatementRow) -> dict[str, Any]:
    return {
        "statement_id": s.statement_id, "program_id": s.program_id, "mentor_id": s.mentor_id, "month": s.month,
        "status": s.status, "revision": s.revision, "total": str(from_cents(s.total_cents)),
        "currency": s.currency, "approved_by": s.approved_by,
        "approved_at": s.approved_at.isoformat() if s.approved_at else None, "batch_id": s.batch_id,
        "settles_months": json.loads(s.scope),
    }


def list_statements(session: Session, *, status: str | None, program_id: str | None, mentor_id: str | None,
                    month: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
    query = select(StatementRow)
    if status:
        query = query.where(StatementRow.status == status)
    if program_id:
        query = query.where(StatementRow.program_id == program_id)
    if mentor_id:
        query = query.where(StatementRow.mentor_id == mentor_id)
    if month:
        query = query.where(StatementRow.month == month)
    rows = session.exec(
        query.order_by(col(StatementRow.month), col(StatementRow.mentor_id)).offset(offset).limit(limit)
    ).all()
    return [statement_summary(s) for s in rows]


def statement_detail(session: Session, statement_id: str) -> dict[str, Any]:
    s = session.get(StatementRow, statement_id)
    if s is None:
        raise NotFound("statement_id", f"no statement {statement_id}")
    lines = session.exec(
        select(StatementLineRow).where(StatementLineRow.statement_id == statement_id)
        .order_by(col(StatementLineRow.seq))
    ).all()
    clarifications = session.exec(
        select(ClarificationRow).where(ClarificationRow.statement_id == statement_id).order_by(col(ClarificationRow.id))
    ).all()
    payee = session.get(PayeeRow, s.mentor_id)
    return {
        **statement_summary(s),
        "payee": {"name": payee.name, "email": payee.email} if payee else None,
        "lines": [
            {
                "type": r.line_type, "work_month": r.work_month, "entry_id": r.entry_id, "kind": r.kind,
                "work_date": r.work_date.isoformat() if r.work_date else None, "minutes": r.minutes,
                "paid_minutes": r.paid_minutes, "rate": r.rate, "amount": str(from_cents(r.amount_cents)),
                "note": r.note,
            }
            for r in lines
        ],
        "clarifications": [
            {
                "entry_ids": json.loads(c.entry_ids), "question": c.question, "requested_by": c.requested_by,
                "requested_at": c.requested_at.isoformat(),
                "answered_at": c.answered_at.isoformat() if c.answered_at else None,
            }
            for c in clarifications
        ],
    }


def audit_trail(session: Session, subject_id: str) -> list[dict[str, Any]]:
    rows = session.exec(select(AuditRow).where(AuditRow.subject_id == subject_id).order_by(col(AuditRow.id))).all()
    return [
        {"action": r.action, "actor": r.actor, "at": r.at.isoformat(), "detail": json.loads(r.detail or "{}")}
        for r in rows
    ]


def pending_payouts(session: Session, program_id: str | None) -> list[dict[str, Any]]:
    """Everything not yet paid, with why it waits."""
    query = select(StatementRow).where(StatementRow.status != StatementStatus.ISSUED.value)
    if program_id:
        query = query.where(StatementRow.program_id == program_id)
    waiting = {
        StatementStatus.IN_REVIEW.value: "waiting for approval",
        StatementStatus.CLARIFICATION.value: "waiting for the mentor's answer to a clarification",
        StatementStatus.APPROVED.value: "approved: paid on the next pay day",
    }
    out = [
        {**statement_summary(s), "reference_type": "statement", "waiting_for": waiting[s.status]}
        for s in session.exec(query.order_by(col(StatementRow.month), col(StatementRow.mentor_id))).all()
    ]
    reimbursements = select(ReimbursementRow).where(
        ReimbursementRow.status == "approved", col(ReimbursementRow.batch_id).is_(None)
    )
    if program_id:
        reimbursements = reimbursements.where(ReimbursementRow.program_id == program_id)
    out += [
        {**reimbursement_view(r), "reference_type": "reimbursement", "waiting_for": "paid on the next pay day"}
        for r in session.exec(reimbursements).all()
    ]
    return out


def reimbursement_view(r: ReimbursementRow) -> dict[str, Any]:
    return {
        "reimbursement_id": r.reimbursement_id, "program_id": r.program_id, "partnership_id": r.partnership_id,
        "payee_id": r.payee_id, "kind": r.kind, "amount": str(from_cents(r.amount_cents)), "currency": r.currency,
        "school_year": r.school_year, "spent_on": r.spent_on.isoformat(), "description": r.description,
        "status": r.status, "reason": r.reason, "requested_by": r.requested_by, "batch_id": r.batch_id,
    }


def list_reimbursements(session: Session, partnership_id: str | None, status: str | None) -> list[dict[str, Any]]:
    query = select(ReimbursementRow)
    if partnership_id:
        query = query.where(ReimbursementRow.partnership_id == partnership_id)
    if status:
        query = query.where(ReimbursementRow.status == status)
    return [reimbursement_view(r) for r in session.exec(query.order_by(col(ReimbursementRow.created_at))).all()]


def batch_summary(b: BatchRow) -> dict[str, Any]:
    return {
        "batch_id": b.batch_id, "program_id": b.program_id, "pay_date": b.pay_date.isoformat(),
        "total": str(from_cents(b.total_cents)), "currency": b.currency, "items": b.item_count,
        "created_at": b.created_at.isoformat(),
    }


def list_batches(session: Session, program_id: str | None) -> list[dict[str, Any]]:
    query = select(BatchRow)
    if program_id:
        query = query.where(BatchRow.program_id == program_id)
    return [batch_summary(b) for b in session.exec(query.order_by(col(BatchRow.pay_date))).all()]


def get_batch(session: Session, batch_id: str) -> BatchRow:
    b = session.get(BatchRow, batch_id)
    if b is None:
        raise NotFound("batch_id", f"no batch {batch_id}")
    return b


def batch_detail(session: Session, batch_id: str) -> dict[str, Any]:
    b = get_batch(session, batch_id)
    items = session.exec(select(PayoutItemRow).where(PayoutItemRow.batch_id == batch_id).order_by(col(PayoutItemRow.id)))
    return {
        **batch_summary(b),
        "payout_items": [
            {"reference_type": i.reference_type, "reference": i.reference, "payee_id": i.payee_id,
             "amount": str(from_cents(i.amount_cents))}
            for i in items.all()
        ],
        "audit": audit_trail(session, batch_id),  # who issued it (the pay-day job or staff), staff re-runs
    }
