"""Schema steps of the payments store, applied in order at start (shared.migrations)."""

from __future__ import annotations

from services.payments.adapters.tables import PAYMENTS_TABLES
from shared.migrations import Migration, create_tables

MIGRATIONS: list[Migration] = [
    Migration(1, "statements, payouts, reimbursements, audit", create_tables(*PAYMENTS_TABLES)),
]
