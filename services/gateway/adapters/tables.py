"""The gateway's only store: users, their bearer tokens (hashed) and idempotency records.

accounts_version() changes whenever a user or token row written by this process is committed
(insert, update, delete through the ORM), so what was read about them before can be known stale.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, LargeBinary, Text, UniqueConstraint, event
from sqlalchemy.orm import Session, object_session
from sqlmodel import Field, SQLModel


class GatewayUser(SQLModel, table=True):
    __tablename__ = "gateway_users"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20, index=True)
    # Comma-separated program ids this user belongs to (admins: empty, they reach every program).
    program_ids: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The matching service's mentor / mentee / metamentor id this user is.
    person_id: str | None = Field(default=None, max_length=100, index=True)
    email: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str | None = Field(default=None, max_length=40)

    def programs(self) -> list[str]:
        return [p for p in self.program_ids.split(",") if p]


class GatewayToken(SQLModel, table=True):
    __tablename__ = "gateway_tokens"

    id: str = Field(primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="gateway_users.id", index=True, max_length=40)
    # sha256 (hex) of the secret; the secret itself is shown once and never stored.
    token_hash: str = Field(max_length=64, unique=True, index=True)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class GatewayIdempotency(SQLModel, table=True):
    """The first answer to a mutating request sent with an Idempotency-Key, per user."""

    __tablename__ = "gateway_idempotency"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_gateway_idempotency_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=40)
    key: str = Field(max_length=200)
    method: str = Field(max_length=10)
    path: str = Field(sa_column=Column(Text, nullable=False))
    body_sha256: str = Field(max_length=64)
    # None while the first request is still being answered.
    status: int | None = None
    content_type: str | None = Field(default=None, max_length=200)
    response_body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


# -- changes to users and tokens -------------------------------------------------------------------
_versions = itertools.count(1)
_version = [0]
_CHANGED = "gateway.accounts_changed"


def accounts_version() -> int:
    return _version[0]


def _bump() -> None:
    _version[0] = next(_versions)


def _row_written(_mapper: Any, _connection: Any, target: Any) -> None:
    # Bumped at the flush and again at the commit: a read that began between the two saw the old
    # row and must not be trusted after the commit.
    session = object_session(target)
    if session is not None:
        session.info[_CHANGED] = True
    _bump()


def _committed(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        _bump()


for _table in (GatewayUser, GatewayToken):
    for _when in ("after_insert", "after_update", "after_delete"):
        event.listen(_table, _when, _row_written)
event.listen(Session, "after_commit", _committed)
