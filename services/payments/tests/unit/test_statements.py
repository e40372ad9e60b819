"""Stipend arithmetic: examples a payroll clerk would check, then properties over any month."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payments.domain.statements import (
    CAP_KEY,
    LineType,
    MonthPay,
    StatementDraft,
    WorkEntry,
    month_pay,
    statement_lines,
)
from shared.contracts.program import PayPolicy, TimeEntryKind

pytestmark = pytest.mark.unit
K = TimeEntryKind
POLICY = PayPolicy()  # meeting 40, planning 30, workshop 50, feedback 30 an hour; planning <= 2x workshop


def entry(eid: str, kind: K, minutes: int, day: int = 3, month: int = 10, voided: bool = False) -> WorkEntry:
    return WorkEntry(eid, kind, date(2026, month, day), minutes, voided)


def test_a_line_per_entry_with_rate_and_amount_rounded_half_up() -> None:
    pay = month_pay("2026-10", [entry("a", K.MEETING, 50), entry("b", K.FEEDBACK_REVIEW, 1)], POLICY)
    # 50 min at 40.00/h = 33.333.. -> 33.33; 1 min at 30.00/h = 0.50 exactly
    assert [(p.entry.entry_id, p.rate, p.amount) for p in pay.entries.values()] == [
        ("a", Decimal("40.00"), Decimal("33.33")),
        ("b", Decimal("30.00"), Decimal("0.50")),
    ]
    assert pay.total == Decimal("33.83")
    half_cent = month_pay("2026-10", [entry("c", K.MEETING, 1)], PayPolicy(hourly_rates={K.MEETING: Decimal("0.30")}))
    assert half_cent.total == Decimal("0.01")  # 0.005 rounds up


def test_planning_is_paid_up_to_twice_the_workshop_hours() -> None:
    entries = [
        entry("w", K.WORKSHOP, 60, day=5),
        entry("p1", K.PLANNING, 90, day=1),
        entry("p2", K.PLANNING, 90, day=2),
    ]
    pay = month_pay("2026-10", entries, POLICY)
    assert pay.entries["p1"].paid_minutes == 90
    assert pay.entries["p2"].paid_minutes == 30
    assert "planning capped" in pay.entries["p2"].note
    assert pay.total == Decimal("50.00") + Decimal("45.00") + Decimal("15.00")
    no_workshop = month_pay("2026-10", [entry("p", K.PLANNING, 120)], POLICY)
    assert no_workshop.total == 0


def test_monthly_cap_adds_a_negative_line() -> None:
    policy = PayPolicy(monthly_cap=Decimal("100"))
    pay = month_pay("2026-10", [entry("a", K.MEETING, 120), entry("b", K.MEETING, 120)], policy)
    assert pay.cap_adjustment == Decimal("-60.00")
    assert pay.total == Decimal("100.00")
    draft = statement_lines("2026-10", [pay], {})
    assert [line.line_type for line in draft.lines] == [LineType.ENTRY, LineType.ENTRY, LineType.MONTHLY_CAP]
    assert draft.total == Decimal("100.00")


def test_void_and_unrated_entries_are_shown_but_not_paid() -> None:
    pay = month_pay("2026-10", [entry("v", K.MEETING, 60, voided=True), entry("t", K.TRAINING, 60)], POLICY)
    assert pay.total == 0
    notes = {p.entry.entry_id: p.note for p in pay.entries.values()}
    assert notes == {"v": "void: not paid", "t": "no rate for training: not paid"}
    assert len(statement_lines("2026-10", [pay], {}).lines) == 2


def test_late_entry_and_amendment_of_a_paid_month_are_adjustments_on_the_next_statement() -> None:
    october = month_pay("2026-10", [entry("a", K.MEETING, 60), entry("b", K.MEETING, 30)], POLICY)
    paid_october = statement_lines("2026-10", [october], {})
    assert paid_october.total == Decimal("60.00")
    counted = {line.key: line.amount for line in paid_october.lines}
    # In November: "b" was amended down to 15 min, and a late October entry "c" arrived.
    corrected = month_pay(
        "2026-10", [entry("a", K.MEETING, 60), entry("b", K.MEETING, 15), entry("c", K.MEETING, 60, day=30)], POLICY
    )
    november = month_pay("2026-11", [entry("n", K.MEETING, 60, month=11)], POLICY)
    draft = statement_lines("2026-11", [november, corrected], counted)
    by_entry = {line.entry_id: (line.line_type, line.amount) for line in draft.lines}
    assert by_entry == {
        "n": (LineType.ENTRY, Decimal("40.00")),
        "b": (LineType.AMENDMENT, Decimal("-10.00")),
        "c": (LineType.LATE, Decimal("40.00")),
    }
    assert draft.total == Decimal("70.00")


# -- properties -------------------------------------------------------------------------------

kinds = st.sampled_from(list(TimeEntryKind))
rates = st.decimals(min_value=0, max_value=200, places=2, allow_nan=False, allow_infinity=False)
policies = st.builds(
    PayPolicy,
    hourly_rates=st.dictionaries(kinds, rates),
    planning_multiple_of_workshop=st.decimals(min_value=0, max_value=4, places=1),
    monthly_cap=st.none() | st.decimals(min_value=0, max_value=3000, places=2),
)


@st.composite
def months(draw: st.DrawFn, prefix: str = "e", month: int = 10) -> list[WorkEntry]:
    n = draw(st.integers(min_value=0, max_value=12))
    return [
        WorkEntry(
            f"{prefix}{i}", draw(kinds), date(2026, month, draw(st.integers(1, 31))),
            draw(st.integers(min_value=1, max_value=24 * 60)), draw(st.booleans()),
        )
        for i in range(n)
    ]


def _counted(*drafts: StatementDraft) -> dict[tuple[str, str], Decimal]:
    counted: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for d in drafts:
        for line in d.lines:
            counted[line.key] += line.amount
    return dict(counted)


@settings(max_examples=300, deadline=None)
@given(entries=months(), policy=policies)
def test_total_is_the_sum_of_lines_and_caps_hold(entries: list[WorkEntry], policy: PayPolicy) -> None:
    pay = month_pay("2026-10", entries, policy)
    draft = statement_lines("2026-10", [pay], {})
    assert draft.total == sum((line.amount for line in draft.lines), Decimal(0)) == pay.total
    assert all(line.amount == line.amount.quantize(Decimal("0.01")) for line in draft.lines)
    assert pay.planning_paid_minutes <= pay.workshop_minutes * policy.planning_multiple_of_workshop
    if policy.monthly_cap is not None:
        assert pay.total <= policy.monthly_cap
    assert pay.total >= 0
    assert {line.entry_id for line in draft.lines if line.entry_id} == {e.entry_id for e in entries}


@settings(max_examples=300, deadline=None)
@given(entries=months(), policy=policies)
def test_nothing_is_paid_for_a_void_entry(entries: list[WorkEntry], policy: PayPolicy) -> None:
    pay = month_pay("2026-10", entries, policy)
    for p in pay.entries.values():
        if p.entry.voided:
            assert p.amount == 0 and p.paid_minutes == 0
    without_void = month_pay("2026-10", [e for e in entries if not e.voided], policy)
    assert pay.total == without_void.total


@st.composite
def amendments(draw: st.DrawFn, entries: list[WorkEntry]) -> list[WorkEntry]:
    """The same month later: some entries changed or voided, some late ones added."""
    out = []
    for e in entries:
        change = draw(st.sampled_from(["keep", "minutes", "void", "kind"]))
        if change == "minutes":
            e = WorkEntry(e.entry_id, e.kind, e.work_date, draw(st.integers(0, 24 * 60)), e.voided)
        elif change == "void":
            e = WorkEntry(e.entry_id, e.kind, e.work_date, e.minutes, True)
        elif change == "kind":
            e = WorkEntry(e.entry_id, draw(kinds), e.work_date, e.minutes, e.voided)
        out.append(e)
    return out + draw(months(prefix="late"))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), first=months(), policy=policies)
def test_adjustments_net_to_the_corrected_amount(data: st.DataObject, first: list[WorkEntry], policy: PayPolicy) -> None:
    october = statement_lines("2026-10", [month_pay("2026-10", first, policy)], {})
    corrected_entries = data.draw(amendments(first))
    corrected = month_pay("2026-10", corrected_entries, policy)
    november = statement_lines(
        "2026-11", [month_pay("2026-11", [], policy), corrected], _counted(october)
    )
    paid_for_october = october.total + sum(
        (line.amount for line in november.lines if line.work_month == "2026-10"), Decimal(0)
    )
    assert paid_for_october == corrected.total
    # A second round of amendments, settled on December's statement, still nets to the truth.
    again = month_pay("2026-10", data.draw(amendments(corrected_entries)), policy)
    december = statement_lines("2026-12", [again], _counted(october, november))
    assert october.total + november.total + december.total == again.total
    for line in november.lines + december.lines:
        assert line.line_type in (LineType.LATE, LineType.AMENDMENT, LineType.MONTHLY_CAP, LineType.ENTRY)
        if line.line_type == LineType.AMENDMENT:
            assert line.amount != 0


@settings(max_examples=100, deadline=None)
@given(entries=months(), policy=policies)
def test_a_statement_recomputed_with_nothing_changed_adds_nothing(entries: list[WorkEntry], policy: PayPolicy) -> None:
    pay: MonthPay = month_pay("2026-10", entries, policy)
    paid = statement_lines("2026-10", [pay], {})
    again = statement_lines("2026-11", [pay], _counted(paid))
    assert again.lines == []
    assert (("2026-10", CAP_KEY) in _counted(paid)) == (pay.cap_adjustment != 0)
