"""The notify store: contact directory and partnerships (projections of other services' events),
program activity for newsletters, preferences, the message log (which is also the mail outbox),
newsletter issues and announcements. Times for scheduling are epoch milliseconds (portable
comparisons on SQLite and PostgreSQL); times for people are timezone-aware datetimes."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _dt(nullable: bool = True) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


class ProgramRow(SQLModel, table=True):
    __tablename__ = "notify_program"
    program_id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=200)
    policy: str = Field(sa_column=Column(Text, nullable=False))  # ProgramPolicy as JSON
    revision: int = 1


class PersonRow(SQLModel, table=True):
    """A participant of one program, as enrolment events describe them."""

    __tablename__ = "notify_person"
    __table_args__ = (Index("ix_notify_person_program_role", "program_id", "role"),)
    program_id: str = Field(primary_key=True, max_length=100)
    person_id: str = Field(primary_key=True, max_length=100)
    role: str = Field(max_length=20)  # mentor | mentee | metamentor
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    active: bool = True  # False once they left the program
    paused: bool = False


class PartnershipRow(SQLModel, table=True):
    __tablename__ = "notify_partnership"
    __table_args__ = (Index("ix_notify_partnership_metamentor", "metamentor_id"),)
    partnership_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    mentee_id: str = Field(max_length=100)
    metamentor_id: str | None = Field(default=None, max_length=100)
    status: str = Field(default="on_track", max_length=20)
    started_at: datetime = Field(sa_column=_dt(False))
    ended_at: datetime | None = Field(default=None, sa_column=_dt())
    end_reason: str = ""


class PartnershipChangeRow(SQLModel, table=True):
    """Something that happened to a partnership, for the metamentor digest."""

    __tablename__ = "notify_partnership_change"
    __table_args__ = (Index("ix_notify_change_partnership", "partnership_id", "at_ms"),)
    event_id: str = Field(primary_key=True, max_length=64)
    partnership_id: str = Field(max_length=100)
    at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    description: str = Field(sa_column=Column(Text, nullable=False))


class TimeEntryRow(SQLModel, table=True):
    """Time entries, so a clarification request can list what it asks about."""

    __tablename__ = "notify_time_entry"
    entry_id: str = Field(primary_key=True, max_length=100)
    mentor_id: str = Field(max_length=100)
    kind: str = Field(max_length=40)
    work_date: date
    minutes: int


class ProgramActivityRow(SQLModel, table=True):
    """One countable happening in a program's month (a meeting, a completed PIP, a match, a
    recognition), keyed by what it is about so a correction replaces it."""

    __tablename__ = "notify_program_activity"
    __table_args__ = (Index("ix_notify_activity_month", "program_id", "month", "kind"),)
    subject_id: str = Field(primary_key=True, max_length=120)
    program_id: str = Field(max_length=100)
    month: str = Field(max_length=7)
    kind: str = Field(max_length=20)  # meeting | pip | match | recognition
    minutes: int = 0
    detail: str = ""


class PreferenceRow(SQLModel, table=True):
    __tablename__ = "notify_preference"
    person_id: str = Field(primary_key=True, max_length=100)
    newsletter: bool = True
    updated_at: datetime = Field(sa_column=_dt(False))
    updated_by: str = ""


class MessageRow(SQLModel, table=True):
    """One email to one person for one cause: the log and the mail outbox in one row.

    Written as 'pending' in the transaction that handles its cause (unique on recipient, cause and
    kind, so a cause never yields a second email); the sender claims it ('sending'), then marks it
    'sent' or, after the last attempt, 'failed'."""

    __tablename__ = "notify_message"
    __table_args__ = (
        UniqueConstraint("recipient_id", "cause_id", "kind", name="uq_notify_message_once"),
        Index("ix_notify_message_due", "status", "due_at_ms"),
        Index("ix_notify_message_recipient", "recipient_id", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=36, unique=True)
    program_id: str | None = Field(default=None, max_length=100)
    recipient_id: str = Field(max_length=100)
    kind: str = Field(max_length=40)
    cause_id: str = Field(max_length=200)
    facts: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=10)  # pending | sending | sent | failed | skipped
    attempts: int = 0
    due_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    claimed_by: str | None = Field(default=None, max_length=40)
    claimed_until_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    recipient_email: str = Field(default="", max_length=320)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=_dt(False))
    sent_at: datetime | None = Field(default=None, sa_column=_dt())
    failed_at: datetime | None = Field(default=None, sa_column=_dt())
    resends: int = 0
    resent_by: str | None = Field(default=None, max_length=100)


class NewsletterRow(SQLModel, table=True):
    __tablename__ = "notify_newsletter"
    __table_args__ = (UniqueConstraint("program_id", "month", name="uq_notify_newsletter_month"),)
    newsletter_id: str = Field(primary_key=True, max_length=36)
    program_id: str = Field(max_length=100)
    month: str = Field(max_length=7)
    status: str = Field(default="draft", max_length=10)  # draft | published
    items: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # staff items, JSON
    content: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # frozen at publish
    created_at: datetime = Field(sa_column=_dt(False))
    created_by: str = ""
    published_at: datetime | None = Field(default=None, sa_column=_dt())
    published_by: str | None = None
    recipients: int = 0


class AnnouncementRow(SQLModel, table=True):
    __tablename__ = "notify_announcement"
    announcement_id: str = Field(primary_key=True, max_length=36)
    program_id: str = Field(max_length=100)
    audience: str = Field(max_length=20)  # mentors | everyone
    title: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="draft", max_length=10)  # draft | sent
    created_at: datetime = Field(sa_column=_dt(False))
    created_by: str = ""
    sent_at: datetime | None = Field(default=None, sa_column=_dt())
    sent_by: str | None = None
    recipients: int = 0


NOTIFY_TABLES: tuple[type[SQLModel], ...] = (
    ProgramRow, PersonRow, PartnershipRow, PartnershipChangeRow, TimeEntryRow, ProgramActivityRow,
    PreferenceRow, MessageRow, NewsletterRow, AnnouncementRow,
)
