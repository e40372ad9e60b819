"""The in-process turn at a SQLite file: one transaction at a time, first come first served."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.db import Database, FileTurn

pytestmark = pytest.mark.unit


def test_one_holder_at_a_time_and_waiters_served_in_arrival_order() -> None:
    turn = FileTurn()
    order: list[int] = []
    inside = 0
    most_inside = 0

    def worker(k: int) -> None:
        nonlocal inside, most_inside
        with turn:
            inside += 1
            most_inside = max(most_inside, inside)
            order.append(k)
            time.sleep(0.002)
            inside -= 1

    with turn:  # hold it while the workers line up, one after another
        threads = []
        for k in range(8):
            t = threading.Thread(target=worker, args=(k,))
            t.start()
            threads.append(t)
            time.sleep(0.02)
    for t in threads:
        t.join(5)
    assert order == list(range(8))
    assert most_inside == 1


def test_the_holder_may_enter_again() -> None:
    turn = FileTurn()
    with turn, turn:
        pass
    done = threading.Event()

    def other() -> None:
        with turn:
            done.set()

    threading.Thread(target=other).start()
    assert done.wait(2), "the turn was not free after the nested exit"


def test_transactions_on_one_file_from_many_threads_all_commit(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    twin = Database(f"sqlite:///{tmp_path / 'x.db'}")  # another Database on the same file shares the turn
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(text("INSERT INTO t (id, n) VALUES (1, 0)"))

    def bump(store: Database) -> None:
        for _ in range(50):
            with store.session() as s:
                n = s.execute(text("SELECT n FROM t WHERE id = 1")).scalar_one()
                s.execute(text("UPDATE t SET n = :n WHERE id = 1"), {"n": n + 1})

    threads = [threading.Thread(target=bump, args=(db if k % 2 else twin,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with db.connect() as conn:
        assert conn.execute(text("SELECT n FROM t WHERE id = 1")).scalar_one() == 400
    db.dispose()
    twin.dispose()
