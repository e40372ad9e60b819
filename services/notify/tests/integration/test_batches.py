"""Notify's consumer applies runs of MeetingLogged and time entries set-based (one statement per
table); what a user sees afterwards is what applying them one by one gave: a meeting counted once
in its program's local month, a correction removing it, an entry as last amended, one partnership
change per event, and nothing more when the same records come again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from sqlmodel import col, select

from services.notify.adapters.tables import PartnershipChangeRow, ProgramActivityRow, TimeEntryRow
from services.notify.tests.support import PROGRAM, Store, people, settings_for
from shared.contracts.activity import MeetingCorrected, MeetingLogged, TimeEntryAmended, TimeEntryRecorded
from shared.contracts.base import Event
from shared.contracts.envelope import Cause, new_envelope
from shared.contracts.program import TimeEntryKind
from shared.topics import ACTIVITY

pytestmark = pytest.mark.integration


def as_records(store: Store, events: Sequence[Event]) -> list[ConsumerRecord[bytes, bytes]]:
    out = []
    for i, ev in enumerate(events):
        env = new_envelope(event_type=ev.event_type, event_version=ev.event_version, key=ev.aggregate_key(),
                           producer="activity", clock=store.clock, cause=Cause.new())
        value = ev.to_json()
        out.append(ConsumerRecord(ACTIVITY, 0, i, 0, 0, env.key.encode(), value, None, len(env.key), len(value),
                                  env.to_headers()))
    return out


def logged(meeting_id: str, at: datetime, minutes: int = 45) -> MeetingLogged:
    return MeetingLogged(meeting_id=meeting_id, partnership_id="p-0", program_id=PROGRAM, mentor_id="mentor-0",
                         mentee_id="mentee-0", started_at=at, duration_minutes=minutes, mode="video",
                         intentional=True)


def entry(minutes: int, amended: bool = False) -> TimeEntryRecorded | TimeEntryAmended:
    fields = {"entry_id": "e-1", "mentor_id": "mentor-0", "program_id": PROGRAM, "kind": TimeEntryKind.MEETING,
              "work_date": date(2026, 10, 31), "minutes": minutes}
    return TimeEntryAmended(**fields, reason="typo") if amended else TimeEntryRecorded(**fields)


def test_a_batch_of_meetings_and_entries_reads_as_if_applied_one_by_one(tmp_path: Path, store_url: str) -> None:
    store = Store(settings_for(tmp_path, 2525, database_url=store_url))
    store.apply(*people(1))  # the program (America/Denver) and its people
    consumer = store.runtime.service.consumers[0][0]
    late_evening = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)  # 31 October, 21:00 in Denver
    records = as_records(store, [
        logged("a", late_evening), logged("b", datetime(2026, 10, 5, 16, tzinfo=UTC)),
        logged("a", late_evening, minutes=50),  # the same meeting published again (new event id)
        MeetingCorrected(meeting_id="b", partnership_id="p-0", program_id=PROGRAM,
                         started_at=datetime(2026, 10, 5, 16, tzinfo=UTC), duration_minutes=0, mode="video",
                         intentional=True, voided=True, reason="logged twice"),
        entry(45), entry(30, amended=True), logged("c", datetime(2026, 11, 2, 16, tzinfo=UTC)),
    ])
    asyncio.run(consumer.process_batch(records))

    with store.runtime.service.db.session() as s:
        activity = {r.subject_id: (r.month, r.minutes) for r in s.exec(select(ProgramActivityRow)).all()}
        changes = s.exec(select(PartnershipChangeRow).order_by(col(PartnershipChangeRow.at_ms))).all()
        entries = [(e.entry_id, e.kind, e.work_date, e.minutes) for e in s.exec(select(TimeEntryRow)).all()]
    assert activity == {"meeting:a": ("2026-10", 50), "meeting:c": ("2026-11", 45)}
    assert sorted(c.description for c in changes) == sorted([
        "intentional meeting on 2026-10-31 (45 min)", "intentional meeting on 2026-10-05 (45 min)",
        "intentional meeting on 2026-10-31 (50 min)", "intentional meeting on 2026-11-02 (45 min)",
    ])
    assert entries == [("e-1", "meeting", date(2026, 10, 31), 30)]

    asyncio.run(consumer.process_batch(records))  # the same records again: the inbox has them all
    assert consumer.stats.duplicates == len(records)
    with store.runtime.service.db.session() as s:
        assert len(s.exec(select(PartnershipChangeRow)).all()) == 4
