"""Events published by the matching service (topic matching.events)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.contracts.base import Event, event
from shared.contracts.program import ProgramPolicy
from shared.topics import MATCHING


@event("ProgramConfigured", topic=MATCHING, key="program_id")
class ProgramConfigured(Event):
    program_id: str
    name: str
    revision: int = 1
    policy: ProgramPolicy


class _Person(Event):
    person_id: str
    program_id: str
    name: str
    email: str


@event("MentorEnrolled", topic=MATCHING, key="person_id")
class MentorEnrolled(_Person):
    capacity: int = 0
    eligible: bool = True
    ineligible_reasons: list[str] = Field(default_factory=list)


@event("MenteeEnrolled", topic=MATCHING, key="person_id")
class MenteeEnrolled(_Person):
    pass


@event("MetamentorEnrolled", topic=MATCHING, key="person_id")
class MetamentorEnrolled(_Person):
    pass


@event("MentorProfileUpdated", topic=MATCHING, key="person_id")
class MentorProfileUpdated(Event):
    person_id: str
    program_id: str
    changed_fields: list[str] = Field(default_factory=list)
    name: str | None = None
    email: str | None = None


@event("MentorCapacityChanged", topic=MATCHING, key="person_id")
class MentorCapacityChanged(Event):
    person_id: str
    program_id: str
    capacity: int
    previous_capacity: int


@event("MentorPaused", topic=MATCHING, key="person_id")
class MentorPaused(Event):
    person_id: str
    program_id: str
    reason: str = ""
    leaving: bool = False
    partnership_ids: list[str] = Field(default_factory=list)


@event("MentorResumed", topic=MATCHING, key="person_id")
class MentorResumed(Event):
    person_id: str
    program_id: str
    capacity: int


@event("MenteeMatched", topic=MATCHING, key="partnership_id")
class MenteeMatched(Event):
    partnership_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    started_at: datetime
    score: int = 0
    reasons: list[str] = Field(default_factory=list)
    manual: bool = False
    warnings: list[str] = Field(default_factory=list)
    previous_partnership_id: str | None = None


@event("PartnershipEnded", topic=MATCHING, key="partnership_id")
class PartnershipEnded(Event):
    partnership_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    ended_at: datetime
    reason: str


@event("RematchRequested", topic=MATCHING, key="partnership_id")
class RematchRequested(Event):
    partnership_id: str
    program_id: str
    mentee_id: str
    previous_mentor_id: str
    requested_by: str
    reason: str = ""


@event("MetamentorAssigned", topic=MATCHING, key="partnership_id")
class MetamentorAssigned(Event):
    partnership_id: str
    program_id: str
    metamentor_id: str
    previous_metamentor_id: str | None = None


@event("IncidentReported", topic=MATCHING, key="partnership_id")
class IncidentReported(Event):
    incident_id: str
    partnership_id: str
    program_id: str
    reported_by: str
    description: str
