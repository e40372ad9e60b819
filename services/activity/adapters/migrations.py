"""Schema steps of the activity store (applied once each, in order, at start)."""

from __future__ import annotations

from services.activity.adapters.review_tables import REVIEW_TABLES
from services.activity.adapters.survey_tables import SURVEY_TABLES, EnrolledMentorRow
from services.activity.adapters.tables import TABLES, PartnershipRow
from shared.migrations import Migration, add_columns, create_tables

MIGRATIONS: list[Migration] = [
    Migration(1, "activity tables", create_tables(*TABLES)),
    Migration(2, "surveys", create_tables(*SURVEY_TABLES)),
    Migration(3, "feedback-quality reviews", create_tables(*REVIEW_TABLES)),
    Migration(4, "enrolled mentors (who program-wide surveys ask)", create_tables(EnrolledMentorRow)),
    Migration(5, "partnerships keep a summary of their meetings", add_columns(PartnershipRow, "meeting_summary")),
]
