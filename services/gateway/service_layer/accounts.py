"""Users and bearer tokens. A token is `mtg_<random>`; only its sha256 is stored, so the secret
is shown once, when it is created, and a stolen store does not yield working tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from services.gateway.adapters.tables import GatewayToken, GatewayUser
from services.gateway.domain.access import PARTICIPANT_ROLES, Principal, Role
from shared.clock import Clock
from shared.errors import Conflict, DomainError, NotFound

TOKEN_PREFIX = "mtg_"


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    user_id: str
    secret: str
    label: str


def principal_of(user: GatewayUser) -> Principal:
    return Principal(
        user_id=user.id, name=user.name, role=Role(user.role),
        program_ids=frozenset(user.programs()), person_id=user.person_id,
    )


def _clean_programs(program_ids: Iterable[str]) -> list[str]:
    programs: list[str] = []
    for p in program_ids:
        p = p.strip()
        if not p or "," in p:
            raise DomainError("program_ids", f"invalid program id {p!r}", "invalid_program_id")
        if p not in programs:
            programs.append(p)
    return programs


def create_user(
    session: Session, clock: Clock, *, name: str, role: Role, program_ids: Iterable[str] = (),
    person_id: str | None = None, email: str | None = None, created_by: str | None = None,
) -> GatewayUser:
    name = name.strip()
    if not name:
        raise DomainError("name", "must not be empty", "required")
    programs = _clean_programs(program_ids)
    if role is not Role.ADMIN and not programs:
        raise DomainError("program_ids", f"a {role.value} belongs to at least one program", "required")
    if role is Role.ADMIN and programs:
        raise DomainError("program_ids", "an admin reaches every program; give none", "not_allowed")
    if role in PARTICIPANT_ROLES:
        if not person_id:
            raise DomainError("person_id", f"a {role.value} user must name their {role.value} id", "required")
        existing = session.exec(
            select(GatewayUser).where(GatewayUser.person_id == person_id, GatewayUser.role == role.value)
        ).first()
        if existing is not None:
            raise Conflict("person_id", f"{role.value} {person_id} already has user {existing.id}", "duplicate")
    elif person_id:
        raise DomainError("person_id", f"a {role.value} is staff, not a participant", "not_allowed")
    user = GatewayUser(
        id=f"usr_{uuid.uuid4().hex[:16]}", name=name, role=role.value, program_ids=",".join(programs),
        person_id=person_id or None, email=email, created_at=clock.now(), created_by=created_by,
    )
    session.add(user)
    session.flush()
    return user


def change_user(
    session: Session, user_id: str, *, name: str | None = None, program_ids: Iterable[str] | None = None,
    email: str | None = None,
) -> GatewayUser:
    """Rename, re-scope (e.g. a coordinator who now also staffs another program) or re-address a user."""
    user = session.get(GatewayUser, user_id)
    if user is None:
        raise NotFound("user_id", f"no user {user_id}")
    if name is not None:
        if not name.strip():
            raise DomainError("name", "must not be empty", "required")
        user.name = name.strip()
    if program_ids is not None:
        programs = _clean_programs(program_ids)
        if user.role == Role.ADMIN.value and programs:
            raise DomainError("program_ids", "an admin reaches every program; give none", "not_allowed")
        if user.role != Role.ADMIN.value and not programs:
            raise DomainError("program_ids", f"a {user.role} belongs to at least one program", "required")
        user.program_ids = ",".join(programs)
    if email is not None:
        user.email = email or None
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, clock: Clock, user_id: str, label: str = "") -> IssuedToken:
    user = session.get(GatewayUser, user_id)
    if user is None:
        raise NotFound("user_id", f"no user {user_id}")
    secret = new_secret()
    token = GatewayToken(
        id=f"tok_{uuid.uuid4().hex[:16]}", user_id=user.id, token_hash=hash_token(secret),
        label=label, created_at=clock.now(),
    )
    session.add(token)
    session.flush()
    return IssuedToken(token.id, user.id, secret, label)


def revoke_token(session: Session, clock: Clock, token_id: str) -> GatewayToken:
    token = session.get(GatewayToken, token_id)
    if token is None:
        raise NotFound("token_id", f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        session.add(token)
    return token


def authenticate(session: Session, secret: str) -> GatewayUser | None:
    """The user a bearer secret belongs to, or None (unknown or revoked)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    row = session.exec(
        select(GatewayUser, GatewayToken)
        .join(GatewayToken, col(GatewayToken.user_id) == col(GatewayUser.id))
        .where(GatewayToken.token_hash == hash_token(secret), col(GatewayToken.revoked_at).is_(None))
    ).first()
    return row[0] if row else None


def find_user(session: Session, *, name: str, role: Role) -> GatewayUser | None:
    """The oldest user of this name and role (for scripts that must not create duplicates)."""
    return session.exec(
        select(GatewayUser).where(GatewayUser.name == name.strip(), GatewayUser.role == role.value)
        .order_by(col(GatewayUser.created_at))
    ).first()


def list_users(session: Session) -> list[GatewayUser]:
    return list(session.exec(select(GatewayUser).order_by(col(GatewayUser.created_at), col(GatewayUser.id))).all())


def tokens_of(session: Session, user_id: str) -> list[GatewayToken]:
    return list(session.exec(
        select(GatewayToken).where(GatewayToken.user_id == user_id).order_by(col(GatewayToken.created_at))
    ).all())
