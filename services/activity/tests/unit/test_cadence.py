"""Every cadence rule, across month, semester and school-year boundaries and time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.activity.domain.cadence import (
    Compliance,
    MeetingFact,
    MeetingSummary,
    PartnershipFacts,
    Status,
    evaluate,
    judged_months,
)
from shared.contracts.program import CadencePolicy, ProgramPolicy

pytestmark = pytest.mark.unit
DENVER = ZoneInfo("America/Denver")


def local(y: int, m: int, d: int, hh: int = 12, mm: int = 0, tz: ZoneInfo = DENVER) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=tz).astimezone(UTC)


def policy(tz: str = "America/Denver", **cadence: object) -> ProgramPolicy:
    # Each test switches on only the rules it is about.
    base: dict[str, object] = {
        "intentional_meetings_per_month": None, "early_months": None, "early_meetings_per_month": None,
        "hours_per_school_year": None, "pips_per_semester": None, "first_meeting_within_days": None,
        "new_member_meeting_every_days": None, "meeting_every_days": None,
    }
    base.update(cadence)
    return ProgramPolicy(timezone=tz, cadence=CadencePolicy(**base))


def facts(started: datetime, meetings: list[MeetingFact] | MeetingSummary | None = None, pips: list[date] | None = None,
          ended: datetime | None = None) -> PartnershipFacts:
    return PartnershipFacts(started, ended, [] if meetings is None else meetings, pips or [])


def meet(at: datetime, minutes: int = 60, intentional: bool = True) -> MeetingFact:
    return MeetingFact(at, minutes, intentional)


def finding(c: Compliance, rule: str) -> tuple[Status, object, object, str]:
    [f] = [f for f in c.findings if f.rule == rule]
    return f.status, f.actual, f.expected, f.period


# -- intentional meetings per month ---------------------------------------------------------------
MONTHLY = "intentional_meetings_per_month"


def test_judged_months_are_complete_months_the_partnership_covered() -> None:
    assert judged_months(date(2026, 9, 1), None, date(2026, 11, 20)) == ["2026-09", "2026-10"]
    assert judged_months(date(2026, 9, 2), None, date(2026, 11, 20)) == ["2026-10"]
    assert judged_months(date(2026, 9, 2), date(2026, 11, 5), date(2027, 1, 20)) == ["2026-10"]


def test_two_intentional_meetings_a_month_on_track_behind_and_at_risk() -> None:
    p = policy(intentional_meetings_per_month=2)
    start = local(2026, 9, 1, 8)
    now = local(2026, 12, 3)
    ok = [meet(local(2026, 9, 3)), meet(local(2026, 9, 20)), meet(local(2026, 10, 2)), meet(local(2026, 10, 9)),
          meet(local(2026, 11, 4)), meet(local(2026, 11, 25))]
    assert finding(evaluate(p, facts(start, ok), now), MONTHLY) == (Status.ON_TRACK, 2, 2, "2026-11")
    one_in_november = ok[:5]
    c = evaluate(p, facts(start, one_in_november), now)
    assert finding(c, MONTHLY) == (Status.BEHIND, 1, 2, "2026-11")
    assert c.status == Status.BEHIND
    assert c.reasons == ["2026-11: 1 intentional meeting, 2 required"]
    short_twice = ok[:3] + ok[4:5]
    c = evaluate(p, facts(start, short_twice), now)
    assert finding(c, MONTHLY)[0] == Status.AT_RISK
    assert "two months short" in c.reasons[0]


def test_only_intentional_meetings_count() -> None:
    p = policy(intentional_meetings_per_month=2)
    meetings = [meet(local(2026, 11, 4)), meet(local(2026, 11, 5), intentional=False)]
    c = evaluate(p, facts(local(2026, 10, 20), meetings), local(2026, 12, 1))
    assert finding(c, MONTHLY)[:3] == (Status.BEHIND, 1, 2)


def test_a_meeting_at_2330_local_on_the_31st_counts_for_that_month_not_the_next() -> None:
    p = policy(intentional_meetings_per_month=2)
    late_on_31st = meet(local(2026, 10, 31, 23, 30))  # 05:30 UTC on 1 November
    assert late_on_31st.started_at.month == 11
    c = evaluate(p, facts(local(2026, 9, 20), [meet(local(2026, 10, 2)), late_on_31st]), local(2026, 11, 10))
    assert finding(c, MONTHLY) == (Status.ON_TRACK, 2, 2, "2026-10")
    # The same instant in a UTC program falls in November, and October is short.
    c = evaluate(policy("UTC", intentional_meetings_per_month=2),
                 facts(local(2026, 9, 20), [meet(local(2026, 10, 2)), late_on_31st]), local(2026, 11, 10))
    assert finding(c, MONTHLY) == (Status.BEHIND, 1, 2, "2026-10")


def test_the_month_turns_at_local_midnight_for_now_as_well() -> None:
    p = policy("Pacific/Auckland", intentional_meetings_per_month=1)
    start = datetime(2026, 8, 31, 12, 0, tzinfo=UTC)  # 1 September 00:00 in Auckland (NZST)
    # 30 Sep 11:30 UTC is 1 Oct 00:30 in Auckland: September is complete there, and had no meeting.
    c = evaluate(p, facts(start), datetime(2026, 9, 30, 11, 30, tzinfo=UTC))
    assert finding(c, MONTHLY) == (Status.BEHIND, 0, 1, "2026-09")
    c = evaluate(p, facts(start), datetime(2026, 9, 30, 10, 30, tzinfo=UTC))
    assert finding(c, MONTHLY)[0] == Status.ON_TRACK and finding(c, MONTHLY)[3] == "2026-09"


def test_first_partial_month_is_in_progress_not_judged() -> None:
    p = policy(intentional_meetings_per_month=2)
    c = evaluate(p, facts(local(2026, 11, 10), [meet(local(2026, 11, 12))]), local(2026, 11, 28))
    assert finding(c, MONTHLY) == (Status.ON_TRACK, 1, 2, "2026-11")
    assert "in progress" in c.findings[0].reason


def test_two_a_month_in_the_first_six_months_then_as_needed() -> None:
    p = policy(early_months=6, early_meetings_per_month=2, intentional_meetings_per_month=None)
    start = local(2026, 8, 1, 9)
    # Month 6 (January) is still early: one meeting is short.
    c = evaluate(p, facts(start, [meet(local(2027, 1, 10))]), local(2027, 2, 5))
    assert finding(c, MONTHLY)[:4] == (Status.AT_RISK, 1, 2, "2027-01")
    # February is the seventh month: as needed, so months after are not judged.
    c = evaluate(p, facts(start, [meet(local(2027, 1, 10)), meet(local(2027, 1, 11))]), local(2027, 4, 2))
    assert finding(c, MONTHLY)[:4] == (Status.ON_TRACK, 2, 2, "2027-01")


def test_early_rate_then_a_lower_steady_rate() -> None:
    p = policy(early_months=2, early_meetings_per_month=3, intentional_meetings_per_month=1)
    start = local(2026, 9, 1, 9)
    meetings = [meet(local(2026, 11, 3))]
    c = evaluate(p, facts(start, meetings), local(2026, 12, 2))
    assert finding(c, MONTHLY) == (Status.ON_TRACK, 1, 1, "2026-11")
    c = evaluate(p, facts(start, meetings), local(2026, 11, 2))
    assert finding(c, MONTHLY)[:3] == (Status.AT_RISK, 0, 3)


def test_months_after_the_partnership_ended_are_not_judged() -> None:
    p = policy(intentional_meetings_per_month=2)
    f = facts(local(2026, 9, 1, 8), [meet(local(2026, 9, 2)), meet(local(2026, 9, 3))], ended=local(2026, 10, 15))
    assert finding(evaluate(p, f, local(2027, 1, 10)), MONTHLY) == (Status.ON_TRACK, 2, 2, "2026-09")


# -- hours per school year -----------------------------------------------------------------------
HOURS = "hours_per_school_year"


def test_hours_pro_rata_of_the_school_year_elapsed() -> None:
    p = policy(hours_per_school_year=Decimal("10"))
    start = local(2026, 8, 1, 8)
    # Judged to 31 Oct: 92 of 365 days -> 2.52 h expected.
    now = local(2026, 11, 15)
    assert finding(evaluate(p, facts(start, [meet(local(2026, 9, 1), 152)]), now), HOURS)[:3] == (
        Status.ON_TRACK, Decimal("2.53"), Decimal("2.52"))
    assert finding(evaluate(p, facts(start, [meet(local(2026, 9, 1), 150)]), now), HOURS)[:3] == (
        Status.BEHIND, Decimal("2.50"), Decimal("2.52"))
    assert finding(evaluate(p, facts(start, [meet(local(2026, 9, 1), 75)]), now), HOURS)[0] == Status.AT_RISK
    # All meetings count, intentional or not.
    assert finding(evaluate(p, facts(start, [meet(local(2026, 9, 1), 152, False)]), now), HOURS)[0] == (
        Status.ON_TRACK)


def test_hours_of_a_partnership_matched_mid_year_start_from_the_match() -> None:
    p = policy(hours_per_school_year=Decimal("10"))
    c = evaluate(p, facts(local(2027, 1, 1, 8)), local(2027, 1, 20))
    assert finding(c, HOURS)[:3] == (Status.ON_TRACK, Decimal("0.00"), Decimal("0.00"))
    c = evaluate(p, facts(local(2027, 1, 1, 8), [meet(local(2027, 1, 5), 51)]), local(2027, 2, 1))
    assert finding(c, HOURS)[:3] == (Status.ON_TRACK, Decimal("0.85"), Decimal("0.85"))


def test_hours_count_only_meetings_inside_the_school_year_in_local_time() -> None:
    p = policy(hours_per_school_year=Decimal("10"))
    # 31 July 23:30 local is still the previous school year (1 August in UTC).
    before_year = meet(local(2026, 7, 31, 23, 30), 480)
    c = evaluate(p, facts(local(2026, 7, 1), [before_year]), local(2026, 9, 3))
    assert finding(c, HOURS)[:3] == (Status.AT_RISK, Decimal("0.00"), Decimal("0.85"))
    # After the year ends, the whole year is judged against the full target.
    year = [meet(local(2026, 9, d), 480) for d in (1, 2)]
    assert finding(evaluate(p, facts(local(2026, 7, 1), year), local(2027, 8, 20)), HOURS)[:3] == (
        Status.ON_TRACK, Decimal("16.00"), Decimal("10.00"))
    assert finding(evaluate(p, facts(local(2026, 7, 1), year[:1]), local(2027, 8, 20)), HOURS)[:3] == (
        Status.BEHIND, Decimal("8.00"), Decimal("10.00"))


def test_no_hours_finding_before_the_school_year() -> None:
    p = policy(hours_per_school_year=Decimal("10"))
    assert evaluate(p, facts(local(2026, 6, 1)), local(2026, 7, 20)).findings == []


# -- PIPs per semester ---------------------------------------------------------------------------
PIPS = "pips_per_semester"


def test_pips_per_semester_judged_when_a_semester_ends() -> None:
    p = policy(pips_per_semester=2)
    start = local(2026, 8, 1, 8)
    c = evaluate(p, facts(start, pips=[date(2026, 9, 1)]), local(2027, 1, 15, 20))
    assert finding(c, PIPS) == (Status.ON_TRACK, 1, 2, "Fall")  # Fall is still running on 15 January
    c = evaluate(p, facts(start, pips=[date(2026, 9, 1), date(2027, 1, 16)]), local(2027, 1, 16, 9))
    assert finding(c, PIPS) == (Status.BEHIND, 1, 2, "Fall")
    c = evaluate(p, facts(start, pips=[date(2026, 9, 1), date(2027, 1, 15)]), local(2027, 1, 16, 9))
    assert finding(c, PIPS) == (Status.ON_TRACK, 2, 2, "Fall")


def test_pips_short_two_semesters_in_a_row_is_at_risk() -> None:
    p = policy(pips_per_semester=2)
    c = evaluate(p, facts(local(2026, 8, 1, 8), pips=[date(2026, 10, 1)]), local(2027, 8, 2))
    assert finding(c, PIPS)[:2] == (Status.AT_RISK, 0)


def test_a_semester_the_partnership_joined_late_is_not_judged() -> None:
    p = policy(pips_per_semester=2)
    c = evaluate(p, facts(local(2026, 10, 1)), local(2027, 1, 20))
    assert finding(c, PIPS) == (Status.ON_TRACK, 0, 2, "Spring")


# -- first meeting, and a meeting every D days ------------------------------------------------------
FIRST = "first_meeting_within_days"


def test_first_meeting_within_n_days_of_the_match() -> None:
    p = policy(first_meeting_within_days=14)
    start = local(2026, 11, 1, 9)
    assert finding(evaluate(p, facts(start), start + timedelta(days=14)), FIRST)[0] == Status.ON_TRACK
    c = evaluate(p, facts(start), start + timedelta(days=14, minutes=1))
    assert finding(c, FIRST)[:3] == (Status.AT_RISK, 14, 14)
    assert c.status == Status.AT_RISK and "no meeting" in c.reasons[0]
    c = evaluate(p, facts(start, [meet(local(2026, 11, 20))]), local(2026, 12, 1))
    assert finding(c, FIRST)[:3] == (Status.ON_TRACK, 19, 14)


def test_new_members_meet_every_three_months_for_their_first_year() -> None:
    p = policy(new_member_meeting_every_days=90, new_member_months=12)
    start = local(2026, 1, 10)
    last = local(2026, 3, 1)
    rule = "new_member_meeting_every_days"
    assert finding(evaluate(p, facts(start, [meet(last)]), last + timedelta(days=90)), rule)[:2] == (
        Status.ON_TRACK, 90)
    assert finding(evaluate(p, facts(start, [meet(last)]), last + timedelta(days=91)), rule)[0] == Status.BEHIND
    assert finding(evaluate(p, facts(start, [meet(last)]), last + timedelta(days=181)), rule)[0] == Status.AT_RISK
    # No meeting yet: the gap runs from the match.
    assert finding(evaluate(p, facts(start), start + timedelta(days=100)), rule)[0] == Status.BEHIND
    # After the first twelve months the partnership is no longer new: the rule no longer applies.
    assert evaluate(p, facts(start, [meet(last)]), local(2027, 1, 11)).findings == []


def test_everyone_meets_at_least_once_a_year() -> None:
    p = policy(meeting_every_days=365)
    start = local(2024, 1, 10)
    last = local(2025, 2, 1)
    assert evaluate(p, facts(start, [meet(last)]), local(2026, 2, 1)).status == Status.ON_TRACK
    c = evaluate(p, facts(start, [meet(last)]), local(2026, 2, 2))
    assert c.status == Status.BEHIND and c.reasons == [
        "366 days since the last meeting; at least one meeting every 365 days"]


def test_status_is_the_worst_finding_and_every_rule_reports_its_numbers() -> None:
    p = policy(intentional_meetings_per_month=2, hours_per_school_year=Decimal("10"), pips_per_semester=2,
               first_meeting_within_days=14, meeting_every_days=365)
    start = local(2026, 8, 1, 8)
    meetings = [meet(local(2026, 8, d), 90) for d in (3, 10)] + [meet(local(2026, 9, d), 90) for d in (3, 10)]
    meetings += [meet(local(2026, 10, 5), 90)]
    c = evaluate(p, facts(start, meetings, [date(2026, 10, 1)]), local(2026, 11, 3))
    assert {f.rule: f.status for f in c.findings} == {
        MONTHLY: Status.BEHIND, HOURS: Status.ON_TRACK, PIPS: Status.ON_TRACK, FIRST: Status.ON_TRACK,
        "meeting_every_days": Status.ON_TRACK,
    }
    assert c.status == Status.BEHIND
    assert [f.as_dict()["rule"] for f in c.findings] == [MONTHLY, HOURS, PIPS, FIRST, "meeting_every_days"]
    assert c.findings[1].as_dict()["actual"] == "7.50"


def test_default_policy_is_two_intentional_meetings_two_pips_and_a_first_meeting_in_14_days() -> None:
    c = evaluate(ProgramPolicy(), facts(local(2026, 11, 1, 9)), local(2026, 11, 10))
    assert c.status == Status.ON_TRACK
    assert [f.rule for f in c.findings] == [MONTHLY, PIPS, FIRST]


# -- the meeting summary --------------------------------------------------------------------------
EVERY_RULE = policy("Pacific/Auckland", intentional_meetings_per_month=2, early_months=3, early_meetings_per_month=3,
                    hours_per_school_year=Decimal("20"), pips_per_semester=1, first_meeting_within_days=10,
                    new_member_meeting_every_days=14, meeting_every_days=30)
START = datetime(2026, 8, 20, 3, tzinfo=UTC)
# Meetings within 300 days of the match, at any minute (local month ends and school-year ends fall
# at different UTC instants in Auckland).
MEETINGS = st.lists(st.builds(
    MeetingFact, st.integers(0, 300 * 24 * 60).map(lambda m: START + timedelta(minutes=m)),
    st.integers(1, 480), st.booleans()), max_size=40)


@settings(max_examples=200, deadline=None)
@given(MEETINGS, st.integers(0, 40), st.integers(0, 330))
def test_a_summary_kept_one_meeting_at_a_time_judges_as_all_the_meetings_do(
        meetings: list[MeetingFact], split: int, day: int) -> None:
    kept = MeetingSummary.of(EVERY_RULE, meetings[:split])
    for m in meetings[split:]:
        kept.add(EVERY_RULE, [m])
    assert kept == MeetingSummary.of(EVERY_RULE, meetings)
    assert MeetingSummary.from_json(kept.to_json()) == kept
    now = START + timedelta(days=day, hours=7)
    if kept.fits(EVERY_RULE, now):
        assert evaluate(EVERY_RULE, facts(START, kept), now) == evaluate(EVERY_RULE, facts(START, meetings), now)
    else:
        assert any(m.started_at > now for m in meetings)
        with pytest.raises(ValueError, match="after now"):
            evaluate(EVERY_RULE, facts(START, kept), now)


def test_a_summary_of_another_zone_or_school_year_is_not_used() -> None:
    kept = MeetingSummary.of(EVERY_RULE, [meet(local(2026, 9, 3))])
    other_zone = policy("America/Denver", meeting_every_days=30)
    assert not kept.fits(other_zone, local(2026, 10, 1))
    with pytest.raises(ValueError, match="another zone"):
        kept.add(other_zone, [meet(local(2026, 9, 4))])
    next_year = EVERY_RULE.model_copy(update={"school_year": EVERY_RULE.school_year.model_copy(
        update={"start": date(2027, 8, 1), "end": date(2028, 7, 31), "semesters": []})})
    assert not kept.fits(next_year, local(2026, 10, 1))
    assert kept.fits(EVERY_RULE, local(2026, 10, 1))
