"""SQLite under concurrent writers, as a service's HTTP threads use it: small write transactions
(an insert, a read and a little Python, as a handler does) from 1, 4, 16 and 40 threads on one
file through shared.db.Database, taking turns (FileTurn, how the services run) and without them
(every waiter in SQLite's busy handler, which sleeps up to 100 ms between tries). Reports
transactions/s and the p99 of one transaction from asking for it to its commit, side by side.

    uv run python -m bench.store_bench --quick|--full
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

from shared.db import Database

THREADS = (1, 4, 16, 40)


def run(path: Path, threads: int, transactions: int, turns: bool) -> tuple[float, float]:
    db = Database(f"sqlite:///{path}")
    if not turns:
        db._turn = None  # every transaction queues in SQLite alone
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)"))
    waits: list[float] = []

    def work() -> None:
        for i in range(transactions // threads):
            asked = time.perf_counter()
            with db.begin() as conn:
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 200})
                conn.execute(text("SELECT v FROM t WHERE id = :i"), {"i": i}).first()
                sum(range(3000))  # a handler's Python inside its transaction (~50 us)
            waits.append(time.perf_counter() - asked)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    db.dispose()
    waits.sort()
    return len(waits) / elapsed, waits[int(len(waits) * 0.99)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="6,000 transactions per run")
    size.add_argument("--full", action="store_true", help="30,000 transactions per run")
    args = parser.parse_args()
    transactions = 30_000 if args.full else 6_000
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        for threads in THREADS:
            free, free_p99 = run(Path(tmp) / f"free-{threads}.db", threads, transactions, turns=False)
            taken, taken_p99 = run(Path(tmp) / f"turns-{threads}.db", threads, transactions, turns=True)
            rows.append({"threads": threads, "busy_handler_tx_per_s": round(free), "turns_tx_per_s": round(taken),
                         "turns_vs_busy_handler": round(taken / free, 2), "busy_handler_p99_ms": round(free_p99, 1),
                         "turns_p99_ms": round(taken_p99, 1)})
    print(f"{'threads':>7} {'busy handler tx/s':>17} {'turns tx/s':>10} {'ratio':>6} {'busy p99 ms':>11} "
          f"{'turns p99 ms':>12}")
    for r in rows:
        print(f"{r['threads']:>7} {r['busy_handler_tx_per_s']:>17,} {r['turns_tx_per_s']:>10,} "
              f"{r['turns_vs_busy_handler']:>6} {r['busy_handler_p99_ms']:>11} {r['turns_p99_ms']:>12}")
    print(json.dumps({"transactions_per_run": transactions, "runs": rows}))


if __name__ == "__main__":
    main()
