"""The events the fault tests play as the other services would, and the figures they expect."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from shared.contracts.activity import ClosedEntry, MeetingLogged, MonthClosed
from shared.contracts.base import Event
from shared.contracts.matching import MenteeEnrolled, MenteeMatched, MentorEnrolled, ProgramConfigured
from shared.contracts.program import CadencePolicy, ProgramPolicy, TimeEntryKind

MATCHED_AT = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
CLOSED_MONTH = "2026-10"
# Only the hours rule is on: each meeting moves the partnership's status in a known direction,
# so a meeting applied twice or lost shows in the hours and in PartnershipAtRisk.
POLICY = ProgramPolicy(cadence=CadencePolicy(
    intentional_meetings_per_month=None, pips_per_semester=None, first_meeting_within_days=None,
    hours_per_school_year=Decimal("10"),
))


class Program:
    def __init__(self, mentors: int, tag: str = "") -> None:
        self.id = f"prog-{tag or uuid.uuid4().hex[:6]}"
        self.n = mentors

    def mentor(self, i: int) -> str:
        return f"{self.id}-mentor-{i}"

    def mentee(self, i: int) -> str:
        return f"{self.id}-mentee-{i}"

    def partnership(self, i: int) -> str:
        return f"{self.id}-p-{i}"

    def email(self, person: str) -> str:
        return f"{person}@example.org"

    def configured(self) -> ProgramConfigured:
        return ProgramConfigured(program_id=self.id, name="Fault program", policy=POLICY)

    def people(self) -> list[Event]:
        out: list[Event] = [self.configured()]
        for i in range(self.n):
            out.append(MentorEnrolled(person_id=self.mentor(i), program_id=self.id, name=f"Mentor {i}",
                                      email=self.email(self.mentor(i)), capacity=2))
            out.append(MenteeEnrolled(person_id=self.mentee(i), program_id=self.id, name=f"Mentee {i}",
                                      email=self.email(self.mentee(i))))
        return out

    def matched(self, i: int) -> MenteeMatched:
        return MenteeMatched(partnership_id=self.partnership(i), program_id=self.id, mentor_id=self.mentor(i),
                             mentee_id=self.mentee(i), started_at=MATCHED_AT)

    def matches(self) -> list[Event]:
        return [self.matched(i) for i in range(self.n)]

    def meetings(self, per_partnership: int, minutes: int = 30) -> list[Event]:
        out: list[Event] = []
        for k in range(per_partnership):
            for i in range(self.n):
                out.append(MeetingLogged(
                    meeting_id=f"{self.partnership(i)}-m{k}", partnership_id=self.partnership(i),
                    program_id=self.id, mentor_id=self.mentor(i), mentee_id=self.mentee(i),
                    started_at=MATCHED_AT + timedelta(days=7 * (k + 1)), duration_minutes=minutes,
                    mode="video", intentional=True,
                ))
        return out

    # -- pay: October closed for each mentor ---------------------------------------------------
    def meeting_minutes(self, i: int) -> int:
        return 60 * (i + 1)

    def month_closed(self, i: int) -> MonthClosed:
        return MonthClosed(
            program_id=self.id, mentor_id=self.mentor(i), month=CLOSED_MONTH,
            minutes_by_kind={TimeEntryKind.MEETING: self.meeting_minutes(i), TimeEntryKind.FEEDBACK_REVIEW: 30},
            entries=[
                ClosedEntry(entry_id=f"{self.mentor(i)}-e1", kind=TimeEntryKind.MEETING,
                            work_date=date(2026, 10, 6), minutes=self.meeting_minutes(i)),
                ClosedEntry(entry_id=f"{self.mentor(i)}-e2", kind=TimeEntryKind.FEEDBACK_REVIEW,
                            work_date=date(2026, 10, 7), minutes=30),
            ],
        )

    def month_closes(self) -> list[Event]:
        return [self.month_closed(i) for i in range(self.n)]

    def expected_pay(self, i: int) -> Decimal:
        """Default rates: meeting 40.00/h, feedback review 30.00/h."""
        return (Decimal(self.meeting_minutes(i)) / 60 * Decimal("40.00") + Decimal("15.00")).quantize(Decimal("0.01"))
