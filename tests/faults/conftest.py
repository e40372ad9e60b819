"""The fault suite's harness: services as real processes on a real broker, a fixed business clock,
a real SMTP server, helpers to read topics by event type, and the ledger of faults.

Every test records what it injected and what it counted in the ledger (events sent, effects
received, lost, duplicated); the table is printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from shared.messaging.admin import ensure_topics
from tests.mail import RecordingSMTP, smtp_server
from tests.processes import ServiceProcess, System
from tests.support import headers_of, read_topic

T = TypeVar("T")
# Business time of every fault test: a Friday late in November 2026 (the school year 2026-27 is
# under way, October is closed and paid on the first working day of November).
NOW = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
STAFF = {"X-Actor-Id": "staff-1", "X-Actor-Role": "staff"}


# -- the ledger ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    test: str
    fault: str
    sent: int
    received: int
    lost: int
    duplicated: int


LEDGER: list[Row] = []


def record(fault: str, *, sent: int, received: int, lost: int, duplicated: int, test: str = "") -> None:
    LEDGER.append(Row(test or _current_test(), fault, sent, received, lost, duplicated))


def _current_test() -> str:
    import os

    return os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not LEDGER:
        return
    tr = terminalreporter
    tr.section("faults injected (lost and duplicated must be 0)")
    tr.write_line(f"{'test':44} {'fault':96} {'sent':>6} {'recv':>6} {'lost':>5} {'dup':>4}")
    for r in LEDGER:
        first, *rest = textwrap.wrap(r.fault, 96) or [""]
        tr.write_line(f"{r.test[:44]:44} {first:96} {r.sent:6} {r.received:6} {r.lost:5} {r.duplicated:4}")
        for more in rest:
            tr.write_line(f"{'':44} {more}")


# -- processes -------------------------------------------------------------------------------------
@dataclass
class Faults:
    """One test's world: a topic prefix on a broker, a data folder, the processes it started."""

    bootstrap: str
    prefix: str
    data_dir: Path
    system: System
    clock_offset_s: float

    def add(self, name: str, *, instance: str = "", env: dict[str, str] | None = None) -> ServiceProcess:
        base = {
            "MENTORING_CLOCK_OFFSET_SECONDS": str(self.clock_offset_s),
            # Small batches: a crash after commit N leaves batches N+1... to be redelivered.
            "MENTORING_CONSUMER_MAX_RECORDS": "4",
        }
        return self.system.add(name, instance=instance, env={**base, **(env or {})})

    def start(self, *procs: ServiceProcess, timeout_s: float = 120.0) -> None:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_ready(timeout_s)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def events(self, topic: str, event_type: str | None = None) -> list[tuple[dict[str, str], bytes]]:
        """(headers, payload) of every record on a (prefixed) topic, optionally of one type."""
        records = asyncio.run(read_topic(self.bootstrap, self.topic(topic)))
        out = []
        for r in records:
            h = headers_of(r)
            if event_type is None or h.get("event_type") == event_type:
                out.append((h, r.value or b""))
        return out

    def announced(self, topic: str, event_type: str) -> list[dict[str, Any]]:
        """The payloads of the events of a type on a topic, once per event_id, in first-seen order.

        A relay killed between publishing a batch and marking it publishes those events again
        (the same event_ids) after the restart: at-least-once, which every consumer's inbox
        absorbs. A second event for one fact (another event_id) is what counts as a duplicate."""
        seen: dict[str, dict[str, Any]] = {}
        for h, v in self.events(topic, event_type):
            seen.setdefault(h["event_id"], json.loads(v))
        return list(seen.values())

    def log_tails(self) -> str:
        return "\n\n".join(
            f"----- {name} ({p.log_path}) -----\n{p.log_tail(40)}" for name, p in self.system.services.items()
        )


