"""The meeting summary each partnership keeps (real stores, SQLite and PostgreSQL): after every
kind of change the consumer sees, it is the summary of the partnership's standing meetings in
the view, and the status judged from it is the one judged from all the meetings. And the two
compare-and-sets (summary, status) when another instance got there first."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import col, select

from services.activity.adapters.tables import MeetingViewRow, PartnershipRow, as_utc
from services.activity.domain.cadence import MeetingFact, MeetingSummary
from services.activity.service_layer.compliance import evaluate_partnership, set_statuses, write_summaries
from services.activity.service_layer.unit import policy_of
from services.activity.tests.support import PROGRAM, Store, as_records, matched, open_store, program_event
from shared.contracts.activity import MeetingCorrected, MeetingLogged
from shared.contracts.base import Event
from shared.contracts.matching import MentorPaused

pytestmark = pytest.mark.integration
MATCHED = datetime(2026, 9, 1, 15, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = open_store(store_url)
    st.apply(program_event(intentional_meetings_per_month=2, hours_per_school_year=20, meeting_every_days=30),
             matched("p1", "m1", MATCHED), matched("p2", "m2", MATCHED))
    yield st
    st.db.dispose()


def logged(mid: str, pid: str, month: int, day: int, hour: int = 16, minutes: int = 45,
           intentional: bool = True) -> MeetingLogged:
    return MeetingLogged(meeting_id=mid, partnership_id=pid, program_id=PROGRAM, mentor_id=f"m{pid[1:]}",
                         mentee_id=f"mentee-of-{pid}", started_at=datetime(2026, month, day, hour, tzinfo=UTC),
                         duration_minutes=minutes, mode="video", intentional=intentional)


def consume(st: Store, *events: Event) -> None:
    records, _ = as_records(st, events)
    asyncio.run(st.handlers.process_batch(records))


def kept(st: Store, pid: str) -> MeetingSummary | None:
    with st.db.session() as s:
        row = s.get(PartnershipRow, pid)
        assert row is not None
        return MeetingSummary.from_json(row.meeting_summary) if row.meeting_summary else None


def of_the_view(st: Store, pid: str) -> MeetingSummary:
    """What the summary must be: made from the partnership's standing meetings in the view now."""
    with st.db.session() as s:
        policy = policy_of(s, PROGRAM)
        assert policy is not None
        views = s.exec(select(MeetingViewRow).where(MeetingViewRow.partnership_id == pid,
                                                    col(MeetingViewRow.voided).is_(False))).all()
        return MeetingSummary.of(policy, [MeetingFact(as_utc(v.started_at), v.minutes, v.intentional) for v in views])


def status(st: Store, pid: str) -> tuple[str | None, str | None]:
    """(the status the consumer stored, the status judged now from every meeting in the view)."""
    with st.db.session() as s:
        row = s.get(PartnershipRow, pid)
        assert row is not None
        judged = evaluate_partnership(s, row, st.clock.now())
        return row.status, judged.status.value if judged else None


