"""Set-based writes for the consumer's handlers: one statement for many rows, idempotent by key.

`upsert` is INSERT ... ON CONFLICT (key) DO UPDATE of the given columns, `insert_absent` is
INSERT ... ON CONFLICT DO NOTHING; both on SQLite and PostgreSQL, built once per table and
dialect. Rows with the same key in one call keep the last one (as applying them in order would).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

_STATEMENTS: dict[tuple[str, str, tuple[str, ...] | None], Any] = {}


def _last_per_key(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return list({row[key]: row for row in rows}.values())


def _statement(session: Session, table: Table, update: tuple[str, ...] | None) -> Any:
    dialect = session.get_bind().dialect.name
    found = _STATEMENTS.get((dialect, table.name, update))
    if found is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        if update is None:
            found = stmt.on_conflict_do_nothing()
        else:
            key = [c.name for c in table.primary_key.columns]
            found = stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in update})
        _STATEMENTS[(dialect, table.name, update)] = found
    return found


def upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: str,
           update: tuple[str, ...]) -> None:
    """Insert the rows; a row whose key exists gets the `update` columns from the new one."""
    if rows:
        session.execute(_statement(session, table, update), _last_per_key(rows, key))


def insert_absent(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Insert the rows whose key is not there yet; the others change nothing."""
    if rows:
        session.execute(_statement(session, table, None), list({row[key]: row for row in reversed(rows)}.values()))
