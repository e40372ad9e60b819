"""The message log as a mail outbox: record pending emails, claim them for sending, mark them.

Exactly one row per (recipient, cause, kind): rows are inserted with ON CONFLICT DO NOTHING in
the transaction that handles the cause, so a redelivered event, a job run by two instances or a
repeated request adds nothing. Senders claim rows with one conditional UPDATE (status 'pending'
-> 'sending', stamped with the claim's owner and a deadline): two senders never hold one row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from services.notify.adapters.tables import MessageRow
from services.notify.domain.messages import MessageIntent
from shared.db import Database


def epoch_ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def enqueue(session: Session, intents: Iterable[MessageIntent], cause_id: str, now: datetime) -> int:
    """Record each intent as a pending message unless it exists; return how many are new."""
    rows: list[dict[str, Any]] = [
        {
            "message_id": str(uuid.uuid4()),
            "program_id": i.program_id,
            "recipient_id": i.recipient_id,
            "kind": str(i.kind),
            "cause_id": cause_id,
            "facts": json.dumps(i.facts, sort_keys=True, default=str),
            "status": "pending",
            "attempts": 0,
            "due_at_ms": epoch_ms(now),
            "claimed_until_ms": 0,
            "recipient_email": "",
            "subject": "",
            "created_at": now,
            "resends": 0,
        }
        for i in intents
    ]
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = MessageRow.__table__  # type: ignore[attr-defined]
    # One cached statement executed for many rows (SQLAlchemy batches it into multi-row INSERTs);
    # RETURNING tells which rows were new, whatever the driver reports as rowcount.
    stmt = insert(table).on_conflict_do_nothing().returning(table.c.id)
    return len(session.execute(stmt, rows).all())


def claim(db: Database, now: datetime, *, hold_ms: int, limit: int) -> tuple[str, list[MessageRow]]:
    """Take up to `limit` due messages for one sender; return the claim's owner id and the rows.

    Rows whose previous claim expired (their sender died between claiming and marking) are taken
    back first: that is the one case where an email may go out twice.
    """
    owner = uuid.uuid4().hex
    now_ms = epoch_ms(now)
    lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""
    with db.session() as session:
        session.execute(
            text(
                "UPDATE notify_message SET status = 'pending', claimed_by = NULL "
                "WHERE status = 'sending' AND claimed_until_ms < :now"
            ),
            {"now": now_ms},
        )
        session.execute(
            text(
                "UPDATE notify_message SET status = 'sending', claimed_by = :owner, claimed_until_ms = :until "
                "WHERE id IN (SELECT id FROM notify_message WHERE status = 'pending' AND due_at_ms <= :now "
                f"ORDER BY id LIMIT :limit{lock}) AND status = 'pending'"
            ),
            {"owner": owner, "until": now_ms + hold_ms, "now": now_ms, "limit": limit},
        )
        rows = session.exec(
            select(MessageRow)
            .where(MessageRow.claimed_by == owner, MessageRow.status == "sending")
            .order_by(col(MessageRow.id))
        ).all()
        return owner, list(rows)


def still_claimed(session: Session, owner: str) -> set[int]:
    """Ids of rows this claim still holds (locks them until the transaction ends on PostgreSQL)."""
    stmt = select(MessageRow.id).where(MessageRow.claimed_by == owner, MessageRow.status == "sending")
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {i for i in session.exec(stmt).all() if i is not None}


def update_claimed(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-row changes (each dict has `b_id` plus the columns to set), one executemany per
    shape of change."""
    table = MessageRow.__table__  # type: ignore[attr-defined]
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        shapes.setdefault(tuple(sorted(k for k in change if k != "b_id")), []).append(change)
    for columns, group in shapes.items():
        stmt = (
            table.update()
            .where(table.c.id == bindparam("b_id"))
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        params = [{"b_id": c["b_id"], **{f"v_{k}": c[k] for k in columns}} for c in group]
        session.connection().execute(stmt, params)
