"""Users and tokens: the gateway's own resources (admins manage everyone; a coordinator manages the
participants of their own programs; everyone can see themselves and manage their own tokens)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.gateway.adapters.tables import GatewayToken, GatewayUser
from services.gateway.domain.access import PARTICIPANT_ROLES, Principal, Role, can_manage_user
from services.gateway.entrypoints import lookups
from services.gateway.entrypoints.deps import API_PREFIX, Caller, caller, mutation
from services.gateway.service_layer import accounts
from shared.errors import DomainError, Forbidden, NotFound

router = APIRouter(prefix=API_PREFIX, tags=["users"])


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC. The document promises RFC 3339.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]


class UserIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Dana Coordinator", "role": "coordinator", "program_ids": ["prog-mentormt"]},
                {"name": "Maria Lopez", "role": "mentor", "program_ids": ["prog-mentormt"],
                 "person_id": "mentor-7f3a", "email": "maria@example.org"},
            ]
        }
    )
    name: str = Field(min_length=1, max_length=200)
    role: Role
    program_ids: list[str] = Field(default_factory=list, max_length=100)
    person_id: str | None = Field(default=None, max_length=100,
                                  description="The matching service's mentor/mentee/metamentor id")
    email: str | None = Field(default=None, max_length=320)


class UserOut(BaseModel):
    id: str
    name: str
    role: Role
    program_ids: list[str]
    person_id: str | None
    email: str | None
    created_at: UtcDateTime


class TokenIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"label": "laptop"}]})
    label: str = Field(default="", max_length=200)


class TokenOut(BaseModel):
    id: str
    user_id: str
    label: str
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None


class IssuedTokenOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "tok_1a2b3c4d5e6f7a8b", "user_id": "usr_0f1e2d3c4b5a6978", "label": "laptop",
         "token": "mtg_k3Xr...", "note": "shown once: store it now"}]})
    id: str
    user_id: str
    label: str
    token: str = Field(description="The bearer secret. Shown once; only its hash is kept.")
    note: str = "shown once: store it now"


def _user_out(user: GatewayUser) -> UserOut:
    return UserOut(id=user.id, name=user.name, role=Role(user.role), program_ids=user.programs(),
                   person_id=user.person_id, email=user.email, created_at=user.created_at)


def _token_out(t: GatewayToken) -> TokenOut:
    return TokenOut(id=t.id, user_id=t.user_id, label=t.label, created_at=t.created_at, revoked_at=t.revoked_at)


def _may_see(p: Principal, user: GatewayUser) -> bool:
    return p.user_id == user.id or can_manage_user(p, Role(user.role), user.programs())


class MeOut(BaseModel):
    user_id: str
    name: str
    role: Role
    program_ids: list[str]
    person_id: str | None


@router.get("/me", response_model=MeOut, summary="Who this token belongs to")
async def me(c: Caller = Depends(caller)) -> MeOut:
    p = c.principal
    return MeOut(user_id=p.user_id, name=p.name, role=p.role, program_ids=sorted(p.program_ids), person_id=p.person_id)


@router.post("/users", response_model=UserOut, status_code=201, dependencies=mutation,
             summary="Create a user (admin; a coordinator for participants of their programs)")
async def create_user(body: UserIn, c: Caller = Depends(caller)) -> UserOut:
    if not can_manage_user(c.principal, body.role, body.program_ids):
        raise Forbidden("role", f"you may not create a {body.role.value} in programs {body.program_ids}")
    if body.role in PARTICIPANT_ROLES and body.person_id:
        # The user must be the person matching enrolled, as that kind, in one of the user's programs.
        try:
            program_id = await lookups.person_program(c, body.person_id, (f"{body.role.value}s",))
        except NotFound:
            program_id = None
        if program_id not in body.program_ids:
            raise DomainError("person_id", f"no {body.role.value} {body.person_id} is enrolled in "
                              f"{', '.join(body.program_ids) or 'these programs'}", "unknown_person")
    gw = c.gateway

    def run() -> GatewayUser:
        with gw.db.session() as s:
            return accounts.create_user(
                s, gw.clock, name=body.name, role=body.role, program_ids=body.program_ids,
                person_id=body.person_id, email=body.email, created_by=c.principal.user_id,
            )

    return _user_out(await asyncio.to_thread(run))


@router.get("/users", response_model=list[UserOut], summary="Users you manage (admin: all)")
async def list_users(c: Caller = Depends(caller)) -> list[UserOut]:
    gw = c.gateway

    def run() -> list[GatewayUser]:
        with gw.db.session() as s:
            return accounts.list_users(s)

    return [_user_out(u) for u in await asyncio.to_thread(run) if _may_see(c.principal, u)]


async def _user_in_reach(c: Caller, user_id: str) -> GatewayUser:
    gw = c.gateway

    def run() -> GatewayUser | None:
        with gw.db.session() as s:
            return s.get(GatewayUser, user_id)

    user = await asyncio.to_thread(run)
    if user is None or not _may_see(c.principal, user):
        # Users out of reach are indistinguishable from unknown ones.
        raise NotFound("user_id", f"no user {user_id}")
    return user


UserId = Path(description="A gateway user id", examples=["usr_0f1e2d3c4b5a6978"], max_length=40)


@router.get("/users/{user_id}", response_model=UserOut, summary="A user (admin; their coordinator; themselves)")
async def get_user(user_id: str = UserId, c: Caller = Depends(caller)) -> UserOut:
    return _user_out(await _user_in_reach(c, user_id))


class UserChange(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"program_ids": ["prog-mentormt", "prog-reps"]}]})
    name: str | None = Field(default=None, min_length=1, max_length=200)
    program_ids: list[str] | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=320)


@router.patch("/users/{user_id}", response_model=UserOut, dependencies=mutation,
              summary="Rename, re-scope or re-address a user (admin)")
async def change_user(body: UserChange, user_id: str = UserId, c: Caller = Depends(caller)) -> UserOut:
    c.require_admin()
    await _user_in_reach(c, user_id)
    gw = c.gateway

    def run() -> GatewayUser:
        with gw.db.session() as s:
            return accounts.change_user(s, user_id, name=body.name, program_ids=body.program_ids, email=body.email)

    return _user_out(await asyncio.to_thread(run))


@router.post("/users/{user_id}/tokens", response_model=IssuedTokenOut, status_code=201, dependencies=mutation,
             summary="Issue a bearer token for a user (the secret is shown once)")
async def issue_token(body: TokenIn, user_id: str = UserId, c: Caller = Depends(caller)) -> IssuedTokenOut:
    user = await _user_in_reach(c, user_id)
    gw = c.gateway

    def run() -> accounts.IssuedToken:
        with gw.db.session() as s:
            return accounts.issue_token(s, gw.clock, user.id, body.label)

    t = await asyncio.to_thread(run)
    return IssuedTokenOut(id=t.token_id, user_id=t.user_id, label=t.label, token=t.secret)


@router.get("/users/{user_id}/tokens", response_model=list[TokenOut], summary="A user's tokens (never the secrets)")
async def list_tokens(user_id: str = UserId, c: Caller = Depends(caller)) -> list[TokenOut]:
    user = await _user_in_reach(c, user_id)
    gw = c.gateway

    def run() -> list[GatewayToken]:
        with gw.db.session() as s:
            return accounts.tokens_of(s, user.id)

    return [_token_out(t) for t in await asyncio.to_thread(run)]


@router.delete("/tokens/{token_id}", response_model=TokenOut, dependencies=mutation, summary="Revoke a token")
async def revoke_token(
    token_id: str = Path(max_length=40, examples=["tok_1a2b3c4d5e6f7a8b"]), c: Caller = Depends(caller)
) -> TokenOut:
    gw = c.gateway

    def owner() -> Any:
        with gw.db.session() as s:
            t = s.get(GatewayToken, token_id)
            return t.user_id if t else None

    user_id = await asyncio.to_thread(owner)
    try:
        if user_id is None:
            raise NotFound("token_id")
        await _user_in_reach(c, user_id)
    except NotFound:
        raise NotFound("token_id", f"no token {token_id}") from None

    def run() -> GatewayToken:
        with gw.db.session() as s:
            return accounts.revoke_token(s, gw.clock, token_id)

    return _token_out(await asyncio.to_thread(run))
