"""The service layer against real stores (SQLite and PostgreSQL): meetings and their time entries,
corrections, month close (re-run, late entries, amendments after close, two instances at once), compliance."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.activity.adapters.tables import (
    MeetingRow,
    MeetingViewRow,
    MentorMonthCloseRow,
    PartnershipRow,
    ProgramRow,
    TimeEntryRow,
)
from services.activity.domain.activities import ActivityDraft
from services.activity.domain.meetings import Actor, MeetingChange, MeetingDraft
from services.activity.domain.time_entries import TimeEntryDraft
from services.activity.service_layer import commands
from services.activity.service_layer.compliance import refresh, sweep
from services.activity.service_layer.month_close import close_due_months, close_month
from services.activity.service_layer.views import partnership_activities
from services.activity.tests.support import (
    PROGRAM,
    Store,
    StoreUnit,
    as_records,
    matched,
    open_store,
    program_event,
)
from shared.contracts.activity import MeetingCorrected, MeetingLogged
from shared.contracts.envelope import Cause
from shared.contracts.matching import MentorPaused, MentorResumed, MetamentorAssigned, PartnershipEnded
from shared.contracts.program import TimeEntryKind
from shared.db import Database
from shared.errors import DomainError
from shared.messaging import Outbox, OutboxRecord

pytestmark = pytest.mark.integration
STAFF = Actor("staff-1", "staff")
K = TimeEntryKind


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = open_store(store_url)
    st.apply(program_event(), matched("p1", "m1", datetime(2026, 9, 1, 15, tzinfo=UTC)),
             matched("p2", "m2", datetime(2026, 9, 1, 15, tzinfo=UTC)))
    yield st
    st.db.dispose()


def meeting(st: Store, pid: str, at: datetime, minutes: int = 60, actor: Actor = STAFF) -> str:
    with st.unit() as u:
        return commands.log_meeting(u, MeetingDraft(pid, at, minutes, "video", True), actor, st.clock.now()).meeting_id


def entry(st: Store, mentor: str, kind: TimeEntryKind, day: date, minutes: int, workshop: str | None = None) -> str:
    with st.unit() as u:
        return commands.record_time_entry(
            u, TimeEntryDraft(mentor, PROGRAM, kind, day, minutes, workshop_entry_id=workshop),
            Actor(mentor, "mentor"), st.clock.now()).entry_id


def amend(st: Store, entry_id: str, *, minutes: int | None = None, voided: bool = False) -> None:
    with st.unit() as u:
        commands.amend_time_entry(u, entry_id, None, None, minutes, voided, "fix", STAFF, st.clock.now())


def close(st: Store) -> list[str]:
    return [c.month for c in close_due_months(st.db, st.outbox, PROGRAM, st.clock.now())]


def test_meeting_is_stored_with_its_time_entry_in_the_local_month(store: Store) -> None:
    late_on_31st = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 23:30 on 31 October in Denver
    mid = meeting(store, "p1", late_on_31st, 90, Actor("m1", "mentor"))
    [logged] = store.emitted("MeetingLogged")
    assert logged["meeting_id"] == mid and logged["mentor_id"] == "m1" and logged["duration_minutes"] == 90
    [recorded] = store.emitted("TimeEntryRecorded")
    assert recorded == {**recorded, "entry_id": mid, "kind": "meeting", "work_date": "2026-10-31", "minutes": 90}
    with pytest.raises(DomainError) as exc:
        meeting(store, "p1", late_on_31st, 90)
    assert exc.value.status == 409 and exc.value.problems[0].code == "duplicate"
    with pytest.raises(DomainError) as exc:
        meeting(store, "p1", late_on_31st, 90, Actor("m2", "mentor"))
    assert exc.value.status == 403


def test_a_correction_may_not_make_a_meeting_the_duplicate_of_another(store: Store) -> None:
    first, second = datetime(2026, 10, 5, 16, tzinfo=UTC), datetime(2026, 10, 6, 16, tzinfo=UTC)
    a = meeting(store, "p1", first, 60)
    b = meeting(store, "p1", second, 60)
    meeting(store, "p2", datetime(2026, 10, 7, 16, tzinfo=UTC), 60)  # another partnership's: no clash

    def correct(mid: str, change: MeetingChange) -> None:
        with store.unit() as u:
            commands.correct_meeting(u, mid, change, STAFF, store.clock.now())

    with pytest.raises(DomainError) as exc:
        correct(b, MeetingChange(started_at=first, reason="wrong day"))
    assert exc.value.status == 409 and exc.value.problems[0].code == "duplicate"
    assert exc.value.problems[0].reason.endswith(a)
    correct(b, MeetingChange(started_at=datetime(2026, 10, 7, 16, tzinfo=UTC), reason="wrong day"))
    correct(a, MeetingChange(voided=True, reason="never happened"))
    correct(b, MeetingChange(started_at=first, reason="it was the 5th"))  # a voided meeting is no duplicate
    assert [m["started_at"][:10] for m in store.emitted("MeetingCorrected")] == [
        "2026-10-07", "2026-10-05", "2026-10-05"]


def test_ended_partnership_refuses_meetings_even_if_ended_before_matched_arrived(store_url: str) -> None:
    st = open_store(store_url)
    st.apply(PartnershipEnded(partnership_id="p9", program_id=PROGRAM, mentor_id="m9", mentee_id="e9",
                              ended_at=datetime(2026, 11, 1, tzinfo=UTC), reason="moved"))
    st.apply(program_event(), matched("p9", "m9", datetime(2026, 9, 1, tzinfo=UTC)))
    with pytest.raises(DomainError) as exc:
        meeting(st, "p9", datetime(2026, 10, 1, tzinfo=UTC))
    assert exc.value.problems[0].code == "not_active"
    st.db.dispose()


def test_month_close_freezes_once_and_carries_late_entries_exactly_once(store: Store) -> None:
    store.clock.set(datetime(2026, 11, 20, 18, tzinfo=UTC))
    m_oct = meeting(store, "p1", datetime(2026, 10, 5, 16, tzinfo=UTC), 60)
    ws = entry(store, "m1", K.WORKSHOP, date(2026, 10, 7), 60)
    plan = entry(store, "m1", K.PLANNING, date(2026, 10, 6), 120, workshop=ws)
    entry(store, "m2", K.TRAINING, date(2026, 10, 31), 30)
    voided = entry(store, "m2", K.TRAVEL, date(2026, 10, 30), 45)
    amend(store, voided, voided=True)
    entry(store, "m1", K.FEEDBACK_REVIEW, date(2026, 11, 2), 15)  # November: not in October's close
    with pytest.raises(DomainError) as exc:
        entry(store, "m1", K.PLANNING, date(2026, 10, 6), 1, workshop=ws)
    assert exc.value.problems[0].code == "planning_cap"

    # October closes on 4 November 00:00 Denver; on 20 November it is due (and only October is).
    assert close(store) == ["2026-10"]
    assert close(store) == [], "a second run closes nothing"
    closed = {e["mentor_id"]: e for e in store.emitted("MonthClosed")}
    assert set(closed) == {"m1", "m2"}
    assert closed["m1"]["minutes_by_kind"] == {"meeting": 60, "workshop": 60, "planning": 120}
    assert sorted(e["entry_id"] for e in closed["m1"]["entries"]) == sorted([m_oct, ws, plan])
    assert closed["m2"]["minutes_by_kind"] == {"training": 30}

    # A late October entry is carried into November, once. An amendment of a frozen entry is not
    # closed again: TimeEntryAmended names the closed month (payments settles the difference).
    late = entry(store, "m2", K.TRAVEL, date(2026, 10, 29), 40)
    amend(store, plan, minutes=100)
    [amended] = [e for e in store.emitted("TimeEntryAmended") if e["entry_id"] == plan]
    assert (amended["month"], amended["minutes"], amended["voided"]) == ("2026-10", 100, False)
    store.clock.set(datetime(2026, 12, 4, 7, 0, tzinfo=UTC))  # November's close is due now
    assert close(store) == ["2026-11"]
    assert close(store) == []
    november = {e["mentor_id"]: e for e in store.emitted("MonthClosed") if e["month"] == "2026-11"}
    assert november["m2"]["entries"] == [
        {"entry_id": late, "kind": "travel", "work_date": "2026-10-29", "minutes": 40, "late": True,
         "adjustment_of": None}]
    assert november["m1"]["minutes_by_kind"] == {"feedback_review": 15}
    with store.db.session() as s:
        claimed = s.exec(select(TimeEntryRow.entry_id, TimeEntryRow.closed_month)).all()
    assert all(m is not None for e, m in claimed if e != voided), "every paid entry is claimed by one close"
    all_ids = [e["entry_id"] for ev in store.emitted("MonthClosed") for e in ev["entries"]]
    assert len(all_ids) == len(set(all_ids)), "no entry is in two closes"


def test_voiding_a_closed_meeting_is_carried_by_time_entry_amended_not_a_second_close(store: Store) -> None:
    mid = meeting(store, "p1", datetime(2026, 10, 5, 16, tzinfo=UTC), 60)
    assert close(store) == ["2026-10"]
    with store.unit() as u:
        commands.correct_meeting(u, mid, MeetingChange(voided=True, reason="never happened"), STAFF,
                                 store.clock.now())
    [corrected] = store.emitted("MeetingCorrected")
    assert corrected["voided"] is True
    [amended] = store.emitted("TimeEntryAmended")
    assert (amended["entry_id"], amended["month"], amended["voided"], amended["minutes"]) == (mid, "2026-10", True, 0)
    store.clock.set(datetime(2026, 12, 5, tzinfo=UTC))
    assert close(store) == ["2026-11"]
    assert [e["month"] for e in store.emitted("MonthClosed")] == ["2026-10"], "nothing left for November"


def test_two_instances_closing_at_once_emit_one_month_closed_per_mentor(store: Store, store_url: str) -> None:
    for i in range(40):
        entry(store, f"m{i % 2 + 1}", K.PLANNING, date(2026, 10, 1 + i % 28), 10 + i)
    other = Database(store_url)
    outboxes = [store.outbox, Outbox("activity", store.clock)]
    dbs = [store.db, other]
    barrier = threading.Barrier(2)
    results: list[object] = []

    def run(i: int) -> None:
        barrier.wait()
        with dbs[i].session() as s:
            results.append(close_month(s, outboxes[i], PROGRAM, "2026-10", store.clock.now(), cause=Cause.new()))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert sum(r is not None for r in results) == 1
    closed = store.emitted("MonthClosed")
    assert sorted(e["mentor_id"] for e in closed) == ["m1", "m2"]
    assert sum(len(e["entries"]) for e in closed) == 40
    with store.db.session() as s:
        assert len(s.exec(select(MentorMonthCloseRow)).all()) == 2


def test_status_changes_emit_partnership_at_risk_once(store: Store) -> None:
    # p1 matched 1 Sep: no meeting by 20 Nov -> at risk (first meeting in 14 days, months short).
    with store.unit() as u:
        c = refresh(u, "p1", store.clock.now())
    assert c is not None and c.status == "at_risk"
    with store.unit() as u:
        refresh(u, "p1", store.clock.now())
    [risk] = store.emitted("PartnershipAtRisk")
    assert risk["status"] == "at_risk" and risk["previous_status"] is None and risk["reasons"]
    with store.db.session() as s:
        row = s.get(PartnershipRow, "p1")
        assert row is not None and row.status == "at_risk"


def test_a_new_policy_is_applied_by_the_next_sweep_not_tomorrow(store: Store) -> None:
    # Both judged today under the default rules: no meeting since 1 Sep -> at risk.
    assert sweep(store.db, store.unit, store.clock.now()) == 2
    assert sweep(store.db, store.unit, store.clock.now()) == 0, "checked once a day"
    # Staff switch off every rule but a meeting every 120 days: 80 days without one is fine.
    store.apply(program_event(revision=2, intentional_meetings_per_month=None, pips_per_semester=None,
                              first_meeting_within_days=None, meeting_every_days=120))
    store.apply(program_event(revision=2, intentional_meetings_per_month=None, pips_per_semester=None,
                              first_meeting_within_days=None, meeting_every_days=120))  # a replay
    assert sweep(store.db, store.unit, store.clock.now()) == 2, "the new rules are judged the same day"
    changes = [(e["partnership_id"], e["previous_status"], e["status"]) for e in store.emitted("PartnershipAtRisk")]
    assert changes == [("p1", None, "at_risk"), ("p2", None, "at_risk"),
                       ("p1", "at_risk", "on_track"), ("p2", "at_risk", "on_track")]
    store.apply(program_event(revision=2, intentional_meetings_per_month=None, pips_per_semester=None,
                              first_meeting_within_days=None, meeting_every_days=120))
    assert sweep(store.db, store.unit, store.clock.now()) == 0, "the same policy again changes nothing"


def test_activities_complete_a_pip_in_three_stages(store: Store) -> None:
    for stage in ("exploration", "collaboration", "application"):
        with store.unit() as u:
            commands.record_activity(u, ActivityDraft("p1", "pip_stage", date(2026, 10, 1), stage,
                                                      (("pip_id", "pip-1"),)), Actor("m1", "mentor"),
                                     store.clock.now())
    with store.unit() as u, pytest.raises(DomainError) as exc:
        commands.record_activity(u, ActivityDraft("p1", "pip_stage", date(2026, 10, 2), "application",
                                                  (("pip_id", "pip-1"),)), STAFF, store.clock.now())
    assert exc.value.problems[0].code == "already_recorded"
    assert [e["stage"] for e in store.emitted("ActivityRecorded")] == ["exploration", "collaboration", "application"]
    with store.db.session() as s:
        view = partnership_activities(s, "p1")
    assert view["pips"][0]["complete"] is True and view["pips"][0]["completed_on"] == "2026-10-01"


def test_entries_dated_after_the_closing_month_wait_for_their_own_close(store: Store) -> None:
    store.clock.set(datetime(2026, 12, 20, tzinfo=UTC))
    entry(store, "m1", K.PLANNING, date(2026, 10, 3), 30)
    entry(store, "m1", K.PLANNING, date(2026, 12, 3), 30)
    assert close(store) == ["2026-10", "2026-11"]
    with store.db.session() as s:
        open_rows = s.exec(select(TimeEntryRow).where(col(TimeEntryRow.closed_month).is_(None))).all()
    assert [r.work_date for r in open_rows] == [date(2026, 12, 3)]



def test_projection_accepts_matching_events_in_any_order(store_url: str) -> None:
    st = open_store(store_url)
    st.apply(MetamentorAssigned(partnership_id="p5", program_id=PROGRAM, metamentor_id="mm1"))
    st.apply(matched("p5", "m5", datetime(2026, 9, 1, tzinfo=UTC)))
    st.apply(program_event(revision=2, first_meeting_within_days=30), program_event(revision=1))
    with st.db.session() as s:
        row = s.get(PartnershipRow, "p5")
        assert row is not None and (row.mentor_id, row.metamentor_id, row.matched) == ("m5", "mm1", True)
        program = s.get(ProgramRow, PROGRAM)
        assert program is not None and program.revision == 2, "an older revision arriving late is ignored"
    st.apply(MentorPaused(person_id="m5", program_id=PROGRAM, reason="leave"))
    with st.unit() as u:
        assert refresh(u, "p5", st.clock.now()) is None, "a paused mentor's partnership is not judged"
    st.apply(MentorResumed(person_id="m5", program_id=PROGRAM, capacity=1))
    with st.unit() as u:
        c = refresh(u, "p5", st.clock.now())
    assert c is not None and c.status == "at_risk"
    st.db.dispose()


def test_meetings_read_back_bring_a_partnership_back_on_track_once(store: Store) -> None:
    with store.unit() as u:
        refresh(u, "p1", store.clock.now())
    days = [(9, 3), (9, 17), (10, 1), (10, 15)]
    events = [
        MeetingLogged(meeting_id=f"mt-{m}-{d}", partnership_id="p1", program_id=PROGRAM, mentor_id="m1",
                      mentee_id="mentee-of-p1", started_at=datetime(2026, m, d, 16, tzinfo=UTC), duration_minutes=45,
                      mode="video", intentional=True)
        for m, d in days
    ]
    store.apply(*events)
    store.apply(events[0])  # the same meeting again (another event id): the view already has it
    statuses = [(e["previous_status"], e["status"]) for e in store.emitted("PartnershipAtRisk")]
    # at risk (no meeting), behind once September is covered but October is short, then on track.
    assert statuses == [(None, "at_risk"), ("at_risk", "behind"), ("behind", "on_track")]
    with store.db.session() as s:
        assert len(s.exec(select(MeetingViewRow).where(MeetingViewRow.partnership_id == "p1")).all()) == 4


def test_two_identical_meetings_logged_at_once_store_one(store: Store, store_url: str) -> None:
    other = Database(store_url)
    units = [store.db, other]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            with units[i].session() as s:
                commands.log_meeting(StoreUnit(s, store.outbox), MeetingDraft("p1", datetime(2026, 10, 5, 16, tzinfo=UTC),
                                     60, "video", True), STAFF, store.clock.now())
            outcomes.append("logged")
        except DomainError as exc:
            outcomes.append(exc.problems[0].code)
        except IntegrityError:
            outcomes.append("duplicate")  # the HTTP layer answers 409 duplicate for this

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert sorted(outcomes) == ["duplicate", "logged"]
    with store.db.session() as s:
        assert len(s.exec(select(MeetingRow)).all()) == 1
    assert len(store.emitted("MeetingLogged")) == 1


def test_a_batch_of_meetings_judges_each_partnership_once_on_all_of_them(store: Store) -> None:
    with store.unit() as u:
        refresh(u, "p1", store.clock.now())  # at risk: no meeting yet
    p1 = [MeetingLogged(meeting_id=f"mt-{m}-{d}", partnership_id="p1", program_id=PROGRAM, mentor_id="m1",
                        mentee_id="mentee-of-p1", started_at=datetime(2026, m, d, 16, tzinfo=UTC),
                        duration_minutes=45, mode="video", intentional=True)
          for m, d in [(9, 3), (9, 17), (10, 1), (10, 15)]]
    p2 = MeetingLogged(meeting_id="mt-p2", partnership_id="p2", program_id=PROGRAM, mentor_id="m2",
                       mentee_id="mentee-of-p2", started_at=datetime(2026, 9, 3, 16, tzinfo=UTC), duration_minutes=30,
                       mode="video", intentional=True)
    records, ids = as_records(store, [p1[0], p1[1], p2, p1[2], p1[3]])
    asyncio.run(store.handlers.process_batch(records))

    emitted = store.emitted("PartnershipAtRisk")
    # One run of five meetings: p1 judged once on all four (at risk -> on track, not behind in between).
    assert [(e["previous_status"], e["status"]) for e in emitted if e["partnership_id"] == "p1"] \
        == [(None, "at_risk"), ("at_risk", "on_track")]
    assert len([e for e in emitted if e["partnership_id"] == "p2"]) == 1
    with store.db.session() as s:
        caused_by = [json.loads(r.headers) for r in s.exec(select(OutboxRecord).where(
            OutboxRecord.event_type == "PartnershipAtRisk", OutboxRecord.key == "p1")).all()]
        assert dict(caused_by[-1])["causation_id"] == ids[4], "caused by p1's last meeting of the run"
        assert len(s.exec(select(MeetingViewRow)).all()) == 5
        row = s.get(PartnershipRow, "p1")
        assert row is not None and row.status == "on_track"

    # The same meetings again under new event ids (published twice by mistake): no change, no event.
    again, _ = as_records(store, p1)
    asyncio.run(store.handlers.process_batch(again))
    assert len(store.emitted("PartnershipAtRisk")) == len(emitted)
    assert store.handlers.stats.processed == 9


def test_a_correction_between_meetings_of_a_batch_applies_in_the_topic_order(store: Store) -> None:
    def logged(mid: str, day: int) -> MeetingLogged:
        return MeetingLogged(meeting_id=mid, partnership_id="p1", program_id=PROGRAM, mentor_id="m1",
                             mentee_id="mentee-of-p1", started_at=datetime(2026, 10, day, 16, tzinfo=UTC),
                             duration_minutes=45, mode="video", intentional=True)

    voided = MeetingCorrected(meeting_id="a", partnership_id="p1", program_id=PROGRAM,
                              started_at=datetime(2026, 10, 1, 16, tzinfo=UTC), duration_minutes=0, mode="video",
                              intentional=True, voided=True, reason="logged twice")
    records, _ = as_records(store, [logged("a", 1), voided, logged("b", 2)])
    asyncio.run(store.handlers.process_batch(records))
    with store.db.session() as s:
        views = {v.meeting_id: (v.voided, v.minutes) for v in s.exec(select(MeetingViewRow)).all()}
    assert views == {"a": (True, 0), "b": (False, 45)}
