"""Cadence compliance of a partnership, from its program's rules (CadencePolicy).

Every rule a program switches on gives a Finding with its numbers; the partnership's status is
the worst finding. The rules, and when they turn a partnership `behind` or `at_risk`:

- intentional meetings per month (or the early-months rate, for "2-3 a month in the first six
  months, then as needed"): judged on complete months the partnership was active for all of;
  the last such month short -> behind; the last two short -> at_risk.
- hours per school year: meeting hours in the school year against the target pro rata of the days
  elapsed up to the end of the last complete month (from the later of the school year's start and
  the match); below -> behind; below half of it -> at_risk.
- PIPs per semester: judged on ended semesters the partnership was active for all of; the last
  one short -> behind; the last two short -> at_risk.
- first meeting within N days of the match: no meeting by then -> at_risk.
- at least one meeting every D days (new members, during their first `new_member_months`
  months; and everyone): the gap since the last meeting (or the match) over D -> behind, over
  2D -> at_risk.

All dates are local dates in the program's time zone.

The rules read a partnership's meetings only through a MeetingSummary (intentional meetings per
month, minutes in the school year, first and last meeting). It can be made from the meetings, or
kept up to date one meeting at a time (`add`), so judging a partnership costs the same whatever
its history; `evaluate` takes either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

from services.activity.domain.calendar import add_months, first_day, last_day, month_of, months_between
from shared.clock import local_date
from shared.contracts.program import ProgramPolicy

HOURS = Decimal("0.01")


class Status(StrEnum):
    ON_TRACK = "on_track"
    BEHIND = "behind"
    AT_RISK = "at_risk"


SEVERITY = {Status.ON_TRACK: 0, Status.BEHIND: 1, Status.AT_RISK: 2}


def worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=SEVERITY.__getitem__, default=Status.ON_TRACK)


@dataclass(frozen=True)
class MeetingFact:
    started_at: datetime
    minutes: int
    intentional: bool


@dataclass(frozen=True)
class Finding:
    rule: str
    status: Status
    reason: str
    actual: Decimal | int
    expected: Decimal | int
    period: str

    def as_dict(self) -> dict[str, str | int]:
        return {
            "rule": self.rule, "status": self.status.value, "reason": self.reason,
            "actual": str(self.actual) if isinstance(self.actual, Decimal) else self.actual,
            "expected": str(self.expected) if isinstance(self.expected, Decimal) else self.expected,
            "period": self.period,
        }


@dataclass(frozen=True)
class Compliance:
    status: Status
    findings: list[Finding] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.findings if f.status != Status.ON_TRACK]


def school_year_key(policy: ProgramPolicy) -> str:
    return _school_year_key(policy.school_year.start, policy.school_year.end)


@lru_cache(maxsize=256)  # asked several times per partnership judged, of a handful of school years
def _school_year_key(start: date, end: date) -> str:
    return f"{start.isoformat()}..{end.isoformat()}"


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps builds an encoder per call


@dataclass
class MeetingSummary:
    """What the rules read of a partnership's (standing) meetings, for one time zone and school
    year: intentional meetings per local month, meeting minutes in the school year, and the
    first and last meeting."""

    timezone: str
    school_year: str
    intentional_by_month: dict[str, int] = field(default_factory=dict)
    school_year_minutes: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None

    @classmethod
    def empty(cls, policy: ProgramPolicy) -> MeetingSummary:
        return cls(policy.timezone, school_year_key(policy))

    @classmethod
    def of(cls, policy: ProgramPolicy, meetings: Iterable[MeetingFact]) -> MeetingSummary:
        summary = cls.empty(policy)
        summary.add(policy, meetings)
        return summary

    def add(self, policy: ProgramPolicy, meetings: Iterable[MeetingFact]) -> None:
        """Count more meetings in (the summary must be of this policy's zone and school year)."""
        if self.timezone != policy.timezone or self.school_year != school_year_key(policy):
            raise ValueError("the meeting summary is of another zone or school year than the policy's")
        tz, sy = self.timezone, policy.school_year
        for m in meetings:
            day = local_date(m.started_at, tz)
            if m.intentional:
                month = f"{day.year:04d}-{day.month:02d}"
                self.intentional_by_month[month] = self.intentional_by_month.get(month, 0) + 1
            if sy.start <= day <= sy.end:
                self.school_year_minutes += m.minutes
            if self.first_at is None or m.started_at < self.first_at:
                self.first_at = m.started_at
            if self.last_at is None or m.started_at > self.last_at:
                self.last_at = m.started_at

    def fits(self, policy: ProgramPolicy, now: datetime) -> bool:
        """Whether the rules can judge from it at `now`: the same zone and school year as the
        policy's, and no meeting after `now` (the gap rule wants the last meeting up to now)."""
        return (self.timezone == policy.timezone and self.school_year == school_year_key(policy)
                and (self.last_at is None or self.last_at <= now))

    def to_json(self) -> str:
        return _COMPACT_JSON({
            "tz": self.timezone, "sy": self.school_year, "months": self.intentional_by_month,
            "sy_minutes": self.school_year_minutes,
            "first": self.first_at.isoformat() if self.first_at else None,
            "last": self.last_at.isoformat() if self.last_at else None,
        })

    @classmethod
    def from_json(cls, raw: str) -> MeetingSummary:
        d: dict[str, Any] = json.loads(raw)
        return cls(d["tz"], d["sy"], d["months"], d["sy_minutes"],
                   datetime.fromisoformat(d["first"]) if d["first"] else None,
                   datetime.fromisoformat(d["last"]) if d["last"] else None)


@dataclass(frozen=True)
class PartnershipFacts:
    started_at: datetime
    ended_at: datetime | None
    meetings: Sequence[MeetingFact] | MeetingSummary  # a summary must fit the policy and now
    pips_completed: Sequence[date]


@dataclass(frozen=True)
class _Judged:
    """The facts as the rules read them, with the local dates they share worked out once."""

    started_at: datetime
    ended_at: datetime | None
    meetings: MeetingSummary
    last_past: datetime | None  # the last meeting up to now
    pips_completed: Sequence[date]
    today: date
    match_day: date
    end_day: date | None


def _judged(policy: ProgramPolicy, facts: PartnershipFacts, now: datetime) -> _Judged:
    tz = policy.timezone
    if isinstance(facts.meetings, MeetingSummary):
        if not facts.meetings.fits(policy, now):
            raise ValueError("the meeting summary is of another zone or school year, or has a meeting after now")
        summary, last_past = facts.meetings, facts.meetings.last_at
    else:
        summary = MeetingSummary.of(policy, facts.meetings)
        last_past = max((m.started_at for m in facts.meetings if m.started_at <= now), default=None)
    return _Judged(facts.started_at, facts.ended_at, summary, last_past, facts.pips_completed,
                   local_date(now, tz), local_date(facts.started_at, tz),
                   local_date(facts.ended_at, tz) if facts.ended_at else None)


def _plural(n: int | Decimal, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def required_per_month(policy: ProgramPolicy, month: str, match_day: date) -> int | None:
    c = policy.cadence
    early = c.early_months and c.early_meetings_per_month is not None
    if early and first_day(month) < add_months(match_day, c.early_months or 0):
        return c.early_meetings_per_month
    return c.intentional_meetings_per_month


def judged_months(match_day: date, end_day: date | None, today: date) -> list[str]:
    """Complete months (before today's month) the partnership was active for all of."""
    return list(_judged_months(match_day, end_day, today))


@lru_cache(maxsize=4096)  # partnerships matched the same day share it (pure, on dates)
def _judged_months(match_day: date, end_day: date | None, today: date) -> tuple[str, ...]:
    first = month_of(match_day) if match_day.day == 1 else month_of(add_months(match_day.replace(day=1), 1))
    last_complete = month_of(add_months(today.replace(day=1), -1))
    months = months_between(first, last_complete)
    if end_day is not None:
        months = [m for m in months if last_day(m) < end_day]
    return tuple(months)


def monthly_meetings(policy: ProgramPolicy, facts: _Judged) -> Finding | None:
    c = policy.cadence
    if c.intentional_meetings_per_month is None and c.early_meetings_per_month is None:
        return None
    match_day, today = facts.match_day, facts.today
    counts = facts.meetings.intentional_by_month
    judged = [(mo, r) for mo in _judged_months(match_day, facts.end_day, today)
              if (r := required_per_month(policy, mo, match_day)) is not None]
    if not judged:
        current = month_of(today)
        required = required_per_month(policy, current, match_day) or 0
        n = counts.get(current, 0)
        return Finding("intentional_meetings_per_month", Status.ON_TRACK,
                       f"{current} in progress: {_plural(n, 'intentional meeting')} of {required}",
                       n, required, current)
    short = [(mo, r) for mo, r in judged if counts.get(mo, 0) < r]
    last_month, last_required = judged[-1]
    n = counts.get(last_month, 0)
    if not short or short[-1][0] != last_month:
        return Finding("intentional_meetings_per_month", Status.ON_TRACK,
                       f"{last_month}: {_plural(n, 'intentional meeting')} of {last_required} required",
                       n, last_required, last_month)
    status = Status.BEHIND
    reason = f"{last_month}: {_plural(n, 'intentional meeting')}, {last_required} required"
    if len(judged) >= 2:
        prev_month, prev_required = judged[-2]
        if counts.get(prev_month, 0) < prev_required:
            status = Status.AT_RISK
            reason += f"; {prev_month}: {counts.get(prev_month, 0)} of {prev_required} (two months short)"
    return Finding("intentional_meetings_per_month", status, reason, n, last_required, last_month)


def hours_per_school_year(policy: ProgramPolicy, facts: _Judged) -> Finding | None:
    target = policy.cadence.hours_per_school_year
    if target is None:
        return None
    sy = policy.school_year
    today = facts.today
    period = f"{sy.start.isoformat()}..{sy.end.isoformat()}"
    if today < sy.start:
        return None
    hours = (Decimal(facts.meetings.school_year_minutes) / 60).quantize(HOURS)
    window_start = max(sy.start, facts.match_day)
    # Judge up to the end of the last complete month (or the school year's / partnership's end).
    judged_until = min(today.replace(day=1) - timedelta(days=1), sy.end)
    if facts.end_day is not None:
        judged_until = min(judged_until, facts.end_day)
    year_days = (sy.end - sy.start).days + 1
    elapsed = max(0, (judged_until - window_start).days + 1)
    expected = (Decimal(target) * elapsed / year_days).quantize(HOURS)
    if hours >= expected:
        status = Status.ON_TRACK
    elif hours * 2 >= expected:
        status = Status.BEHIND
    else:
        status = Status.AT_RISK
    reason = f"{hours} meeting hours this school year; {expected} expected by {judged_until.isoformat()} " \
             f"({target} for the year)"
    return Finding("hours_per_school_year", status, reason, hours, expected, period)


def pips_per_semester(policy: ProgramPolicy, facts: _Judged) -> Finding | None:
    target = policy.cadence.pips_per_semester
    if target is None:
        return None
    today, match_day, end_day = facts.today, facts.match_day, facts.end_day
    semesters = sorted(policy.school_year.semesters, key=lambda s: s.start)

    def count(start: date, end: date) -> int:
        return sum(1 for d in facts.pips_completed if start <= d <= end)

    judged = [s for s in semesters
              if s.end < today and match_day <= s.start and (end_day is None or s.end < end_day)]
    if not judged:
        current = next((s for s in semesters if s.start <= today <= s.end), None)
        if current is None:
            return None
        n = count(current.start, current.end)
        return Finding("pips_per_semester", Status.ON_TRACK,
                       f"{current.name} in progress: {_plural(n, 'PIP')} completed of {target}",
                       n, target, current.name)
    last = judged[-1]
    n = count(last.start, last.end)
    if n >= target:
        return Finding("pips_per_semester", Status.ON_TRACK, f"{last.name}: {_plural(n, 'PIP')} of {target}",
                       n, target, last.name)
    status = Status.BEHIND
    reason = f"{last.name}: {_plural(n, 'PIP')} completed, {target} required"
    if len(judged) >= 2:
        prev = judged[-2]
        if count(prev.start, prev.end) < target:
            status = Status.AT_RISK
            reason += f"; {prev.name}: {count(prev.start, prev.end)} (two semesters short)"
    return Finding("pips_per_semester", status, reason, n, target, last.name)


def first_meeting(policy: ProgramPolicy, facts: _Judged, now: datetime) -> Finding | None:
    days = policy.cadence.first_meeting_within_days
    if days is None:
        return None
    tz = policy.timezone
    deadline = facts.started_at + timedelta(days=days)
    period = f"{facts.match_day.isoformat()}..{local_date(deadline, tz).isoformat()}"
    first = facts.meetings.first_at
    if first is not None:
        waited = (local_date(first, tz) - facts.match_day).days
        return Finding("first_meeting_within_days", Status.ON_TRACK,
                       f"first meeting {waited} days after the match (within {days} asked)"
                       if waited <= days else f"first meeting {waited} days after the match ({days} asked)",
                       waited, days, period)
    waited = (facts.today - facts.match_day).days
    if now <= deadline:
        return Finding("first_meeting_within_days", Status.ON_TRACK,
                       f"no meeting yet, {waited} days after the match ({days} allowed)", waited, days, period)
    return Finding("first_meeting_within_days", Status.AT_RISK,
                   f"no meeting {waited} days after the match; the first was due within {days}",
                   waited, days, period)


def _gap_rule(rule: str, every: int, facts: _Judged, tz: str, period: str) -> Finding:
    past = facts.last_past
    since_day = local_date(past, tz) if past is not None else facts.match_day
    gap = (facts.today - since_day).days
    what = "the last meeting" if past is not None else "the match (no meeting yet)"
    if gap > 2 * every:
        status = Status.AT_RISK
    elif gap > every:
        status = Status.BEHIND
    else:
        status = Status.ON_TRACK
    return Finding(rule, status, f"{gap} days since {what}; at least one meeting every {every} days",
                   gap, every, period)


def meeting_gap(policy: ProgramPolicy, facts: _Judged) -> list[Finding]:
    c = policy.cadence
    tz = policy.timezone
    out: list[Finding] = []
    match_day = facts.match_day
    new_until = add_months(match_day, c.new_member_months)
    if c.new_member_meeting_every_days is not None and facts.today < new_until:
        out.append(_gap_rule("new_member_meeting_every_days", c.new_member_meeting_every_days, facts, tz,
                             f"{match_day.isoformat()}..{new_until.isoformat()}"))
    if c.meeting_every_days is not None:
        out.append(_gap_rule("meeting_every_days", c.meeting_every_days, facts, tz, "all"))
    return out


def evaluate(policy: ProgramPolicy, facts: PartnershipFacts, now: datetime) -> Compliance:
    """The partnership's status now, with a finding (and its numbers) per rule the program uses.
    ValueError when the facts carry a summary that does not fit (`MeetingSummary.fits`)."""
    judged = _judged(policy, facts, now)
    findings = [
        f for f in (
            monthly_meetings(policy, judged),
            hours_per_school_year(policy, judged),
            pips_per_semester(policy, judged),
            first_meeting(policy, judged, now),
        ) if f is not None
    ]
    findings += meeting_gap(policy, judged)
    return Compliance(worst([f.status for f in findings]), findings)
