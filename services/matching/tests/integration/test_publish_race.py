"""Two publishes at once (two staff, two matching instances) must not both take a mentor's last
place. Proposal P1 offers mentor m1's only place to e1, proposal P2 (made before P1 was published)
offers it to e2. P1's publish holds its transaction open while P2's publish runs: on PostgreSQL's
read committed, without a lock, P2 would not see P1's partnership and would overfill m1."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import select

from services.matching.adapters.migrations import MIGRATIONS
from services.matching.adapters.tables import PartnershipRow
from services.matching.service_layer import commands as cmd
from services.matching.service_layer import handlers as h
from services.matching.tests.conftest import NOW, FakeUnitOfWork
from shared.contracts.program import MatchingPolicy, ProgramPolicy
from shared.db import Database
from shared.errors import Conflict
from shared.migrations import migrate

pytestmark = pytest.mark.integration
STAFF = h.Actor("staff-1", "staff")


def do(db: Database, fn: object, *args: object) -> object:
    with db.session() as s:
        return fn(FakeUnitOfWork(s), *args)  # type: ignore[operator]


def test_two_publishes_at_once_never_overfill_a_mentor(store_url: str) -> None:
    db = Database(store_url)
    try:
        migrate(db, "matching", MIGRATIONS)
        do(db, h.configure_program, cmd.ConfigureProgram(program_id="p1", name="P", policy=ProgramPolicy(
            matching=MatchingPolicy(metamentor_caseload_min=0))), STAFF, NOW)
        for kind, pid, extra in (("mentor", "m1", {"capacity": 1}), ("mentee", "e1", {}), ("mentee", "e2", {})):
            do(db, h.enrol, "p1", kind, cmd.EnrolPerson(person_id=pid, name=pid, email=f"{pid}@x.org", **extra),
               STAFF, NOW)
        first = do(db, h.propose, "p1", cmd.ProposeMatches(mentee_ids=["e1"]), STAFF, NOW)
        second = do(db, h.propose, "p1", cmd.ProposeMatches(mentee_ids=["e2"]), STAFF, NOW)
        p1, p2 = first.proposal_id, second.proposal_id  # type: ignore[attr-defined]

        published = threading.Event()
        errors: list[BaseException] = []

        def slow_publish() -> None:
            try:
                with db.session() as s:
                    h.publish(FakeUnitOfWork(s), p1, cmd.PublishProposal(), STAFF, NOW)
                    published.set()
                    time.sleep(1.5)  # the transaction stays open: P2's publish runs meanwhile
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                published.set()

        t = threading.Thread(target=slow_publish)
        t.start()
        assert published.wait(30)
        with pytest.raises(Conflict) as refused:
            do(db, h.publish, p2, cmd.PublishProposal(), STAFF, NOW)
        t.join(30)
        assert errors == []
        assert refused.value.problems[0].reason.startswith("mentor 'm1' of ")
        assert refused.value.problems[0].reason.endswith("has no place left")
        with db.session() as s:
            active = s.exec(select(PartnershipRow).where(PartnershipRow.status == "active")).all()
        assert [p.mentor_id for p in active] == ["m1"]
    finally:
        db.dispose()
