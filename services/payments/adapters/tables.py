"""The payments store. Money is kept as integer cents (never a float column: SQLite has no
exact decimal type); rates and paid minutes, which may have more places, as decimal strings.

The constraints that make pay safe live here, in the database:
- one statement per program, mentor and month (uq_payments_statement_month);
- a statement or reimbursement is in at most one payout item, ever (uq_payments_payout_reference);
- one payout batch per program and pay day (uq_payments_batch_day).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class ProgramRow(SQLModel, table=True):
    __tablename__ = "payments_program"
    program_id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=200)
    revision: int
    policy: str = Field(sa_column=Column(Text, nullable=False))  # ProgramPolicy as JSON


class PayeeRow(SQLModel, table=True):
    """A person payments pays: mentors (from MentorEnrolled) and workshop leaders."""

    __tablename__ = "payments_payee"
    person_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(max_length=100)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)


class PartnershipRow(SQLModel, table=True):
    __tablename__ = "payments_partnership"
    partnership_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    mentee_id: str = Field(max_length=100)


class EntryRow(SQLModel, table=True):
    """A time entry as payments knows it now (MonthClosed, then TimeEntryAmended)."""

    __tablename__ = "payments_entry"
    __table_args__ = (Index("ix_payments_entry_mentor_month", "program_id", "mentor_id", "work_month"),)
    entry_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    work_month: str = Field(max_length=7)
    kind: str = Field(max_length=40)
    work_date: date
    minutes: int
    voided: bool = False


class StatementRow(SQLModel, table=True):
    __tablename__ = "payments_statement"
    __table_args__ = (
        UniqueConstraint("program_id", "mentor_id", "month", name="uq_payments_statement_month"),
        Index("ix_payments_statement_status", "status", "program_id"),
        Index("ix_payments_statement_mentor", "program_id", "mentor_id"),
    )
    statement_id: str = Field(primary_key=True, max_length=36)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    month: str = Field(max_length=7)
    status: str = Field(max_length=20)
    revision: int = 1
    total_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    # Work months this statement settles: its own and earlier ones with late/amended entries.
    scope: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of "YYYY-MM"
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    approved_by: str | None = Field(default=None, max_length=100)
    approved_at: datetime | None = Field(default=None, sa_column=_ts(True))
    batch_id: str | None = Field(default=None, max_length=36)


class StatementLineRow(SQLModel, table=True):
    __tablename__ = "payments_statement_line"
    __table_args__ = (Index("ix_payments_line_statement", "statement_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    statement_id: str = Field(max_length=36)
    seq: int
    line_type: str = Field(max_length=20)
    work_month: str = Field(max_length=7)
    entry_id: str | None = Field(default=None, max_length=100)
    kind: str | None = Field(default=None, max_length=40)
    work_date: date | None = None
    minutes: int = 0
    paid_minutes: str = "0"
    rate: str = "0"
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False))


class PendingAdjustmentRow(SQLModel, table=True):
    """A paid month whose entries changed, waiting for the mentor's next statement."""

    __tablename__ = "payments_pending_adjustment"
    program_id: str = Field(primary_key=True, max_length=100)
    mentor_id: str = Field(primary_key=True, max_length=100)
    work_month: str = Field(primary_key=True, max_length=7)
    created_at: datetime = Field(sa_column=_ts())


class ClarificationRow(SQLModel, table=True):
    __tablename__ = "payments_clarification"
    id: int | None = Field(default=None, primary_key=True)
    statement_id: str = Field(max_length=36, index=True)
    entry_ids: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    question: str = Field(sa_column=Column(Text, nullable=False))
    requested_by: str = Field(max_length=100)
    requested_at: datetime = Field(sa_column=_ts())
    answered_at: datetime | None = Field(default=None, sa_column=_ts(True))


class ReimbursementRow(SQLModel, table=True):
    __tablename__ = "payments_reimbursement"
    __table_args__ = (
        Index("ix_payments_reimbursement_budget", "partnership_id", "kind", "school_year", "status"),
    )
    reimbursement_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(max_length=100)
    partnership_id: str = Field(max_length=100)
    payee_id: str = Field(max_length=100)
    kind: str = Field(max_length=20)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    school_year: str = Field(max_length=20)
    spent_on: date
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20)  # approved | refused
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    requested_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=_ts())
    batch_id: str | None = Field(default=None, max_length=36)


class BatchRow(SQLModel, table=True):
    __tablename__ = "payments_batch"
    __table_args__ = (UniqueConstraint("program_id", "pay_date", name="uq_payments_batch_day"),)
    batch_id: str = Field(primary_key=True, max_length=36)
    program_id: str = Field(max_length=100)
    pay_date: date
    total_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    item_count: int
    csv: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_ts())


class PayoutItemRow(SQLModel, table=True):
    """One paid statement or reimbursement. The unique reference is what makes a second payment
    impossible: a re-run, a redelivery or a second instance fails to insert it."""

    __tablename__ = "payments_payout_item"
    __table_args__ = (
        UniqueConstraint("reference_type", "reference", name="uq_payments_payout_reference"),
        Index("ix_payments_payout_batch", "batch_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(max_length=36)
    reference_type: str = Field(max_length=20)  # statement | reimbursement
    reference: str = Field(max_length=100)
    payee_id: str = Field(max_length=100)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditRow(SQLModel, table=True):
    """Who did what to a statement, reimbursement or batch, and when."""

    __tablename__ = "payments_audit"
    __table_args__ = (Index("ix_payments_audit_subject", "subject_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    subject_type: str = Field(max_length=20)
    subject_id: str = Field(max_length=100)
    action: str = Field(max_length=40)
    actor: str = Field(max_length=100)
    at: datetime = Field(sa_column=_ts())
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


PAYMENTS_TABLES: tuple[type[SQLModel], ...] = (
    ProgramRow, PayeeRow, PartnershipRow, EntryRow, StatementRow, StatementLineRow,
    PendingAdjustmentRow, ClarificationRow, ReimbursementRow, BatchRow, PayoutItemRow, AuditRow,
)
