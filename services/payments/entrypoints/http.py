"""The payments HTTP API, called by the gateway only (which authenticates and passes the actor
in X-Actor-Id). Every refusal names the field and the reason."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field, field_validator

from services.payments.domain.reimbursements import ReimbursementKind
from services.payments.domain.review import StatementStatus
from services.payments.service_layer import payout, reimbursements, statements, views
from shared.contracts.envelope import Cause
from shared.errors import DomainError
from shared.service import Service, Transaction, request_cause

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
# Past this an offset overflows SQLite's 64-bit INTEGER (a 500 instead of an empty page).
MAX_OFFSET = 2**31 - 1


async def actor(x_actor_id: str | None = Header(default=None)) -> str:
    if not x_actor_id:
        raise DomainError("X-Actor-Id", "required: the gateway names who acts", "missing_actor")
    return x_actor_id


class ApprovalIn(BaseModel):
    # The revision the reviewer looked at: approving refuses if the statement changed since.
    revision: int | None = Field(default=None, ge=1)


class BulkApprovalIn(BaseModel):
    statement_ids: list[str] = Field(min_length=1, max_length=10_000)


class ClarificationIn(BaseModel):
    entry_ids: list[str] = Field(min_length=1)
    question: str = Field(min_length=1, max_length=2000)


class PayoutRunIn(BaseModel):
    pay_date: date | None = Field(default=None, description="default: today in the program's time zone; "
                                  "never in the future")


class ReimbursementIn(BaseModel):
    reimbursement_id: str | None = Field(default=None, min_length=1, max_length=100)
    partnership_id: str = Field(min_length=1, max_length=100)
    kind: ReimbursementKind
    amount: Decimal = Field(description='a decimal string such as "24.99"')
    spent_on: date
    description: str = Field(default="", max_length=2000)

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError('money must be a decimal string such as "24.99", not a JSON number with a fraction')
        return value


def router(service: Service) -> APIRouter:
    api = APIRouter(tags=["payments"])

    @api.get("/statements")
    def list_statements(
        status: StatementStatus | None = None, program_id: str | None = None, mentor_id: str | None = None,
        month: str | None = Query(default=None, pattern=MONTH), limit: int = Query(default=100, ge=1, le=1000),
        offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    ) -> list[dict[str, Any]]:
        with service.db.session() as s:
            return views.list_statements(s, status=status.value if status else None, program_id=program_id,
                                         mentor_id=mentor_id, month=month, limit=limit, offset=offset)

    @api.get("/statements/{statement_id}")
    def get_statement(statement_id: str) -> dict[str, Any]:
        with service.db.session() as s:
            return views.statement_detail(s, statement_id)

    @api.get("/statements/{statement_id}/audit")
    def statement_audit(statement_id: str) -> list[dict[str, Any]]:
        with service.db.session() as s:
            statements.get_statement(s, statement_id)
            return views.audit_trail(s, statement_id)

    @api.post("/statements/{statement_id}/approve")
    def approve(statement_id: str, body: ApprovalIn | None = None, who: str = Depends(actor),
                cause: Cause = Depends(request_cause)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            row = statements.approve(tx.session, tx.emit, service.clock.now(), statement_id, who,
                                     body.revision if body else None)
            return views.statement_summary(row)

    @api.post("/statements/approvals")
    def approve_many(body: BulkApprovalIn, who: str = Depends(actor),
                     cause: Cause = Depends(request_cause)) -> dict[str, list[Any]]:
        """Approve many statements; the answer lists approved, unchanged (already approved) and
        refused ones with the reason."""
        with service.transaction(cause) as tx:
            return statements.approve_many(tx.session, tx.emit, service.clock.now(), body.statement_ids, who)

    @api.post("/statements/{statement_id}/clarifications", status_code=201)
    def ask(statement_id: str, body: ClarificationIn, who: str = Depends(actor),
            cause: Cause = Depends(request_cause)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            statements.ask_clarification(tx.session, tx.emit, service.clock.now(), statement_id, who,
                                         body.entry_ids, body.question)
        with service.db.session() as s:
            return views.statement_detail(s, statement_id)

    @api.get("/payouts/pending")
    def pending(program_id: str | None = None) -> list[dict[str, Any]]:
        with service.db.session() as s:
            return views.pending_payouts(s, program_id)

    @api.post("/programs/{program_id}/payouts")
    def pay_now(program_id: str, response: Response, body: PayoutRunIn | None = None, who: str = Depends(actor),
                cause: Cause = Depends(request_cause)) -> dict[str, Any]:
        """Run the program's payout now, as the pay-day job does: one batch per program and pay day
        (201 when this call issued it; a re-run answers 200 with the same batch); approved, unpaid
        statements of earlier months and approved reimbursements go in it; the rest stays pending."""
        run = payout.pay_now(service.db, lambda session: Transaction(session, service.outbox, cause).emit,
                             service.clock.now(), program_id, body.pay_date if body else None, who)
        service.relay.wake()
        response.status_code = 201 if run.created else 200
        with service.db.session() as s:
            batch = views.batch_detail(s, run.batch_id) if run.batch_id else None
        # batch None: nothing approved and unpaid was due, no batch was issued
        return {"program_id": program_id, "pay_date": run.pay_date.isoformat(), "created": run.created,
                "batch": batch}

    @api.get("/batches")
    def batches(program_id: str | None = None) -> list[dict[str, Any]]:
        with service.db.session() as s:
            return views.list_batches(s, program_id)

    @api.get("/batches/{batch_id}")
    def batch(batch_id: str) -> dict[str, Any]:
        with service.db.session() as s:
            return views.batch_detail(s, batch_id)

    @api.get("/batches/{batch_id}/csv")
    def batch_csv(batch_id: str) -> Response:
        with service.db.session() as s:
            b = views.get_batch(s, batch_id)
        return Response(
            b.csv, media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="payout-{b.program_id}-{b.pay_date}.csv"'},
        )

    @api.post("/reimbursements", status_code=201)
    def request_reimbursement(body: ReimbursementIn, who: str = Depends(actor),
                              cause: Cause = Depends(request_cause)) -> dict[str, Any]:
        with service.transaction(cause) as tx:
            row, refused = reimbursements.request(
                tx.session, tx.emit, service.clock.now(), partnership_id=body.partnership_id, kind=body.kind,
                amount=body.amount, spent_on=body.spent_on, description=body.description, actor=who,
                reimbursement_id=body.reimbursement_id,
            )
            view = views.reimbursement_view(row)
        if refused is not None:  # the refusal is recorded and announced; the caller gets a 409
            raise refused
        return view

    @api.get("/reimbursements")
    def list_reimbursements(partnership_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        with service.db.session() as s:
            return views.list_reimbursements(s, partnership_id, status)

    @api.get("/partnerships/{partnership_id}/budgets")
    def partnership_budgets(partnership_id: str, on: date) -> dict[str, Any]:
        with service.db.session() as s:
            return reimbursements.budgets(s, partnership_id, on)

    return api
