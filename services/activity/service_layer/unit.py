"""What a handler needs to change state: a session and a way to emit events through the outbox.
Both an HTTP transaction (shared.service.Transaction) and a consumer's HandlerContext fit."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from services.activity.adapters.tables import ProgramRow
from shared.contracts.base import Event
from shared.contracts.envelope import Envelope
from shared.contracts.program import ProgramPolicy
from shared.errors import NotFound


class Unit(Protocol):
    @property
    def session(self) -> Session: ...

    def emit(self, event: Event) -> Envelope: ...


@lru_cache(maxsize=256)
def parse_policy(raw: str) -> ProgramPolicy:
    """Policies are parsed once per distinct JSON (handlers look them up per event)."""
    return ProgramPolicy.model_validate_json(raw)


_POLICY = select(ProgramRow.__table__.c.policy).where(  # type: ignore[attr-defined]
    ProgramRow.__table__.c.program_id == bindparam("program_id"))  # type: ignore[attr-defined]


def policy_of(session: Session, program_id: str) -> ProgramPolicy | None:
    raw = session.execute(_POLICY, {"program_id": program_id}).scalar()
    return parse_policy(raw) if raw is not None else None


def require_policy(session: Session, program_id: str, field: str = "program_id") -> ProgramPolicy:
    policy = policy_of(session, program_id)
    if policy is None:
        raise NotFound(field, f"program {program_id!r} is not configured (yet)")
    return policy


def insert_if_absent(session: Session, table: Table, values: dict[str, Any], key: str) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when this statement inserted the row."""
    stmt: Any
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING says whether a row was inserted (rowcount is not reliable through the ORM session).
    return session.execute(stmt.returning(table.c[key])).first() is not None


_INSERT_ABSENT: dict[tuple[str, str, str], Any] = {}


def insert_absent(session: Session, table: Table, rows: list[dict[str, Any]], key: str) -> set[Any]:
    """INSERT ... ON CONFLICT DO NOTHING for many rows in one statement; the keys inserted now."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    stmt = _INSERT_ABSENT.get((dialect, table.name, key))
    if stmt is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table).on_conflict_do_nothing().returning(table.c[key])
        _INSERT_ABSENT[(dialect, table.name, key)] = stmt
    return set(session.execute(stmt, rows).scalars())
