"""Meetings: who may log one, and which are refused.

A meeting is refused when it is in the future, longer than 8 hours, before its partnership
started (or after it ended), for a partnership that is not the mentor's or not active, or when an
identical meeting (same partnership, start, duration, mode and intent) is already logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.activity.domain.errors import Problems
from shared.clock import ensure_utc
from shared.errors import Conflict, Forbidden, NotFound

MAX_MEETING_MINUTES = 8 * 60
MODES = ("in_person", "video", "phone", "chat")


class Role(StrEnum):
    MENTOR = "mentor"
    STAFF = "staff"


@dataclass(frozen=True)
class Actor:
    actor_id: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role == Role.STAFF


@dataclass(frozen=True)
class Partnership:
    """What the activity service knows of a partnership (projected from matching's events)."""

    partnership_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    started_at: datetime
    ended_at: datetime | None = None
    mentor_paused: bool = False

    def active_at(self, instant: datetime) -> bool:
        return self.started_at <= instant and (self.ended_at is None or instant < self.ended_at)

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class MeetingDraft:
    partnership_id: str
    started_at: datetime
    duration_minutes: int
    mode: str
    intentional: bool
    topics: tuple[str, ...] = ()
    notes: str = ""

    def fingerprint(self) -> str:
        """Identity of an exact duplicate: the same meeting logged twice."""
        raw = "|".join(
            (self.partnership_id, ensure_utc(self.started_at).isoformat(), str(self.duration_minutes),
             self.mode, str(self.intentional))
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class LoggedMeeting:
    meeting_id: str
    fingerprint: str
    voided: bool = False


@dataclass
class MeetingChange:
    """A correction: the fields that change (None keeps the current value)."""

    started_at: datetime | None = None
    duration_minutes: int | None = None
    mode: str | None = None
    intentional: bool | None = None
    voided: bool = False
    reason: str = ""
    topics: tuple[str, ...] | None = field(default=None)


def authorize(actor: Actor, partnership: Partnership | None, partnership_id: str) -> Partnership:
    """The partnership must exist and, unless staff log it, be the actor's own."""
    if partnership is None:
        raise NotFound("partnership_id", f"no partnership {partnership_id!r} is known")
    if actor.role not in (Role.MENTOR, Role.STAFF):
        raise Forbidden("X-Actor-Role", f"role {actor.role!r} may not log meetings (mentor or staff)")
    if not actor.is_staff and actor.actor_id != partnership.mentor_id:
        raise Forbidden("partnership_id", f"partnership {partnership_id!r} is not mentor {actor.actor_id!r}'s")
    return partnership


def check_meeting(draft: MeetingDraft, partnership: Partnership, now: datetime) -> None:
    """Every rule on the meeting's own fields and on the partnership's dates."""
    problems = Problems()
    started = ensure_utc(draft.started_at)
    if started > now:
        problems.add("started_at", f"is in the future ({started.isoformat()} is after {now.isoformat()})", "in_future")
    if draft.duration_minutes <= 0:
        problems.add("duration_minutes", "must be more than 0 minutes", "too_short")
    elif draft.duration_minutes > MAX_MEETING_MINUTES:
        problems.add(
            "duration_minutes", f"must be at most {MAX_MEETING_MINUTES} minutes (8 hours)", "too_long"
        )
    if draft.mode not in MODES:
        problems.add("mode", f"must be one of {', '.join(MODES)}", "unknown_mode")
    if started < partnership.started_at:
        problems.add(
            "started_at",
            f"is before the partnership started ({partnership.started_at.isoformat()})",
            "before_partnership",
        )
    elif partnership.ended_at is not None and started >= partnership.ended_at:
        problems.add(
            "started_at", f"is after the partnership ended ({partnership.ended_at.isoformat()})", "after_partnership"
        )
    problems.raise_if_any()


def validate_new_meeting(
    draft: MeetingDraft,
    actor: Actor,
    partnership: Partnership | None,
    now: datetime,
    logged: Iterable[LoggedMeeting],
) -> Partnership:
    """Refuse the meeting with the field and the reason, or return its partnership."""
    p = authorize(actor, partnership, draft.partnership_id)
    if not p.active:
        raise Conflict(
            "partnership_id",
            f"partnership {p.partnership_id!r} is not active (ended {p.ended_at.isoformat() if p.ended_at else ''})",
            "not_active",
        )
    check_meeting(draft, p, now)
    fingerprint = draft.fingerprint()
    for meeting in logged:
        if not meeting.voided and meeting.fingerprint == fingerprint:
            raise Conflict(
                "started_at", f"the same meeting is already logged as {meeting.meeting_id}", "duplicate"
            )
    return p


def apply_change(current: MeetingDraft, change: MeetingChange) -> MeetingDraft:
    return MeetingDraft(
        partnership_id=current.partnership_id,
        started_at=change.started_at or current.started_at,
        duration_minutes=current.duration_minutes if change.duration_minutes is None else change.duration_minutes,
        mode=change.mode or current.mode,
        intentional=current.intentional if change.intentional is None else change.intentional,
        topics=current.topics if change.topics is None else change.topics,
        notes=current.notes,
    )


def validate_correction(
    current: MeetingDraft,
    change: MeetingChange,
    actor: Actor,
    partnership: Partnership | None,
    now: datetime,
    logged: Iterable[LoggedMeeting],
    meeting_id: str,
) -> MeetingDraft:
    """A correction must still be a valid meeting (a void needs only a reason)."""
    p = authorize(actor, partnership, current.partnership_id)
    if change.voided:
        if not change.reason.strip():
            raise Conflict("reason", "voiding a meeting needs a reason", "reason_required")
        return current
    corrected = apply_change(current, change)
    if corrected == current:
        raise Conflict("body", "the correction changes nothing", "no_change")
    check_meeting(corrected, p, now)
    fingerprint = corrected.fingerprint()
    for meeting in logged:
        if meeting.meeting_id != meeting_id and not meeting.voided and meeting.fingerprint == fingerprint:
            raise Conflict("started_at", f"the same meeting is already logged as {meeting.meeting_id}", "duplicate")
    return corrected
