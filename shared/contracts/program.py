"""A program's policy: the rules every service follows for one program (carried by ProgramConfigured).

Each source program picks its own rules (../shared/DOMAIN.md); nothing here is hard-coded per
program. Every field has the default a new program starts with.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.money import ExactDecimal


class TimeEntryKind(StrEnum):
    MEETING = "meeting"
    PLANNING = "planning"
    WORKSHOP = "workshop"
    TRAINING = "training"
    FEEDBACK_REVIEW = "feedback_review"
    TRAVEL = "travel"


class Semester(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    start: date
    end: date


class SchoolYear(BaseModel):
    model_config = ConfigDict(frozen=True)
    start: date = date(2026, 8, 1)
    end: date = date(2027, 7, 31)
    semesters: list[Semester] = Field(
        default_factory=lambda: [
            Semester(name="Fall", start=date(2026, 8, 1), end=date(2027, 1, 15)),
            Semester(name="Spring", start=date(2027, 1, 16), end=date(2027, 7, 31)),
        ]
    )

    @model_validator(mode="after")
    def _ordered(self) -> SchoolYear:
        if self.end <= self.start:
            raise ValueError("school year must end after it starts")
        for s in self.semesters:
            if s.end < s.start or s.start < self.start or s.end > self.end:
                raise ValueError(f"semester {s.name!r} must lie inside the school year")
        return self


class Eligibility(BaseModel):
    """Mentor eligibility rules; None means the rule is not used by this program."""

    model_config = ConfigDict(frozen=True)
    min_years_in_position: int | None = None
    min_years_in_program: int | None = None
    training_required: bool = False


class MatchingPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)
    # Integer weights per criterion (grade_band, subjects, role, site, region, languages, ...).
    criteria_weights: dict[str, int] = Field(
        default_factory=lambda: {
            "grade_band": 3,
            "subjects": 3,
            "role": 2,
            "site": 1,
            "region": 1,
            "languages": 1,
        }
    )
    objective: Literal["best_total", "max_participation"] = "max_participation"
    eligibility: Eligibility = Field(default_factory=Eligibility)
    default_capacity: int = Field(default=2, ge=0, le=50)
    metamentor_caseload_min: int = Field(default=30, ge=0)
    metamentor_caseload_max: int = Field(default=40, ge=1)


class CadencePolicy(BaseModel):
    """Meeting cadence rules; None switches a rule off."""

    model_config = ConfigDict(frozen=True)
    intentional_meetings_per_month: int | None = 2
    early_months: int | None = None  # e.g. 6: the first months ask for more meetings
    early_meetings_per_month: int | None = None  # e.g. 2 (of "2-3 a month at first")
    hours_per_school_year: ExactDecimal | None = None  # e.g. 10
    pips_per_semester: int | None = 2
    first_meeting_within_days: int | None = 14
    new_member_months: int = 12
    new_member_meeting_every_days: int | None = None  # e.g. 90
    meeting_every_days: int | None = None  # e.g. 365


class PayPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)
    currency: str = "USD"
    # Hourly rate per time-entry kind; a kind without a rate is not paid.
    hourly_rates: dict[TimeEntryKind, ExactDecimal] = Field(
        default_factory=lambda: {
            TimeEntryKind.MEETING: Decimal("40.00"),
            TimeEntryKind.PLANNING: Decimal("30.00"),
            TimeEntryKind.WORKSHOP: Decimal("50.00"),
            TimeEntryKind.FEEDBACK_REVIEW: Decimal("30.00"),
        }
    )
    planning_multiple_of_workshop: ExactDecimal = Decimal("2")
    monthly_cap: ExactDecimal | None = None
    pay_day: Literal["first_working_day"] | int = "first_working_day"
    month_close_grace_days: int = Field(default=3, ge=0, le=28)
    book_budget_per_partnership_year: ExactDecimal = Decimal("50.00")
    travel_budget_per_partnership_year: ExactDecimal = Decimal("300.00")


class CommunicationPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)
    newsletter_day: int = Field(default=1, ge=1, le=28)
    digest_weekday: int = Field(default=0, ge=0, le=6)  # Monday
    reply_to: str | None = None


class ProgramPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)
    timezone: str = "America/Denver"
    school_year: SchoolYear = Field(default_factory=SchoolYear)
    matching: MatchingPolicy = Field(default_factory=MatchingPolicy)
    cadence: CadencePolicy = Field(default_factory=CadencePolicy)
    pay: PayPolicy = Field(default_factory=PayPolicy)
    communication: CommunicationPolicy = Field(default_factory=CommunicationPolicy)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