@contextmanager
def fault_world(bootstrap: str, data_dir: Path) -> Iterator[Faults]:
    """A topic prefix (its catalog topics created) on `bootstrap`; kills what it started."""
    prefix = f"f{uuid.uuid4().hex[:8]}."
    asyncio.run(ensure_topics(bootstrap, prefix=prefix))
    data_dir.mkdir(parents=True, exist_ok=True)
    system = System(bootstrap=bootstrap, data_dir=data_dir, prefix=prefix)
    world = Faults(bootstrap, prefix, data_dir, system, NOW.timestamp() - time.time())
    try:
        yield world
    finally:
        for p in system.services.values():
            p.kill()


@pytest.fixture
def faults(bootstrap: str, tmp_path: Path) -> Iterator[Faults]:
    with fault_world(bootstrap, tmp_path) as world:
        yield world


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, show the tail of every service's log next to it."""
    report = yield
    found = getattr(item, "funcargs", {}).get("faults")
    if report.failed and isinstance(found, Faults):
        report.sections.append(("service logs", found.log_tails()))
    return report


def wait_exit(proc: ServiceProcess, timeout_s: float = 90.0) -> int:
    """Wait for a process to die by itself (the fault knob); return its exit code."""
    assert proc.proc is not None
    deadline = time.monotonic() + timeout_s
    while proc.proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{proc.name} did not crash within {timeout_s}s:\n{proc.log_tail()}")
        time.sleep(0.1)
    return proc.proc.returncode


def poll(check: Callable[[], T | None], what: str, timeout_s: float = 60.0, every_s: float = 0.3) -> T:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            value = check()
        except (httpx.HTTPError, AssertionError) as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s}s (last: {last!r})")
        time.sleep(every_s)


def get(proc: ServiceProcess, path: str, **params: Any) -> Any:
    r = httpx.get(proc.url + path, params=params or None, headers=STAFF, timeout=15.0)
    r.raise_for_status()
    return r.json()


def duplicates(keys: list[Any]) -> int:
    return sum(n - 1 for n in Counter(keys).values() if n > 1)


# -- mail ------------------------------------------------------------------------------------------
@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with smtp_server() as server:
        yield server


# -- what a crash left behind ----------------------------------------------------------------------
def applied_in_store(data_dir: Path, service: str, event_type: str) -> int:
    """Events of a type the service's consumer group has applied (its inbox, in its SQLite store;
    each service has one consumer group)."""
    import sqlite3

    with sqlite3.connect(data_dir / service / f"{service}.db") as conn:
        row = conn.execute(
            "SELECT count(*) FROM inbox WHERE event_type = ?", (event_type,)
        ).fetchone()
    return int(row[0])


def committed_offsets(bootstrap: str, group: str, topic: str) -> int:
    """Sum over the topic's partitions of the group's committed offsets (records it will not
    read again)."""
    from deploy.ops import consumer_lag

    lags = asyncio.run(consumer_lag(bootstrap, group))
    return sum(lag.committed or 0 for lag in lags if lag.topic == topic)


def reset_group_to_earliest(bootstrap: str, group: str, topics: list[str]) -> None:
    """What an operator does to rebuild a consumer's state: with the group's members stopped,
    commit offset 0 on every partition it reads."""
    from aiokafka import AIOKafkaConsumer

    from deploy.ops import _partitions

    async def go() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [tp for t in topics for tp in await _partitions(consumer, t)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            await consumer.commit({tp: 0 for tp in tps})
        finally:
            await consumer.stop()

    asyncio.run(go())


def clear_inbox(data_dir: Path, service: str) -> int:
    """Forget which events the service applied (as an inbox pruned after its retention would), so
    a replay must be harmless by the handlers' own idempotence, not only by the inbox."""
    import sqlite3

    with sqlite3.connect(data_dir / service / f"{service}.db") as conn:
        return conn.execute("DELETE FROM inbox").rowcount


def applied_in_database(url: str, event_type: str) -> int:
    """applied_in_store for a service on a PostgreSQL database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT count(*) FROM inbox WHERE event_type = :t"), {"t": event_type})
            return int(found.scalar_one())
    finally:
        engine.dispose()
