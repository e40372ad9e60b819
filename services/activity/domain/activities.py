"""Activities of a partnership: Partners-in-Practice (PIPs) and everything else that is recorded.

A PIP runs through three stages, Exploration, Collaboration and Application, and is complete when
all three are done (in any order; it completes on the date of its last stage). A book study counts
as one completed PIP on its date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from services.activity.domain.errors import Problems
from shared.errors import Conflict, DomainError


class ActivityKind(StrEnum):
    PIP_STAGE = "pip_stage"
    BOOK_STUDY = "book_study"
    SITE_VISIT = "site_visit"
    MEET_UP = "meet_up"
    ORIENTATION = "orientation"
    AGREEMENT = "agreement"
    CHECKLIST = "checklist"
    MENTOR_LOG = "mentor_log"
    REFLECTION = "reflection"
    RECOGNITION = "recognition"


class PipStage(StrEnum):
    EXPLORATION = "exploration"
    COLLABORATION = "collaboration"
    APPLICATION = "application"


# The details each kind must carry (what a coordinator needs to read the record later).
REQUIRED_DETAILS: dict[ActivityKind, tuple[str, ...]] = {
    ActivityKind.PIP_STAGE: ("pip_id",),
    ActivityKind.BOOK_STUDY: ("title",),
    ActivityKind.SITE_VISIT: ("place",),
    ActivityKind.MEET_UP: ("place",),
    ActivityKind.ORIENTATION: (),
    ActivityKind.AGREEMENT: (),
    ActivityKind.CHECKLIST: ("item",),
    ActivityKind.MENTOR_LOG: ("entry",),
    ActivityKind.REFLECTION: ("question", "answer"),
    ActivityKind.RECOGNITION: ("nominee_id", "reason"),
}
ONCE_PER_PARTNERSHIP = (ActivityKind.ORIENTATION, ActivityKind.AGREEMENT)


@dataclass(frozen=True)
class ActivityDraft:
    partnership_id: str
    kind: str
    occurred_on: date
    stage: str | None = None
    details: tuple[tuple[str, str], ...] = ()

    @property
    def detail(self) -> dict[str, str]:
        return dict(self.details)


@dataclass(frozen=True)
class ActivityFact:
    activity_id: str
    kind: str
    occurred_on: date
    stage: str | None = None
    pip_id: str | None = None


@dataclass(frozen=True)
class PipProgress:
    pip_id: str
    stages: dict[str, date]

    @property
    def complete(self) -> bool:
        return all(s.value in self.stages for s in PipStage)

    @property
    def completed_on(self) -> date | None:
        return max(self.stages.values()) if self.complete else None

    @property
    def missing(self) -> list[str]:
        return [s.value for s in PipStage if s.value not in self.stages]


def validate_activity(draft: ActivityDraft, today_local: date, existing: Iterable[ActivityFact]) -> None:
    if draft.kind not in {k.value for k in ActivityKind}:
        raise DomainError("kind", f"must be one of {', '.join(k.value for k in ActivityKind)}", "unknown_kind")
    kind = ActivityKind(draft.kind)
    problems = Problems()
    if kind == ActivityKind.PIP_STAGE:
        if draft.stage not in {s.value for s in PipStage}:
            problems.add("stage", f"a PIP stage must be one of {', '.join(s.value for s in PipStage)}", "unknown_stage")
    elif draft.stage is not None:
        problems.add("stage", f"only a pip_stage has a stage, not a {kind.value}", "unexpected_stage")
    details = draft.detail
    for name in REQUIRED_DETAILS[kind]:
        if not details.get(name, "").strip():
            problems.add(f"details.{name}", f"a {kind.value} needs {name}", "missing_detail")
    if draft.occurred_on > today_local:
        problems.add("occurred_on", f"is in the future (today is {today_local.isoformat()})", "in_future")
    problems.raise_if_any()
    facts = list(existing)
    if kind in ONCE_PER_PARTNERSHIP and any(f.kind == kind.value for f in facts):
        raise Conflict("kind", f"the {kind.value} of this partnership is already recorded", "already_recorded")
    if kind == ActivityKind.PIP_STAGE:
        pip_id = details["pip_id"]
        if any(f.kind == kind.value and f.pip_id == pip_id and f.stage == draft.stage for f in facts):
            raise Conflict("stage", f"stage {draft.stage} of PIP {pip_id} is already recorded", "already_recorded")


def pip_progress(facts: Iterable[ActivityFact]) -> list[PipProgress]:
    by_pip: dict[str, dict[str, date]] = {}
    for f in facts:
        if f.kind == ActivityKind.PIP_STAGE and f.pip_id and f.stage:
            stages = by_pip.setdefault(f.pip_id, {})
            stages[f.stage] = min(f.occurred_on, stages.get(f.stage, f.occurred_on))
    return [PipProgress(pip_id, stages) for pip_id, stages in sorted(by_pip.items())]


def completed_pip_dates(facts: Iterable[ActivityFact]) -> list[date]:
    """The dates PIPs were completed: PIPs with all three stages, and book studies."""
    facts = list(facts)
    dates = [p.completed_on for p in pip_progress(facts) if p.completed_on is not None]
    dates += [f.occurred_on for f in facts if f.kind == ActivityKind.BOOK_STUDY]
    return sorted(dates)
