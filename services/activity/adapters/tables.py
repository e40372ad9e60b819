"""The activity service's store: its projection of matching's events, its own records, and the
month-close bookkeeping. Table names start with "activity_" (all services share one metadata)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Column, Date, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def as_utc(instant: datetime) -> datetime:
    """SQLite hands datetimes back naive: every stored instant is UTC."""
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _instant(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class ProgramRow(SQLModel, table=True):
    """A program's policy as last configured (projection of ProgramConfigured)."""

    __tablename__ = "activity_program"
    program_id: str = Field(primary_key=True, max_length=100)
    name: str = Field(default="", max_length=300)
    revision: int = 0
    policy: str = Field(sa_column=Column(Text, nullable=False))  # ProgramPolicy as JSON


class PartnershipRow(SQLModel, table=True):
    """A partnership (projection of MenteeMatched / PartnershipEnded / MetamentorAssigned), with its
    last known compliance status. `matched` is False for a placeholder made by an event that
    arrived before MenteeMatched."""

    __tablename__ = "activity_partnership"
    partnership_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(index=True, max_length=100)
    mentor_id: str = Field(index=True, max_length=100)
    mentee_id: str = Field(default="", max_length=100)
    matched: bool = False
    started_at: datetime | None = Field(default=None, sa_column=_instant(True))
    ended_at: datetime | None = Field(default=None, sa_column=_instant(True))
    end_reason: str = ""
    metamentor_id: str | None = Field(default=None, max_length=100)
    status: str | None = Field(default=None, max_length=20)
    status_reasons: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    status_checked_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    # The MeetingSummary (JSON) of its standing meetings in the view, kept as meetings arrive;
    # NULL when not known (cleared by a correction, rebuilt from the view when next judged).
    meeting_summary: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class MentorRow(SQLModel, table=True):
    __tablename__ = "activity_mentor"
    mentor_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(max_length=100)
    paused_at: datetime | None = Field(default=None, sa_column=_instant(True))
    leaving: bool = False


class MeetingRow(SQLModel, table=True):
    """A logged meeting (write side: validation, duplicates, corrections)."""

    __tablename__ = "activity_meeting"
    meeting_id: str = Field(primary_key=True, max_length=64)
    partnership_id: str = Field(index=True, max_length=100)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    mentee_id: str = Field(max_length=100)
    started_at: datetime = Field(sa_column=_instant())
    duration_minutes: int
    mode: str = Field(max_length=20)
    intentional: bool
    topics: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    voided: bool = False
    void_reason: str = ""
    # Unique while the meeting stands (NULL once voided): an exact duplicate cannot be stored
    # even by two requests racing each other.
    fingerprint: str | None = Field(default=None, max_length=64, unique=True)
    logged_by: str = Field(default="", max_length=100)
    logged_role: str = Field(default="", max_length=20)
    created_at: datetime = Field(sa_column=_instant())
    updated_at: datetime = Field(sa_column=_instant())
    revision: int = 1


class MeetingViewRow(SQLModel, table=True):
    """Meetings as compliance sees them: built only from MeetingLogged / MeetingCorrected events,
    so it can be rebuilt from the topic."""

    __tablename__ = "activity_meeting_view"
    meeting_id: str = Field(primary_key=True, max_length=64)
    partnership_id: str = Field(index=True, max_length=100)
    program_id: str = Field(max_length=100)
    started_at: datetime = Field(sa_column=_instant())
    minutes: int
    intentional: bool
    voided: bool = False


class TimeEntryRow(SQLModel, table=True):
    """A time entry for pay. `closed_month` is set once, by the close that freezes it."""

    __tablename__ = "activity_time_entry"
    # No index on closed_month on purpose: the close's claim rewrites that column on every entry of
    # the month, and maintaining an index over it made the claim ~7x slower (bench/activity_bench.py).
    # A close reads its entries back per mentor, through the mentor index.
    # On PostgreSQL, free room in each page lets the claim update rows in place (HOT: closed_month is
    # in no index, so no index is touched).
    __table_args__ = (
        Index("ix_activity_time_entry_mentor", "mentor_id", "work_date"),
        {"postgresql_with": {"fillfactor": 70}},
    )
    entry_id: str = Field(primary_key=True, max_length=80)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    partnership_id: str | None = Field(default=None, max_length=100)
    meeting_id: str | None = Field(default=None, index=True, max_length=64)
    workshop_entry_id: str | None = Field(default=None, index=True, max_length=80)
    kind: str = Field(max_length=30)
    work_date: date = Field(sa_column=Column(Date, nullable=False))
    minutes: int
    voided: bool = False
    reason: str = ""
    recorded_by: str = Field(default="", max_length=100)
    recorded_at: datetime = Field(sa_column=_instant())
    amended_at: datetime | None = Field(default=None, sa_column=_instant(True))
    closed_month: str | None = Field(default=None, max_length=7)  # late when work_date is before it


class ActivityRow(SQLModel, table=True):
    __tablename__ = "activity_activity"
    activity_id: str = Field(primary_key=True, max_length=64)
    partnership_id: str = Field(index=True, max_length=100)
    program_id: str = Field(max_length=100)
    kind: str = Field(max_length=30)
    stage: str | None = Field(default=None, max_length=20)
    pip_id: str | None = Field(default=None, max_length=100)
    occurred_on: date = Field(sa_column=Column(Date, nullable=False))
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    recorded_by: str = Field(default="", max_length=100)
    recorded_at: datetime = Field(sa_column=_instant())


class MonthCloseRow(SQLModel, table=True):
    """One row per program and month closed: the primary key is what makes a close happen once,
    whichever instance (job or staff trigger) gets there first."""

    __tablename__ = "activity_month_close"
    program_id: str = Field(primary_key=True, max_length=100)
    month: str = Field(primary_key=True, max_length=7)
    closed_at: datetime = Field(sa_column=_instant())
    triggered_by: str = Field(default="scheduler", max_length=100)
    mentors: int = 0
    entries: int = 0
    late_entries: int = 0
    minutes_by_kind: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class MentorMonthCloseRow(SQLModel, table=True):
    """One MonthClosed per mentor and month, enforced by the store."""

    __tablename__ = "activity_mentor_month_close"
    __table_args__ = (UniqueConstraint("program_id", "mentor_id", "month", name="uq_activity_mentor_month"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    month: str = Field(max_length=7)
    entries: int = 0
    minutes: int = 0
    event_id: str = Field(max_length=36)


TABLES: tuple[type[SQLModel], ...] = (
    ProgramRow, PartnershipRow, MentorRow, MeetingRow, MeetingViewRow, TimeEntryRow, ActivityRow,
    MonthCloseRow, MentorMonthCloseRow,
)
