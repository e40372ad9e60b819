"""Schema steps of the notify store, applied in order at start (shared.migrations)."""

from __future__ import annotations

from services.notify.adapters.tables import NOTIFY_TABLES
from shared.migrations import Migration, create_tables

MIGRATIONS: list[Migration] = [
    Migration(1, "directory, partnerships, preferences, message log, newsletters, announcements",
              create_tables(*NOTIFY_TABLES)),
]
