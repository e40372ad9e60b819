"""Month close in the store: freeze a program's month and emit MonthClosed once per mentor.

One close is one transaction:
1. Insert the (program, month) row; its primary key makes the close happen once. A second
   instance closing at the same moment blocks on that key (PostgreSQL) or on the write lock
   (SQLite) and then finds the row: it does nothing.
2. Claim the entries: one UPDATE sets closed_month on every open, non-voided entry dated in the
   month or earlier (those earlier are late entries). An entry is claimed by exactly one close.
3. Per mentor, build MonthClosed from the claimed entries, add it to the outbox, and record the
   (program, mentor, month) row (unique in the store as well).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, text, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from services.activity.adapters.tables import MentorMonthCloseRow, MonthCloseRow, ProgramRow, TimeEntryRow
from services.activity.domain.calendar import first_day, next_month
from services.activity.domain.month_close import close_due_at, latest_due_month, months_to_close
from services.activity.service_layer.unit import insert_if_absent, parse_policy
from shared.contracts.activity import MonthClosed
from shared.contracts.envelope import Cause
from shared.contracts.program import TimeEntryKind
from shared.db import Database
from shared.messaging import Outbox

MENTOR_CHUNK = 1000


@dataclass
class CloseSummary:
    program_id: str
    month: str
    mentors: int = 0
    entries: int = 0
    late_entries: int = 0
    minutes_by_kind: dict[str, int] = field(default_factory=dict)
    closed_now: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "program_id": self.program_id, "month": self.month, "mentors": self.mentors,
            "entries": self.entries, "late_entries": self.late_entries,
            "minutes_by_kind": self.minutes_by_kind, "closed_now": self.closed_now,
        }


def _insert_close_row(session: Session, program_id: str, month: str, now: datetime, triggered_by: str) -> bool:
    values = {"program_id": program_id, "month": month, "closed_at": now, "triggered_by": triggered_by,
              "mentors": 0, "entries": 0, "late_entries": 0, "minutes_by_kind": "{}"}
    return insert_if_absent(session, MonthCloseRow.__table__, values, "month")  # type: ignore[attr-defined]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def close_month(
    session: Session, outbox: Outbox, program_id: str, month: str, now: datetime, *,
    cause: Cause, triggered_by: str = "scheduler", topic: str | None = None,
) -> CloseSummary | None:
    """Close one month of one program in `session`'s transaction; None if it was closed already."""
    if not _insert_close_row(session, program_id, month, now, triggered_by):
        return None
    start, end = first_day(month), first_day(next_month(month))
    entries = TimeEntryRow.__table__  # type: ignore[attr-defined]
    session.execute(
        update(entries)
        .where(entries.c.program_id == program_id, entries.c.closed_month.is_(None),
               entries.c.voided.is_(False), entries.c.work_date < end)
        .values(closed_month=month)
    )
    mentors = list(session.execute(
        core_select(entries.c.mentor_id).where(entries.c.program_id == program_id, entries.c.closed_month == month)
        .group_by(entries.c.mentor_id).order_by(entries.c.mentor_id)
    ).scalars())
    summary = CloseSummary(program_id, month)
    totals: dict[str, int] = {}
    for chunk in _chunks(mentors, MENTOR_CHUNK):
        mentor_rows = []
        for mentor_id, entries_json in _entries_as_json(session, program_id, month, start, chunk):
            # The store writes the entries as JSON and pydantic-core validates the whole event from
            # it: no Python object is built per entry by hand (this runs for every entry of the month).
            head = json.dumps({"program_id": program_id, "mentor_id": mentor_id, "month": month})
            event = MonthClosed.model_validate_json(head[:-1] + ',"entries":' + entries_json + "}")
            by_kind: dict[TimeEntryKind, int] = {}
            late = 0
            for e in event.entries:
                by_kind[e.kind] = by_kind.get(e.kind, 0) + e.minutes
                late += e.late
            event = event.model_copy(update={"minutes_by_kind": by_kind})
            envelope = outbox.add(session, event, cause, topic=topic)
            mentor_rows.append({"program_id": program_id, "mentor_id": mentor_id, "month": month,
                                "entries": len(event.entries), "minutes": sum(by_kind.values()),
                                "event_id": str(envelope.event_id)})
            summary.entries += len(event.entries)
            summary.late_entries += late
            for k, v in by_kind.items():
                totals[k.value] = totals.get(k.value, 0) + v
        if mentor_rows:
            session.execute(insert(MentorMonthCloseRow.__table__), mentor_rows)  # type: ignore[attr-defined]
        summary.mentors += len(mentor_rows)
        session.flush()
        session.expunge_all()  # the outbox rows are written: do not keep them in memory
    summary.minutes_by_kind = dict(sorted(totals.items()))
    session.execute(
        update(MonthCloseRow.__table__)  # type: ignore[attr-defined]
        .where(col(MonthCloseRow.program_id) == program_id, col(MonthCloseRow.month) == month)
        .values(mentors=summary.mentors, entries=summary.entries, late_entries=summary.late_entries,
                minutes_by_kind=json.dumps(summary.minutes_by_kind))
    )
    return summary


