"""Outbox rows are staged and written in one statement at commit; none is lost or kept wrongly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event
from sqlmodel import Session, col, select

from shared.clock import ManualClock
from shared.contracts.envelope import Cause
from shared.db import Database
from shared.messaging import MESSAGING_TABLES, Outbox, OutboxRecord
from shared.migrations import Migration, create_tables, migrate
from tests.support import Ping

pytestmark = pytest.mark.integration


@pytest.fixture
def db(store_url: str) -> Database:
    database = Database(store_url)
    migrate(database, "staging", [Migration(1, "messaging", create_tables(*MESSAGING_TABLES))])
    return database


def rows(db: Database) -> list[OutboxRecord]:
    with db.session() as s:
        return list(s.exec(select(OutboxRecord).order_by(col(OutboxRecord.id))).all())


def test_events_are_written_in_order_at_commit_and_dropped_on_rollback(db: Database) -> None:
    outbox = Outbox("staging", ManualClock(datetime(2026, 11, 2, tzinfo=UTC)))
    with db.session() as s:
        for n in range(5):
            outbox.add(s, Ping(key="k", seq=n), Cause.new())
    with pytest.raises(RuntimeError), db.session() as s:
        outbox.add(s, Ping(key="k", seq=99), Cause.new())
        raise RuntimeError("the change fails: its event must not be published")
    assert [Ping.model_validate_json(r.payload).seq for r in rows(db)] == [0, 1, 2, 3, 4]


def test_an_event_emitted_by_a_later_before_commit_hook_is_not_lost(db: Database) -> None:
    """A service may finish work in its own before_commit hook (payments prepares a batch of
    statements there); the events it emits then must still land in the same transaction."""
    outbox = Outbox("staging", ManualClock(datetime(2026, 11, 2, tzinfo=UTC)))
    with db.session() as s:
        outbox.add(s, Ping(key="k", seq=1), Cause.new())

        def late(session: Session) -> None:
            outbox.add(session, Ping(key="k", seq=2), Cause.new())

        event.listen(s, "before_commit", late)
    assert [Ping.model_validate_json(r.payload).seq for r in rows(db)] == [1, 2]
    with db.session() as s:  # the next transaction on a fresh session stages again
        outbox.add(s, Ping(key="k", seq=3), Cause.new())
    assert len(rows(db)) == 3
