"""Schema steps of the matching store (applied once each, in order, at start)."""

from __future__ import annotations

from services.matching.adapters.tables import TABLES
from shared.migrations import Migration, create_tables

MIGRATIONS: list[Migration] = [Migration(1, "matching tables", create_tables(*TABLES))]
