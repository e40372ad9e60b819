"""The matching service's store: programs, people, partnerships, proposals, exclusions,
transitions and incidents. Table names start with "matching_" (all services share one metadata).
Lists and the policy are stored as JSON text so SQLite and PostgreSQL keep the same schema."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def as_utc(instant: datetime) -> datetime:
    """SQLite hands datetimes back naive: every stored instant is UTC."""
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _instant(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


def _json(default: str = "[]") -> Column:
    return Column(Text, nullable=False, default=default)


class ProgramRow(SQLModel, table=True):
    __tablename__ = "matching_program"
    program_id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=300)
    revision: int = 1
    policy: str = Field(sa_column=Column(Text, nullable=False))  # ProgramPolicy as JSON
    created_at: datetime = Field(sa_column=_instant())
    updated_at: datetime = Field(sa_column=_instant())
    updated_by: str = Field(default="", max_length=100)


class PersonRow(SQLModel, table=True):
    """A mentor, mentee or metamentor enrolled in one program."""

    __tablename__ = "matching_person"
    __table_args__ = (UniqueConstraint("program_id", "kind", "email", name="uq_matching_person_email"),)
    person_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(index=True, max_length=100)
    kind: str = Field(max_length=20)  # mentor | mentee | metamentor
    name: str = Field(max_length=300)
    email: str = Field(max_length=300)
    profile: str = Field(sa_column=_json("{}"))  # the Profile's fields as JSON
    capacity: int = 0
    status: str = Field(default="active", max_length=20)  # active | paused | left
    eligible: bool = True
    ineligible_reasons: str = Field(default="[]", sa_column=_json())
    enrolled_at: datetime = Field(sa_column=_instant())
    enrolled_by: str = Field(default="", max_length=100)


class PartnershipRow(SQLModel, table=True):
    __tablename__ = "matching_partnership"
    # A mentee has at most one active partnership, even when two instances publish at once.
    __table_args__ = (
        Index("uq_matching_active_mentee", "mentee_id", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    )
    partnership_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(index=True, max_length=100)
    mentor_id: str = Field(index=True, max_length=100)
    mentee_id: str = Field(index=True, max_length=100)
    metamentor_id: str | None = Field(default=None, index=True, max_length=100)
    status: str = Field(default="active", max_length=20)  # active | ended
    score: int = 0
    reasons: str = Field(default="[]", sa_column=_json())
    manual: bool = False
    warnings: str = Field(default="[]", sa_column=_json())  # constraints staff confirmed breaking
    previous_partnership_id: str | None = Field(default=None, max_length=100)
    started_at: datetime = Field(sa_column=_instant())
    created_by: str = Field(default="", max_length=100)
    ended_at: datetime | None = Field(default=None, sa_column=_instant(True))
    end_reason: str = ""
    ended_by: str = Field(default="", max_length=100)


class ProposalRow(SQLModel, table=True):
    __tablename__ = "matching_proposal"
    proposal_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(index=True, max_length=100)
    objective: str = Field(max_length=30)
    purpose: str = Field(default="pool", max_length=30)  # pool | rematch | transition
    status: str = Field(default="open", max_length=20)  # open | published
    unmatched: str = Field(default="{}", sa_column=_json("{}"))  # mentee_id -> why
    stats: str = Field(default="{}", sa_column=_json("{}"))
    created_at: datetime = Field(sa_column=_instant())
    created_by: str = Field(default="", max_length=100)


class ProposalPairRow(SQLModel, table=True):
    __tablename__ = "matching_proposal_pair"
    id: int | None = Field(default=None, primary_key=True)
    proposal_id: str = Field(index=True, max_length=100)
    mentee_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    score: int
    reasons: str = Field(default="[]", sa_column=_json())
    partnership_id: str | None = Field(default=None, max_length=100)  # set when published


class ExclusionRow(SQLModel, table=True):
    """A banned pair: never proposed automatically; a manual match is a warning to confirm."""

    __tablename__ = "matching_exclusion"
    program_id: str = Field(primary_key=True, max_length=100)
    mentee_id: str = Field(primary_key=True, max_length=100)
    mentor_id: str = Field(primary_key=True, max_length=100)
    reason: str = ""
    created_at: datetime = Field(sa_column=_instant())


class TransitionRow(SQLModel, table=True):
    """A mentee whose mentor paused or left: awaiting until staff decide reassign, hold or end."""

    __tablename__ = "matching_transition"
    transition_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(index=True, max_length=100)
    partnership_id: str = Field(max_length=100)
    mentee_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    leaving: bool = False
    status: str = Field(default="awaiting", max_length=20)  # awaiting | reassign | hold | end
    proposal_id: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(sa_column=_instant())
    decided_at: datetime | None = Field(default=None, sa_column=_instant(True))
    decided_by: str = Field(default="", max_length=100)


class IncidentRow(SQLModel, table=True):
    __tablename__ = "matching_incident"
    incident_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(index=True, max_length=100)
    partnership_id: str = Field(max_length=100)
    reported_by: str = Field(max_length=100)
    description: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="open", max_length=20)  # open | closed
    reported_at: datetime = Field(sa_column=_instant())
    resolution: str = ""
    resolved_by: str = Field(default="", max_length=100)
    resolved_at: datetime | None = Field(default=None, sa_column=_instant(True))


TABLES: tuple[type[SQLModel], ...] = (
    ProgramRow, PersonRow, PartnershipRow, ProposalRow, ProposalPairRow, ExclusionRow, TransitionRow, IncidentRow,
)