_ENTRIES_JSON = {
    "postgresql": """
        SELECT mentor_id, json_agg(json_build_object(
                 'entry_id', entry_id, 'kind', kind, 'work_date', work_date, 'minutes', minutes,
                 'late', work_date < :start) ORDER BY work_date, entry_id)::text
        FROM activity_time_entry
        WHERE program_id = :program AND closed_month = :month AND mentor_id IN :mentors
        GROUP BY mentor_id""",
    "sqlite": """
        SELECT mentor_id, json_group_array(json_object(
                 'entry_id', entry_id, 'kind', kind, 'work_date', work_date, 'minutes', minutes,
                 'late', json(CASE WHEN work_date < :start THEN 'true' ELSE 'false' END)))
        FROM (SELECT * FROM activity_time_entry
              WHERE program_id = :program AND closed_month = :month AND mentor_id IN :mentors
              ORDER BY mentor_id, work_date, entry_id)
        GROUP BY mentor_id""",
}


def _entries_as_json(
    session: Session, program_id: str, month: str, start: date, mentors: list[str]
) -> list[tuple[str, str]]:
    """Per mentor, the claimed entries as a JSON array of ClosedEntry objects."""
    dialect = session.get_bind().dialect.name
    sql = text(_ENTRIES_JSON[dialect]).bindparams(bindparam("mentors", expanding=True))
    since = start if dialect == "postgresql" else start.isoformat()  # SQLite keeps dates as ISO text
    rows = session.execute(sql, {"program": program_id, "month": month, "start": since, "mentors": mentors})
    return [(r[0], r[1]) for r in rows]


def _as_date(value: Any) -> date:  # SQLite may hand back dates as text
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass(frozen=True)
class CloseState:
    last_closed: str | None
    earliest_open: date | None
    due_month: str
    due: list[str]
    next_month: str
    next_due_at: datetime


def close_state(session: Session, program_id: str, now: datetime) -> CloseState:
    program = session.get(ProgramRow, program_id)
    assert program is not None
    policy = parse_policy(program.policy)
    tz, grace = policy.timezone, policy.pay.month_close_grace_days
    last = session.exec(select(func.max(MonthCloseRow.month)).where(MonthCloseRow.program_id == program_id)).one()
    earliest_date: date | None = None
    if last is None:  # before the first close: start at the month of the earliest entry (a scan, once)
        earliest = session.exec(
            select(func.min(TimeEntryRow.work_date)).where(
                TimeEntryRow.program_id == program_id, col(TimeEntryRow.closed_month).is_(None),
                col(TimeEntryRow.voided).is_(False),
            )
        ).one()
        earliest_date = _as_date(earliest) if earliest is not None else None
    due_month = latest_due_month(now, tz, grace)
    due = months_to_close(last, earliest_date, due_month)
    upcoming = next_month(due_month)
    return CloseState(last, earliest_date, due_month, due, upcoming, close_due_at(upcoming, tz, grace))


def close_due_months(
    db: Database, outbox: Outbox, program_id: str, now: datetime, *, cause: Cause | None = None,
    triggered_by: str = "scheduler", until: str | None = None,
) -> list[CloseSummary]:
    """Close, in order, every month of the program that is due and not closed (each in its own
    transaction). Safe to run at the same time in several instances."""
    with db.session() as s:
        state = close_state(s, program_id, now)
    done: list[CloseSummary] = []
    for month in state.due:
        if until is not None and month > until:
            break
        with db.session() as s:
            summary = close_month(s, outbox, program_id, month, now, cause=cause or Cause.new(),
                                  triggered_by=triggered_by)
        if summary is not None:
            done.append(summary)
    return done


def close_all_programs(db: Database, outbox: Outbox, now: datetime) -> list[CloseSummary]:
    with db.session() as s:
        programs = list(s.exec(select(ProgramRow.program_id).order_by(col(ProgramRow.program_id))).all())
    done: list[CloseSummary] = []
    for program_id in programs:
        done += close_due_months(db, outbox, program_id, now)
    return done
