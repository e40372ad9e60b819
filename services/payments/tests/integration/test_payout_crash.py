"""Killing the payments process in the middle of a payout batch and restarting it issues each
approved statement exactly once (a real uvicorn process, SIGKILL, the real broker and stores)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from uuid import uuid4

import httpx
import pytest
from sqlmodel import select

from deploy.kafka.local import free_port
from deploy.runner import uvicorn
from services.payments.adapters.tables import BatchRow, PayoutItemRow, StatementRow
from services.payments.service_layer import statements
from services.payments.service_layer.statements import statement_id_for
from services.payments.tests.support import PROGRAM, Harness, closed, mentor, program
from shared.db import Database
from shared.messaging.admin import ensure_topics
from shared.topics import PAYMENTS
from tests.support import headers_of, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.faults]
REPO = Path(__file__).resolve().parents[4]
OCT_CLOSE = datetime(2026, 11, 1, 12, tzinfo=UTC)
NOV_PAY_DAY = datetime(2026, 11, 2, 16, tzinfo=UTC)  # Monday, 09:00 in Denver
MENTORS = [f"m{i:02d}" for i in range(40)]
T = TypeVar("T")


class PaymentsProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                uvicorn("services.payments.entrypoints.app:create_app", self.port),
                cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """The first truthy result of an async check, polled until the timeout (then the last one)."""
    deadline = time.monotonic() + timeout_s
    result = await check()
    for _ in range(int(timeout_s / 0.2)):
        if result or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
        result = await check()
    return result


@pytest.fixture
def processes() -> Iterator[list[PaymentsProcess]]:
    started: list[PaymentsProcess] = []
    yield started
    for p in started:
        p.stop()


async def test_kill_mid_batch_then_restart_issues_each_statement_once(
    tmp_path: Path, bootstrap: str, store_url: str, processes: list[PaymentsProcess]
) -> None:
    prefix = f"t{uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    setup = Harness(store_url, OCT_CLOSE)
    setup.tx(lambda s, e: statements.program_configured(s, program()))
    for m in [*MENTORS, "late-reviewer"]:
        enrolled, october = mentor(m), closed(m, "2026-10", (f"{m}-1", "meeting", 60))
        setup.tx(lambda s, e: statements.mentor_enrolled(s, enrolled))  # noqa: B023
        setup.tx(lambda s, e: statements.month_closed(s, e, OCT_CLOSE, october))  # noqa: B023
    for m in MENTORS:  # all but "late-reviewer" approved
        sid = statement_id_for(PROGRAM, m, "2026-10")
        setup.tx(lambda s, e: statements.approve(s, e, OCT_CLOSE, sid, "staff"))  # noqa: B023
    setup.close()

    offset = (NOV_PAY_DAY - datetime.now(UTC)).total_seconds()  # the processes' clock reads pay day
    env = {
        "MENTORING_DATABASE_URL": store_url, "MENTORING_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MENTORING_TOPIC_PREFIX": prefix, "MENTORING_CLOCK_OFFSET_SECONDS": str(offset),
        "MENTORING_SCHEDULER_INTERVAL_SECONDS": "0.5", "MENTORING_ALLOW_CLOCK_CONTROL": "true",
        "MENTORING_LOG_LEVEL": "INFO",
    }
    db = Database(store_url)

    def count(model: type) -> int:
        with db.session() as s:
            return len(s.exec(select(model)).all())

    def statuses() -> dict[str, str]:
        with db.session() as s:
            return {r.mentor_id: r.status for r in s.exec(select(StatementRow)).all()}

    # 1. The batch is being written (50 ms per item, 40 items): kill the process in the middle.
    log = tmp_path / "payments.log"
    first = PaymentsProcess({**env, "MENTORING_PAYMENTS_PAYOUT_ITEM_DELAY_SECONDS": "0.05"}, log)
    processes.append(first)
    await wait_until(lambda: "building the batch" in log.read_text(errors="replace"), timeout_s=60)
    await asyncio.sleep(0.6)  # about a dozen items written, none committed
    assert first.proc.poll() is None, log.read_text()
    first.kill()
    assert "payout batch" not in log.read_text(errors="replace"), "the batch finished before the kill"
    assert count(BatchRow) == 0 and count(PayoutItemRow) == 0, "nothing of the batch survives the crash"
    assert set(statuses().values()) == {"approved", "in_review"}

    # 2. Restart: the pay-day job runs again and pays every approved statement once.
    second = PaymentsProcess(env, tmp_path / "payments-2.log")
    processes.append(second)
    async with httpx.AsyncClient(base_url=second.url, timeout=10) as client:

        async def batches() -> list[dict[str, object]]:
            try:
                return list((await client.get("/batches")).json())
            except httpx.TransportError:
                return []

        await eventually(batches, timeout_s=60)
        for _ in range(2):  # and an operator re-runs the job
            assert (await client.post("/admin/jobs/payout")).status_code == 200
        [batch] = await batches()
        assert (batch["items"], batch["total"]) == (40, "1600.00")
        pending = (await client.get("/payouts/pending")).json()
        assert [p["mentor_id"] for p in pending] == ["late-reviewer"]
    with db.session() as s:
        refs = [i.reference for i in s.exec(select(PayoutItemRow)).all()]
    assert sorted(refs) == sorted(statement_id_for(PROGRAM, m, "2026-10") for m in MENTORS)
    assert {m: st for m, st in statuses().items() if st == "issued"}.keys() == set(MENTORS)

    async def issued_events() -> set[str]:
        records = await read_topic(bootstrap, prefix + PAYMENTS)
        return {headers_of(r)["event_id"] for r in records if headers_of(r)["event_type"] == "PayoutIssued"}

    assert len(await eventually(issued_events, timeout_s=30)) == 1
    db.dispose()
