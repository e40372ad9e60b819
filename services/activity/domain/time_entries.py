"""Time entries for pay: what may be recorded, and the cap on planning linked to a workshop.

Meeting time is recorded by logging the meeting (one meeting entry per meeting), so a manual
entry of kind "meeting" is refused: it would pay the same time twice. Planning time may be linked
to a workshop entry; the planning linked to one workshop may not exceed the program's multiple of
that workshop's time (2x by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal

from services.activity.domain.errors import Problems
from shared.contracts.program import TimeEntryKind
from shared.errors import Conflict, NotFound

MAX_ENTRY_MINUTES = 24 * 60


@dataclass(frozen=True)
class TimeEntryDraft:
    mentor_id: str
    program_id: str
    kind: TimeEntryKind
    work_date: date
    minutes: int
    partnership_id: str | None = None
    workshop_entry_id: str | None = None


@dataclass(frozen=True)
class WorkshopEntry:
    entry_id: str
    mentor_id: str
    kind: TimeEntryKind
    minutes: int
    voided: bool = False


def planning_allowance(workshop_minutes: int, multiple: Decimal) -> int:
    """Minutes of planning a workshop of `workshop_minutes` allows (rounded down to the minute)."""
    return int((Decimal(workshop_minutes) * multiple).to_integral_value(rounding=ROUND_FLOOR))


def check_fields(draft: TimeEntryDraft, today_local: date, *, manual: bool = True) -> None:
    problems = Problems()
    if manual and draft.kind == TimeEntryKind.MEETING:
        problems.add("kind", "meeting time is recorded by logging the meeting (POST /meetings)", "meeting_via_log")
    if draft.minutes <= 0:
        problems.add("minutes", "must be more than 0", "too_short")
    elif draft.minutes > MAX_ENTRY_MINUTES:
        problems.add("minutes", f"must be at most {MAX_ENTRY_MINUTES} (one day)", "too_long")
    if draft.work_date > today_local:
        problems.add("work_date", f"is in the future (today is {today_local.isoformat()} in the program's zone)",
                     "in_future")
    if draft.workshop_entry_id is not None and draft.kind != TimeEntryKind.PLANNING:
        problems.add("workshop_entry_id", "only planning time can be linked to a workshop", "not_planning")
    problems.raise_if_any()


def check_planning_cap(
    draft: TimeEntryDraft,
    workshop: WorkshopEntry | None,
    linked_planning_minutes: int,
    multiple: Decimal,
) -> None:
    """`linked_planning_minutes`: planning already linked to that workshop (this entry excluded)."""
    if draft.workshop_entry_id is None:
        return
    if workshop is None or workshop.voided:
        raise NotFound("workshop_entry_id", f"no workshop entry {draft.workshop_entry_id!r}")
    if workshop.kind != TimeEntryKind.WORKSHOP:
        raise Conflict("workshop_entry_id", f"entry {workshop.entry_id!r} is {workshop.kind}, not a workshop",
                       "not_workshop")
    if workshop.mentor_id != draft.mentor_id:
        raise Conflict("workshop_entry_id", f"workshop {workshop.entry_id!r} is not this mentor's", "not_owner")
    allowance = planning_allowance(workshop.minutes, multiple)
    total = linked_planning_minutes + draft.minutes
    if total > allowance:
        raise Conflict(
            "minutes",
            f"planning linked to workshop {workshop.entry_id} would be {total} minutes; the program allows "
            f"{multiple}x the workshop's {workshop.minutes} minutes = {allowance}",
            "planning_cap",
        )


def check_workshop_shrink(workshop_minutes: int, linked_planning_minutes: int, multiple: Decimal) -> None:
    """A workshop may not shrink below what its linked planning needs."""
    allowance = planning_allowance(workshop_minutes, multiple)
    if linked_planning_minutes > allowance:
        raise Conflict(
            "minutes",
            f"{linked_planning_minutes} minutes of planning are linked to this workshop; "
            f"{workshop_minutes} minutes allow only {allowance}",
            "planning_cap",
        )
