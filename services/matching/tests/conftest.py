from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from services.matching.adapters.migrations import MIGRATIONS
from shared.contracts.base import Event
from shared.db import Database
from shared.migrations import migrate

NOW = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)


@dataclass
class FakeUnitOfWork:
    """A real store session with the emitted events collected instead of written to the outbox."""

    session: Session
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event, *, topic: str | None = None) -> Any:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.event_type for e in self.events]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'matching.db'}")
    migrate(database, "matching", MIGRATIONS)
    yield database
    database.dispose()
