"""Events published by the payments service (topic payments.events)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.base import Event, event
from shared.money import Money
from shared.topics import PAYMENTS


@event("StatementPrepared", topic=PAYMENTS, key="statement_id")
class StatementPrepared(Event):
    statement_id: str
    program_id: str
    mentor_id: str
    month: str
    total: Money
    revision: int = 1


@event("ClarificationRequested", topic=PAYMENTS, key="statement_id")
class ClarificationRequested(Event):
    statement_id: str
    program_id: str
    mentor_id: str
    month: str
    entry_ids: list[str]
    question: str
    requested_by: str


@event("PaymentApproved", topic=PAYMENTS, key="statement_id")
class PaymentApproved(Event):
    statement_id: str
    program_id: str
    mentor_id: str
    month: str
    amount: Money
    approved_by: str


class PayoutItem(BaseModel):
    model_config = ConfigDict(frozen=True)
    reference: str  # statement or reimbursement id
    payee_id: str
    amount: Money


@event("PayoutIssued", topic=PAYMENTS, key="batch_id")
class PayoutIssued(Event):
    batch_id: str
    program_id: str
    pay_date: date
    total: Money
    items: list[PayoutItem] = Field(default_factory=list)


@event("ReimbursementApproved", topic=PAYMENTS, key="reimbursement_id")
class ReimbursementApproved(Event):
    reimbursement_id: str
    program_id: str
    partnership_id: str
    payee_id: str
    kind: str  # book | travel
    amount: Money
    remaining_budget: Money


@event("ReimbursementRefused", topic=PAYMENTS, key="reimbursement_id")
class ReimbursementRefused(Event):
    reimbursement_id: str
    program_id: str
    partnership_id: str
    payee_id: str
    kind: str
    amount: Money
    remaining_budget: Money
    reason: str
