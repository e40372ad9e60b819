"""Commands staff and participants send to the matching service (also the HTTP request bodies)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.matching.domain.matching import Objective
from services.matching.domain.roster import MAX_CAPACITY
from shared.contracts.program import ProgramPolicy

PersonKind = Literal["mentor", "mentee", "metamentor"]


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigureProgram(_Command):
    program_id: str | None = Field(default=None, min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=300)
    policy: ProgramPolicy = Field(default_factory=ProgramPolicy)


class ChangeProgram(_Command):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    policy: ProgramPolicy | None = None


class EnrolPerson(_Command):
    person_id: str | None = Field(default=None, min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=300)
    email: str = Field(min_length=3, max_length=300)
    grade_band: str | None = None
    subjects: list[str] = Field(default_factory=list)
    role: str | None = None
    site: str | None = None
    region: str | None = None
    languages: list[str] = Field(default_factory=list)
    availability: list[str] = Field(default_factory=list)
    years_in_position: int | None = Field(default=None, ge=0, le=80)
    years_in_program: int | None = Field(default=None, ge=0, le=80)
    training_completed: bool = False
    capacity: int | None = Field(default=None, ge=0, le=MAX_CAPACITY)  # mentors only


class UpdateProfile(_Command):
    """Only the fields given change (send null to clear a single value)."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    email: str | None = Field(default=None, min_length=3, max_length=300)
    grade_band: str | None = None
    subjects: list[str] | None = None
    role: str | None = None
    site: str | None = None
    region: str | None = None
    languages: list[str] | None = None
    availability: list[str] | None = None
    years_in_position: int | None = Field(default=None, ge=0, le=80)
    years_in_program: int | None = Field(default=None, ge=0, le=80)
    training_completed: bool | None = None


class ChangeCapacity(_Command):
    capacity: int = Field(ge=0, le=MAX_CAPACITY)


class BanPair(_Command):
    mentee_id: str
    mentor_id: str
    reason: str = ""


class ProposeMatches(_Command):
    objective: Objective | None = None  # None: the program's policy decides
    mentee_ids: list[str] | None = None  # None: every unmatched mentee of the program


class PublishProposal(_Command):
    mentee_ids: list[str] | None = None  # None: every pair not yet published


class ManualMatch(_Command):
    mentee_id: str
    mentor_id: str
    confirm_warnings: bool = False


class RequestRematch(_Command):
    requested_by: Literal["mentee", "staff"] = "staff"
    reason: str = Field(default="", max_length=2000)


class PauseMentor(_Command):
    reason: str = Field(default="", max_length=2000)
    leaving: bool = False


class ResumeMentor(_Command):
    capacity: int | None = Field(default=None, ge=0, le=MAX_CAPACITY)


class DecideTransition(_Command):
    decision: Literal["reassign", "hold", "end"]
    note: str = Field(default="", max_length=2000)


class ReportIncident(_Command):
    reported_by: str = Field(min_length=1, max_length=100)
    description: str = Field(min_length=1, max_length=10000)


class ResolveIncident(_Command):
    action: Literal["end_and_rematch", "close"]
    note: str = Field(default="", max_length=2000)
