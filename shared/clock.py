"""Injected time. No code outside this module reads the wall clock directly.

Production uses SystemClock. Tests use ManualClock. A running service can be started on a
shifted clock (MENTORING_CLOCK_OFFSET_SECONDS) or have its clock set through a guarded admin
endpoint, so month close, pay day and digests can be driven end to end.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock, optionally shifted by a fixed offset (set at start or by an operator)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + offset

    def set_offset(self, offset: timedelta) -> None:
        with self._lock:
            self._offset = offset

    def set_now(self, instant: datetime) -> None:
        """Shift the clock so that now() reads `instant` from this moment on."""
        self.set_offset(ensure_utc(instant) - datetime.now(UTC))


class ManualClock:
    """A clock that moves only when told to: for tests and for replaying history."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = ensure_utc(instant)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set_now(self, instant: datetime) -> None:
        self.set(instant)


def _aware(instant: datetime) -> datetime:
    """The instant itself; a naive datetime (astimezone would read it as the machine's local
    time) is refused."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: every instant must carry a time zone")
    return instant


def ensure_utc(instant: datetime) -> datetime:
    return _aware(instant).astimezone(UTC)


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date of an instant in a program's time zone (the compliance rules ask it
    several times per partnership judged, so it converts once, straight to the zone)."""
    return _aware(instant).astimezone(ZoneInfo(tz)).date()
