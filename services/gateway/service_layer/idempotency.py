"""Idempotency-Key: a mutating request retried with the same key (by the same user) has one
effect and gets the first answer back.

The first request claims the key (a row with no status yet) before it is forwarded, so a retry
that arrives while it is still running is told so (409) instead of running twice. A 5xx answer
(service down, timeout) releases the key, so the client's retry can go through.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from services.gateway.adapters.tables import GatewayIdempotency
from services.gateway.errors import Unprocessable
from shared.clock import Clock
from shared.db import Database
from shared.errors import Conflict

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class Claim:
    record_id: int


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _same_request(rec: GatewayIdempotency, method: str, path: str, digest: str) -> bool:
    return rec.method == method and rec.path == path and rec.body_sha256 == digest


def claim(
    db: Database, clock: Clock, *, user_id: str, key: str, method: str, path: str, body: bytes, ttl: timedelta
) -> Claim | StoredAnswer:
    """Claim the key for this request, or return the answer stored for it."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Unprocessable("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters",
                            "invalid_idempotency_key")
    digest = body_hash(body)
    now = clock.now()
    try:
        with db.session() as session:
            session.exec(delete(GatewayIdempotency).where(col(GatewayIdempotency.created_at) < now - ttl))
            rec = _find(session, user_id, key)
            if rec is None:
                rec = GatewayIdempotency(
                    user_id=user_id, key=key, method=method, path=path, body_sha256=digest, created_at=now
                )
                session.add(rec)
                session.flush()
                assert rec.id is not None
                return Claim(rec.id)
    except IntegrityError:
        # Another request with this key claimed it between our read and our insert.
        with db.session() as session:
            rec = _find(session, user_id, key)
        if rec is None:  # it failed and released the key meanwhile: the client may retry
            raise Conflict("Idempotency-Key", "a request with this key is in progress; retry", "in_progress") from None
    if not _same_request(rec, method, path, digest):
        raise Unprocessable(
            "Idempotency-Key",
            f"this key was used for a different request ({rec.method} {rec.path}); use a new key",
            "idempotency_key_reused",
        )
    if rec.status is None:
        raise Conflict("Idempotency-Key", "a request with this key is in progress; retry", "in_progress")
    return StoredAnswer(rec.status, rec.content_type, rec.response_body or b"")


def _find(session: Session, user_id: str, key: str) -> GatewayIdempotency | None:
    return session.exec(
        select(GatewayIdempotency).where(GatewayIdempotency.user_id == user_id, GatewayIdempotency.key == key)
    ).first()


def complete(db: Database, record_id: int, status: int, content_type: str | None, body: bytes) -> None:
    with db.session() as session:
        rec = session.get(GatewayIdempotency, record_id)
        if rec is not None:
            rec.status, rec.content_type, rec.response_body = status, content_type, body
            session.add(rec)


def release(db: Database, record_id: int) -> None:
    with db.session() as session:
        rec = session.get(GatewayIdempotency, record_id)
        if rec is not None:
            session.delete(rec)