def test_the_kept_summary_follows_the_view_through_batches_replays_corrections_pauses_and_a_new_zone(
        store: Store) -> None:
    consume(store, logged("a", "p1", 9, 3), logged("c", "p2", 9, 4))  # made from the view
    assert kept(store, "p1") == of_the_view(store, "p1")
    first = [logged("b", "p1", 9, 17, minutes=90), logged("d", "p1", 10, 1, hour=5, intentional=False),
             logged("b", "p1", 9, 17, minutes=90)]
    consume(store, *first)  # added to the kept one
    for pid in ("p1", "p2"):
        assert kept(store, pid) == of_the_view(store, pid)
        assert status(store, pid)[0] == status(store, pid)[1]
    summary = kept(store, "p1")
    # 1 Oct 05:00 UTC is still 30 Sep in Denver: not an October meeting, and not intentional.
    assert summary is not None and summary.intentional_by_month == {"2026-09": 2}
    assert summary.school_year_minutes == 45 + 90 + 45, "the meeting logged twice counts once"

    consume(store, *first)  # the topic read again (a new group): nothing new
    assert kept(store, "p1") == summary

    consume(store, MeetingCorrected(meeting_id="b", partnership_id="p1", program_id=PROGRAM,
                                    started_at=datetime(2026, 9, 17, 16, tzinfo=UTC), duration_minutes=0,
                                    mode="video", intentional=True, voided=True, reason="never happened"),
            logged("e", "p1", 10, 6))
    after = kept(store, "p1")
    assert after == of_the_view(store, "p1") and after is not None
    assert after.school_year_minutes == 45 + 45 + 45 and after.intentional_by_month == {"2026-09": 1, "2026-10": 1}
    assert status(store, "p1") == ("at_risk", "at_risk")

    store.apply(MentorPaused(person_id="m2", program_id=PROGRAM, reason="leave"))
    consume(store, logged("f", "p2", 10, 20, minutes=60))  # not judged while paused, still counted
    assert kept(store, "p2") == of_the_view(store, "p2")

    store.apply(program_event(tz="Pacific/Auckland", revision=2, intentional_meetings_per_month=2,
                              hours_per_school_year=20, meeting_every_days=30))
    consume(store, logged("g", "p1", 10, 31, hour=12))  # 1 Nov in Auckland
    rebuilt = kept(store, "p1")
    assert rebuilt is not None and rebuilt.timezone == "Pacific/Auckland"
    assert rebuilt == of_the_view(store, "p1") and "2026-11" in rebuilt.intentional_by_month
    assert status(store, "p1")[0] == status(store, "p1")[1]


def test_a_summary_changed_meanwhile_by_another_instance_is_cleared_not_overwritten(store: Store) -> None:
    consume(store, logged("a", "p1", 9, 3), logged("b", "p2", 9, 3))
    read = {pid: kept(store, pid) for pid in ("p1", "p2")}
    assert read["p1"] is not None and read["p2"] is not None
    with store.db.session() as s:  # another instance adds a meeting to p1 and commits first
        policy = policy_of(s, PROGRAM)
        assert policy is not None
        theirs = MeetingSummary.from_json(read["p1"].to_json())
        theirs.add(policy, [MeetingFact(datetime(2026, 9, 10, 16, tzinfo=UTC), 30, True)])
        write_summaries(s, {"p1": (read["p1"].to_json(), theirs.to_json())})
    with store.db.session() as s:  # this one then writes what it made from what it read before
        policy = policy_of(s, PROGRAM)
        assert policy is not None
        ours = {}
        for pid, before in read.items():
            assert before is not None
            after = MeetingSummary.from_json(before.to_json())
            after.add(policy, [MeetingFact(datetime(2026, 9, 12, 16, tzinfo=UTC), 60, True)])
            ours[pid] = (before.to_json(), after.to_json())
        write_summaries(s, ours)
    assert kept(store, "p1") is None, "neither version has both meetings: rebuilt from the view when next judged"
    p2 = kept(store, "p2")
    assert p2 is not None and p2.school_year_minutes == 45 + 60, "the one nobody else changed is written"


def test_statuses_set_together_fall_back_to_one_by_one_when_another_instance_changed_one(store: Store) -> None:
    with store.db.session() as s:  # another instance judged p1 first
        row = s.get(PartnershipRow, "p1")
        assert row is not None
        row.status = "behind"
        s.add(row)
    change = {"new_reasons": "[]", "today": store.clock.now().date()}
    with store.db.session() as s:  # this one read both as never judged
        changed = set_statuses(s, [{"pid": "p1", "previous": None, "new_status": "at_risk", **change},
                                   {"pid": "p2", "previous": None, "new_status": "at_risk", **change}])
    assert changed == {"p2"}, "only the status this transaction changed emits"
    with store.db.session() as s:
        assert [s.get(PartnershipRow, p).status for p in ("p1", "p2")] == ["behind", "at_risk"]  # type: ignore[union-attr]
        changed = set_statuses(s, [{"pid": "p1", "previous": "behind", "new_status": "on_track", **change},
                                   {"pid": "p2", "previous": "at_risk", "new_status": "behind", **change}])
    assert changed == {"p1", "p2"}
