"""Month close: when a month closes, which entries it freezes, and what it reports per mentor.

A month closes `month_close_grace_days` days after it ends in the program's time zone. A close of
month M takes every entry not yet closed whose work date is in M or earlier: the ones from earlier
months are late entries (recorded after their own month had closed), carried exactly once because
an entry is claimed by one close only. Voided entries are never paid and never closed. An
entry already closed that is amended stays closed: TimeEntryAmended (with the closed month) carries
the change, never a second MonthClosed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.activity.domain.calendar import (
    first_day,
    local_midnight,
    month_of,
    month_of_instant,
    months_between,
    next_month,
    previous_month,
)
from shared.contracts.activity import ClosedEntry, MonthClosed
from shared.contracts.program import TimeEntryKind


def close_due_at(month: str, tz: str, grace_days: int) -> datetime:
    """The instant (UTC) month `month` may close: local midnight, `grace_days` after it ends."""
    return local_midnight(first_day(next_month(month)) + timedelta(days=grace_days), tz)


def latest_due_month(now: datetime, tz: str, grace_days: int) -> str:
    """The most recent month whose close is due at `now`."""
    month = previous_month(month_of_instant(now, tz))
    while close_due_at(month, tz, grace_days) > now:
        month = previous_month(month)
    return month


def months_to_close(last_closed: str | None, earliest_open: date | None, due: str) -> list[str]:
    """The months to close now, in order: after the last closed month (or from the month of the
    earliest open entry) up to the latest due month."""
    if last_closed is not None:
        start = next_month(last_closed)
    elif earliest_open is not None:
        start = month_of(earliest_open)
    else:
        return []
    return months_between(start, due)


@dataclass(frozen=True)
class OpenEntry:
    entry_id: str
    mentor_id: str
    kind: TimeEntryKind
    work_date: date
    minutes: int
    voided: bool = False


def claimable(entry: OpenEntry, month: str) -> bool:
    return not entry.voided and entry.work_date < first_day(next_month(month))


def is_late(work_date: date, month: str) -> bool:
    return work_date < first_day(month)


def select_for_close(month: str, entries: Iterable[OpenEntry]) -> dict[str, list[ClosedEntry]]:
    """The entries a close of `month` takes, by mentor (reference for the store's SQL claim)."""
    out: dict[str, list[ClosedEntry]] = {}
    for e in entries:
        if claimable(e, month):
            out.setdefault(e.mentor_id, []).append(
                ClosedEntry(entry_id=e.entry_id, kind=e.kind, work_date=e.work_date, minutes=e.minutes,
                            late=is_late(e.work_date, month))
            )
    return out


def totals_by_kind(entries: Iterable[ClosedEntry]) -> dict[TimeEntryKind, int]:
    totals: dict[TimeEntryKind, int] = {}
    for e in entries:
        totals[e.kind] = totals.get(e.kind, 0) + e.minutes
    return totals


def month_closed(program_id: str, mentor_id: str, month: str, entries: list[ClosedEntry]) -> MonthClosed:
    return MonthClosed(program_id=program_id, mentor_id=mentor_id, month=month,
                       minutes_by_kind=totals_by_kind(entries), entries=entries)
