"""Schema migrations: ordered steps per service, each applied once, in its own transaction.

A store records the versions applied in `schema_migrations`. Starting a service upgrades its
store to the newest version without touching data the steps do not name. Two instances starting
at once are serialised (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, inspect, select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from shared.db import Database

_meta = MetaData()
schema_migrations = Table(
    "schema_migrations",
    _meta,
    Column("service", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def create_tables(*models: type[SQLModel]) -> Callable[[Connection], None]:
    """A step that creates the tables of these models (and their indexes) if absent."""

    def step(conn: Connection) -> None:
        tables = [m.__table__ for m in models]  # type: ignore[attr-defined]
        SQLModel.metadata.create_all(conn, tables=tables)

    return step


def add_columns(model: type[SQLModel], *names: str) -> Callable[[Connection], None]:
    """A step that adds these (nullable) columns of the model's table where they are absent (a
    store made after the column joined the model already has it)."""
    table = model.__table__  # type: ignore[attr-defined]
    for name in names:
        if not table.c[name].nullable or table.c[name].server_default is not None:
            raise ValueError(f"{table.name}.{name}: only nullable columns without a default are added")

    def step(conn: Connection) -> None:
        present = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for name in names:
            if name not in present:
                kind = table.c[name].type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}")

    return step


def migrate(db: Database, service: str, steps: Sequence[Migration]) -> list[int]:
    """Apply the steps not yet applied; return the versions applied now."""
    versions = [s.version for s in steps]
    if versions != sorted(set(versions)):
        raise ValueError(f"{service}: migration versions must be unique and ascending")
    _meta.create_all(db.engine)
    applied_now: list[int] = []
    for step in steps:
        with db.begin() as conn:
            if db.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({zlib.crc32(service.encode())})")
            done = conn.execute(
                select(schema_migrations.c.version).where(
                    schema_migrations.c.service == service,
                    schema_migrations.c.version == step.version,
                )
            ).first()
            if done:
                continue
            step.apply(conn)
            conn.execute(
                schema_migrations.insert().values(
                    service=service,
                    version=step.version,
                    name=step.name,
                    applied_at=datetime.now(UTC),
                )
            )
            applied_now.append(step.version)
    return applied_now


def current_version(db: Database, service: str) -> int:
    _meta.create_all(db.engine)
    with db.connect() as conn:
        rows = conn.execute(
            select(schema_migrations.c.version).where(schema_migrations.c.service == service)
        ).all()
    return max((r[0] for r in rows), default=0)
