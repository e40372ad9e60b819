"""The gateway's own store on SQLite and PostgreSQL: users and hashed tokens, revocation, and an
Idempotency-Key claimed by many requests at once is won by exactly one of them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from services.gateway.adapters.migrations import MIGRATIONS
from services.gateway.domain.access import Role
from services.gateway.errors import Unprocessable
from services.gateway.service_layer import accounts, idempotency
from shared.clock import ManualClock
from shared.db import Database
from shared.errors import Conflict
from shared.migrations import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def db(store_url: str):
    database = Database(store_url)
    migrate(database, "gateway", MIGRATIONS)
    assert migrate(database, "gateway", MIGRATIONS) == []  # a second start changes nothing
    yield database
    database.dispose()


def test_tokens_authenticate_until_revoked(db: Database) -> None:
    clock = ManualClock(datetime(2026, 9, 1, tzinfo=UTC))
    with db.session() as s:
        user = accounts.create_user(s, clock, name="Cy", role=Role.COORDINATOR, program_ids=["p1", "p2"])
        token = accounts.issue_token(s, clock, user.id, "laptop")
    with db.session() as s:
        found = accounts.authenticate(s, token.secret)
        assert found is not None and found.programs() == ["p1", "p2"]
        assert accounts.authenticate(s, token.secret + "x") is None
        accounts.revoke_token(s, clock, token.token_id)
    with db.session() as s:
        assert accounts.authenticate(s, token.secret) is None


def test_one_key_claimed_at_once_by_many_requests_runs_once(db: Database) -> None:
    clock = ManualClock(datetime(2026, 9, 1, tzinfo=UTC))
    ttl = timedelta(hours=24)

    def attempt(_: int) -> str:
        try:
            out = idempotency.claim(db, clock, user_id="u1", key="k", method="POST", path="/api/v1/meetings",
                                    body=b'{"a":1}', ttl=ttl)
        except Conflict:
            return "in_progress"
        return "claimed" if isinstance(out, idempotency.Claim) else "replayed"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count("claimed") == 1
    assert set(outcomes) <= {"claimed", "in_progress"}
    with db.session() as s:
        from sqlmodel import select

        from services.gateway.adapters.tables import GatewayIdempotency

        [record] = s.exec(select(GatewayIdempotency)).all()
    idempotency.complete(db, record.id or 0, 201, "application/json", b'{"id":"m1"}')
    replay = idempotency.claim(db, clock, user_id="u1", key="k", method="POST", path="/api/v1/meetings",
                               body=b'{"a":1}', ttl=ttl)
    assert replay == idempotency.StoredAnswer(201, "application/json", b'{"id":"m1"}')
    with pytest.raises(Unprocessable):
        idempotency.claim(db, clock, user_id="u1", key="k", method="POST", path="/api/v1/meetings",
                          body=b'{"a":2}', ttl=ttl)
    # after the time to live the key is forgotten and may be used again
    clock.advance(ttl + timedelta(seconds=1))
    fresh = idempotency.claim(db, clock, user_id="u1", key="k", method="POST", path="/api/v1/meetings",
                              body=b'{"a":2}', ttl=ttl)
    assert isinstance(fresh, idempotency.Claim)
