"""Test helpers for payments: a service on a real store (no broker needed), events it emitted,
and builders for the events other services send."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from services.payments.entrypoints.app import PaymentsSettings, build_service, emitter
from services.payments.service_layer.statements import Emit
from shared.clock import ManualClock
from shared.contracts.activity import ClosedEntry, MonthClosed
from shared.contracts.matching import MenteeMatched, MentorEnrolled, ProgramConfigured
from shared.contracts.program import PayPolicy, ProgramPolicy, TimeEntryKind
from shared.messaging import OutboxRecord
from shared.service import Service

T = TypeVar("T")
PROGRAM = "mct"


def program(policy: PayPolicy | None = None, program_id: str = PROGRAM) -> ProgramConfigured:
    return ProgramConfigured(program_id=program_id, name="Modern Classrooms", policy=ProgramPolicy(pay=policy or PayPolicy()))


def mentor(person_id: str, program_id: str = PROGRAM) -> MentorEnrolled:
    return MentorEnrolled(person_id=person_id, program_id=program_id, name=f"Mentor {person_id}",
                          email=f"{person_id}@example.org")


def matched(partnership_id: str, mentor_id: str, program_id: str = PROGRAM) -> MenteeMatched:
    return MenteeMatched(partnership_id=partnership_id, program_id=program_id, mentor_id=mentor_id,
                         mentee_id=f"mentee-of-{mentor_id}", started_at=datetime(2026, 9, 1, tzinfo=UTC))


def closed(mentor_id: str, month: str, *entries: tuple[str, str, int] | tuple[str, str, int, int],
           program_id: str = PROGRAM) -> MonthClosed:
    """entries: (entry_id, kind, minutes[, day]); day defaults to the 3rd of `month`."""
    year, mon = (int(p) for p in month.split("-"))
    out = []
    for e in entries:
        day = e[3] if len(e) == 4 else 3
        out.append(ClosedEntry(entry_id=e[0], kind=TimeEntryKind(e[1]), work_date=date(year, mon, day), minutes=e[2]))
    return MonthClosed(program_id=program_id, mentor_id=mentor_id, month=month, entries=out)


class Harness:
    """The payments service on a real store, driven through its service layer in transactions."""

    def __init__(self, store_url: str, now: datetime, **settings: Any) -> None:
        self.clock = ManualClock(now)
        self.service: Service = build_service(
            PaymentsSettings(database_url=store_url, kafka_bootstrap_servers="127.0.0.1:1", **settings), self.clock
        )
        self.service.migrate()

    def tx(self, fn: Callable[[Session, Emit], T]) -> T:
        with self.service.db.session() as session:
            return fn(session, emitter(self.service, session))

    def read(self, fn: Callable[[Session], T]) -> T:
        with self.service.db.session() as session:
            return fn(session)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Payloads the service emitted (its outbox), oldest first."""
        with self.service.db.session() as s:
            query = select(OutboxRecord).order_by(col(OutboxRecord.id))
            if event_type:
                query = query.where(OutboxRecord.event_type == event_type)
            return [{"event_type": r.event_type, **json.loads(r.payload)} for r in s.exec(query).all()]

    def close(self) -> None:
        self.service.db.dispose()
