"""Survey tables of the activity store (activity_survey_*). Uniqueness lives in the store: a round
opens once per (survey, key), a person is invited once per round and answers once per round."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _instant(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class SurveyRow(SQLModel, table=True):
    __tablename__ = "activity_survey"
    survey_id: str = Field(primary_key=True, max_length=64)
    program_id: str = Field(index=True, max_length=100)
    title: str = Field(max_length=300)
    questions: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of Question dicts
    schedule: str = Field(max_length=30)
    every_days: int | None = None
    start_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    remind_after_days: int | None = None
    audience: str = Field(default="mentor", max_length=30)  # mentor | mentor_and_mentee
    active: bool = True
    created_by: str = Field(default="", max_length=100)
    created_at: datetime = Field(sa_column=_instant())


class SurveyRoundRow(SQLModel, table=True):
    __tablename__ = "activity_survey_round"
    __table_args__ = (UniqueConstraint("survey_id", "round_key", name="uq_activity_survey_round"),)
    round_id: str = Field(primary_key=True, max_length=64)
    survey_id: str = Field(index=True, max_length=64)
    program_id: str = Field(index=True, max_length=100)
    round_key: str = Field(max_length=150)
    partnership_id: str | None = Field(default=None, max_length=100)
    opened_at: datetime = Field(sa_column=_instant())


class SurveyInvitationRow(SQLModel, table=True):
    __tablename__ = "activity_survey_invitation"
    __table_args__ = (
        UniqueConstraint("round_id", "person_id", name="uq_activity_survey_invitation"),
        Index("ix_activity_survey_invitation_open", "answered_at", "reminded_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    round_id: str = Field(max_length=64)
    survey_id: str = Field(max_length=64)
    program_id: str = Field(index=True, max_length=100)
    person_id: str = Field(index=True, max_length=100)
    invited_at: datetime = Field(sa_column=_instant())
    reminded_at: datetime | None = Field(default=None, sa_column=_instant(True))
    answered_at: datetime | None = Field(default=None, sa_column=_instant(True))


class SurveyAnswerRow(SQLModel, table=True):
    """One answer per person and round: the unique constraint refuses a second, even racing."""

    __tablename__ = "activity_survey_answer"
    __table_args__ = (UniqueConstraint("round_id", "person_id", name="uq_activity_survey_answer"),)
    answer_id: str = Field(primary_key=True, max_length=64)
    round_id: str = Field(max_length=64)
    survey_id: str = Field(index=True, max_length=64)
    program_id: str = Field(index=True, max_length=100)
    person_id: str = Field(max_length=100)
    partnership_id: str | None = Field(default=None, max_length=100)
    answers: str = Field(sa_column=Column(Text, nullable=False))
    average_rating: float | None = None
    answered_at: datetime = Field(sa_column=_instant())


class PartnershipFlagRow(SQLModel, table=True):
    """A partnership flagged for staff by a survey answer (e.g. "not a good fit")."""

    __tablename__ = "activity_partnership_flag"
    flag_id: str = Field(primary_key=True, max_length=64)
    partnership_id: str = Field(index=True, max_length=100)
    program_id: str = Field(index=True, max_length=100)
    round_id: str = Field(max_length=64)
    person_id: str = Field(max_length=100)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    flagged_at: datetime = Field(sa_column=_instant())


class EnrolledMentorRow(SQLModel, table=True):
    """Mentors enrolled in a program (projection of MentorEnrolled): who a program-wide survey asks,
    partnered yet or not."""

    __tablename__ = "activity_enrolled_mentor"
    mentor_id: str = Field(primary_key=True, max_length=100)
    program_id: str = Field(index=True, max_length=100)


SURVEY_TABLES: tuple[type[SQLModel], ...] = (
    SurveyRow, SurveyRoundRow, SurveyInvitationRow, SurveyAnswerRow, PartnershipFlagRow,
)
