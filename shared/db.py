"""Stores: one SQLModel engine per service, SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode with a busy timeout, and every transaction begins IMMEDIATE so that
writers queue for the lock up front instead of failing halfway (the HTTP threads, the consumer
and the outbox relay all write to the same file). Within a process they queue in turn on a lock
of the process's own (FileTurn), taken around the whole transaction (Database.session, .begin,
.connect): SQLite's busy handler sleeps up to 100 ms between tries, so under a burst most of the
waiting was sleep past a free lock. The busy timeout remains for other processes on the file.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_url(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


class FileTurn:
    """A first-come, first-served lock: a release hands the lock to the longest waiter, so the
    thread that just committed cannot take it straight back (with the GIL it would, again and
    again, and the others wait whole switch intervals). Re-entrant: a thread already inside a
    transaction that opens another fails on SQLite's own lock after the busy timeout, as before,
    not forever."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            if self._owner == me:
                self._depth += 1
                return
            handed = threading.Lock()
            handed.acquire()
            self._waiters.append((me, handed))
        try:
            handed.acquire()  # released by the owner that hands us the turn
        except BaseException:  # interrupted while waiting: leave the queue, or pass on a turn given
            with self._mutex:
                given = (me, handed) not in self._waiters
                if not given:
                    self._waiters.remove((me, handed))
            if given:
                self.__exit__()
            raise

    def __exit__(self, *_: object) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth:
                return
            if self._waiters:
                self._owner, handed = self._waiters.popleft()
                self._depth = 1
                handed.release()
            else:
                self._owner = None


_TURNS: dict[str, FileTurn] = {}
_TURNS_GUARD = threading.Lock()


def _turn_for(url: str) -> FileTurn:
    with _TURNS_GUARD:
        return _TURNS.setdefault(url, FileTurn())


class Database:
    """A service's store: the engine and the one way to open a transaction."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, echo=echo)
        # One turn per SQLite file in this process; PostgreSQL locks rows itself.
        self._turn: AbstractContextManager[Any] | None = (
            _turn_for(self.url) if self.url.startswith("sqlite") else None)

    def _in_turn(self) -> AbstractContextManager[Any]:
        return self._turn if self._turn is not None else nullcontext()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: commits when the block ends, rolls back when it raises."""
        with self._in_turn(), Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction on a plain connection (no ORM): commits when the block ends."""
        with self._in_turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A plain connection for reads; what it began is rolled back when the block ends."""
        with self._in_turn(), self.engine.connect() as conn:
            yield conn

    def ping(self) -> None:
        with self.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()
