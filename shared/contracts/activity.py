"""Events published by the activity service (topic activity.events)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.base import Event, event
from shared.contracts.program import TimeEntryKind
from shared.topics import ACTIVITY

MeetingMode = Literal["in_person", "video", "phone", "chat"]


@event("MeetingLogged", topic=ACTIVITY, key="partnership_id")
class MeetingLogged(Event):
    meeting_id: str
    partnership_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    started_at: datetime
    duration_minutes: int = Field(gt=0, le=8 * 60)
    mode: MeetingMode
    intentional: bool
    topics: list[str] = Field(default_factory=list)
    logged_by: str = ""


@event("MeetingCorrected", topic=ACTIVITY, key="partnership_id")
class MeetingCorrected(Event):
    meeting_id: str
    partnership_id: str
    program_id: str
    started_at: datetime
    duration_minutes: int = Field(ge=0, le=8 * 60)
    mode: MeetingMode
    intentional: bool
    voided: bool = False
    reason: str = ""


@event("ActivityRecorded", topic=ACTIVITY, key="partnership_id")
class ActivityRecorded(Event):
    activity_id: str
    partnership_id: str
    program_id: str
    kind: str  # pip_stage, book_study, site_visit, orientation, agreement, checklist, log, ...
    stage: str | None = None
    occurred_on: date
    details: dict[str, str] = Field(default_factory=dict)


@event("TimeEntryRecorded", topic=ACTIVITY, key="mentor_id")
class TimeEntryRecorded(Event):
    entry_id: str
    mentor_id: str
    program_id: str
    kind: TimeEntryKind
    work_date: date
    minutes: int = Field(gt=0, le=24 * 60)
    partnership_id: str | None = None
    meeting_id: str | None = None  # the meeting this entry pays for (kind meeting)
    workshop_entry_id: str | None = None  # the workshop this planning time is for


@event("TimeEntryAmended", topic=ACTIVITY, key="mentor_id")
class TimeEntryAmended(Event):
    entry_id: str
    mentor_id: str
    program_id: str
    kind: TimeEntryKind
    work_date: date
    minutes: int = Field(ge=0, le=24 * 60)
    voided: bool = False
    reason: str = ""
    month: str | None = None  # "YYYY-MM" of the entry's month when it was already closed


@event("PartnershipAtRisk", topic=ACTIVITY, key="partnership_id")
class PartnershipAtRisk(Event):
    partnership_id: str
    program_id: str
    mentor_id: str
    status: Literal["on_track", "behind", "at_risk"]
    previous_status: Literal["on_track", "behind", "at_risk"] | None = None
    reasons: list[str] = Field(default_factory=list)


class ClosedEntry(BaseModel):
    model_config = ConfigDict(frozen=True)
    entry_id: str
    kind: TimeEntryKind
    work_date: date
    minutes: int
    late: bool = False
    # Never set by the activity service: an amendment of a closed entry travels as TimeEntryAmended
    # with `month`. Kept only because deploy/asyncapi/activity.json was generated with it; drop both
    # together (regenerate with `uv run mentoring asyncapi`).
    adjustment_of: str | None = None


@event("MonthClosed", topic=ACTIVITY, key="mentor_id")
class MonthClosed(Event):
    program_id: str
    mentor_id: str
    month: str  # "YYYY-MM" in the program's time zone
    minutes_by_kind: dict[TimeEntryKind, int] = Field(default_factory=dict)
    entries: list[ClosedEntry] = Field(default_factory=list)


@event("SurveyInvited", topic=ACTIVITY, key="person_id")
class SurveyInvited(Event):
    """A person is asked to answer a survey round (notify emails the invitation, or a reminder)."""

    invitation_id: str
    round_id: str
    survey_id: str
    program_id: str
    person_id: str
    title: str
    partnership_id: str | None = None
    reminder: bool = False


@event("SurveyAnswered", topic=ACTIVITY, key="person_id")
class SurveyAnswered(Event):
    answer_id: str
    round_id: str
    survey_id: str
    program_id: str
    person_id: str
    partnership_id: str | None = None
    average_rating: float | None = None


@event("PartnershipFlagged", topic=ACTIVITY, key="partnership_id")
class PartnershipFlagged(Event):
    """A survey answer (e.g. "not a good fit" after the first meeting) asks staff to look at it."""

    partnership_id: str
    program_id: str
    round_id: str
    person_id: str
    reason: str = ""


@event("FeedbackReviewed", topic=ACTIVITY, key="mentor_id")
class FeedbackReviewed(Event):
    """Staff scored one of a mentor's written feedback entries (notify emails the mentor)."""

    review_id: str
    entry_id: str
    program_id: str
    mentor_id: str
    month: str
    scores: dict[str, int] = Field(default_factory=dict)
    comment: str = ""
