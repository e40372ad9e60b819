"""The messaging tables every service store has: outbox, inbox and the relay's lease."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel


class OutboxRecord(SQLModel, table=True):
    """An event waiting to be (or already) published; written in the business transaction."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, unique=True)
    topic: str = Field(max_length=200)
    key: str = Field(max_length=200)
    event_type: str = Field(max_length=100)
    event_version: int
    headers: str = Field(sa_column=Column(Text, nullable=False))  # JSON [[name, value], ...]
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    published_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class InboxRecord(SQLModel, table=True):
    """An event a consumer has applied; written in the same transaction as the effect."""

    __tablename__ = "inbox"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=36)
    event_type: str = Field(max_length=100)
    processed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RelayLease(SQLModel, table=True):
    """Which relay instance may publish the outbox now, and until when (epoch ms)."""

    __tablename__ = "outbox_lease"

    name: str = Field(primary_key=True, max_length=50)
    owner: str = Field(max_length=100)
    expires_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


MESSAGING_TABLES: tuple[type[SQLModel], ...] = (OutboxRecord, InboxRecord, RelayLease)
