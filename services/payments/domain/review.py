"""A statement's review: who may do what in which state."""

from __future__ import annotations

from enum import StrEnum

from shared.errors import Conflict


class StatementStatus(StrEnum):
    IN_REVIEW = "in_review"  # waiting for staff
    CLARIFICATION = "clarification"  # staff asked the mentor about specific entries
    APPROVED = "approved"  # waits for the next pay day
    ISSUED = "issued"  # in a payout batch: paid, never again

    @property
    def open(self) -> bool:
        """Still changes when entries are amended (not yet paid)."""
        return self != StatementStatus.ISSUED


def ensure_can_approve(status: StatementStatus) -> None:
    if status == StatementStatus.ISSUED:
        raise Conflict("status", "the statement is already paid", "already_issued")
    if status == StatementStatus.CLARIFICATION:
        raise Conflict(
            "status", "a clarification is open: wait for the mentor's answer (amend or confirm)",
            "clarification_open",
        )


def ensure_can_ask(status: StatementStatus) -> None:
    if status == StatementStatus.ISSUED:
        raise Conflict("status", "the statement is already paid", "already_issued")
