"""Feedback-quality review tables of the activity store (activity_feedback_*, activity_review_*)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _instant(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class FeedbackEntryRow(SQLModel, table=True):
    """Written feedback a mentor gave a mentee (its text, or a link to it)."""

    __tablename__ = "activity_feedback_entry"
    __table_args__ = (Index("ix_activity_feedback_mentor", "program_id", "mentor_id", "given_on"),)
    entry_id: str = Field(primary_key=True, max_length=64)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    partnership_id: str | None = Field(default=None, max_length=100)
    given_on: date = Field(sa_column=Column(Date, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    link: str = Field(default="", max_length=2000)
    recorded_by: str = Field(default="", max_length=100)
    recorded_at: datetime = Field(sa_column=_instant())


class ReviewRubricRow(SQLModel, table=True):
    __tablename__ = "activity_review_rubric"
    program_id: str = Field(primary_key=True, max_length=100)
    criteria: str = Field(sa_column=Column(Text, nullable=False))  # JSON [{criterion_id, description}]
    sample_size: int = 3
    updated_by: str = Field(default="", max_length=100)
    updated_at: datetime = Field(sa_column=_instant())


class ReviewSampleRow(SQLModel, table=True):
    """The sample drawn for a mentor's month, kept so later draws return the very same entries."""

    __tablename__ = "activity_review_sample"
    program_id: str = Field(primary_key=True, max_length=100)
    mentor_id: str = Field(primary_key=True, max_length=100)
    month: str = Field(primary_key=True, max_length=7)
    entry_ids: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    drawn_by: str = Field(default="", max_length=100)
    drawn_at: datetime = Field(sa_column=_instant())


class FeedbackReviewRow(SQLModel, table=True):
    """One review per sampled entry (unique), with its rubric scores and the reviewer's comment."""

    __tablename__ = "activity_feedback_review"
    __table_args__ = (UniqueConstraint("entry_id", name="uq_activity_feedback_review_entry"),
                      Index("ix_activity_feedback_review_mentor", "program_id", "mentor_id", "month"))
    review_id: str = Field(primary_key=True, max_length=64)
    entry_id: str = Field(max_length=64)
    program_id: str = Field(max_length=100)
    mentor_id: str = Field(max_length=100)
    month: str = Field(max_length=7)
    scores: str = Field(sa_column=Column(Text, nullable=False))  # JSON {criterion_id: 1..4}
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    reviewed_by: str = Field(default="", max_length=100)
    reviewed_at: datetime = Field(sa_column=_instant())


REVIEW_TABLES: tuple[type[SQLModel], ...] = (FeedbackEntryRow, ReviewRubricRow, ReviewSampleRow, FeedbackReviewRow)
