"""The outbox relay: publishes unpublished outbox rows in order, then marks them sent.

Only the holder of the lease publishes, so two relays (two instances of a service) do not
interleave rows of one key. If a lease holder stalls past its lease and another takes over, a
row may be published twice; every copy carries the same event_id, which consumers dedupe on.
A row is marked sent only after the broker acknowledged it; on a failed send the relay stops at
that row and tries again from there, so nothing is lost and order per key is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, text, update
from sqlalchemy import select as sa_select
from sqlmodel import col

from shared.clock import Clock
from shared.db import Database
from shared.messaging.kafka import KafkaPublisher
from shared.messaging.tables import OutboxRecord

log = logging.getLogger(__name__)
LEASE = "relay"
_OUTBOX = OutboxRecord.__table__  # type: ignore[attr-defined]
_PENDING = (
    sa_select(_OUTBOX.c.id, _OUTBOX.c.topic, _OUTBOX.c.key, _OUTBOX.c.headers, _OUTBOX.c.payload)
    .where(_OUTBOX.c.published_at.is_(None))
    .order_by(_OUTBOX.c.id)
    .limit(bindparam("limit"))
)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publisher: KafkaPublisher,
        clock: Clock,
        *,
        owner: str | None = None,
        batch_size: int = 500,
        poll_interval_s: float = 0.05,
        lease_ttl: timedelta = timedelta(seconds=15),
        topic_prefix: str = "",
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.clock = clock
        self.owner = owner or f"relay-{uuid.uuid4().hex[:12]}"
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.lease_ttl = lease_ttl
        self.topic_prefix = topic_prefix
        self.published_total = 0
        self.last_failed = False
        self._held_until_ms = 0
        self._wake = asyncio.Event()
        self._wake_pending = False  # a wake from another thread is on its way to the loop
        self._loop: asyncio.AbstractEventLoop | None = None  # run()'s, and its thread
        self._loop_thread = 0
        self._stopping = False

    def wake(self) -> None:
        """Ask the relay to look at the outbox now; from any thread (a commit in an HTTP thread).

        From another thread one wake at a time is enough: a commit that finds one on its way is
        seen by it, since the flag is cleared before the event is set and the relay reads the
        outbox after that. Each call_soon_threadsafe writes the loop's self-pipe and then waits for
        the GIL: under load a tenth of activity's HTTP threads' time (py-spy, bench.gateway_bench).
        Not running yet: run() reads the outbox as it starts."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
            return
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._wake_on_loop)
        except RuntimeError:  # the loop is closed: nothing runs the relay any more
            self._wake_pending = False

    def _wake_on_loop(self) -> None:
        self._wake_pending = False
        self._wake.set()

    # -- lease --------------------------------------------------------------------------------
    def _lease_fresh(self) -> bool:
        """Holding the lease with more than half its time left: no need to write it. Without this,
        an idle relay wrote the lease row on every poll (20 write transactions a second)."""
        ttl_ms = int(self.lease_ttl.total_seconds() * 1000)
        return int(self.clock.now().timestamp() * 1000) < self._held_until_ms - ttl_ms // 2

    def _acquire_lease(self) -> bool:
        """Take or renew the lease (a write); the caller has found it not fresh."""
        now_ms = int(self.clock.now().timestamp() * 1000)
        expires = now_ms + int(self.lease_ttl.total_seconds() * 1000)
        with self.db.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO outbox_lease (name, owner, expires_at_ms) "
                    "VALUES (:name, :owner, :exp) ON CONFLICT (name) DO NOTHING"
                ),
                {"name": LEASE, "owner": self.owner, "exp": expires},
            )
            result = conn.execute(
                text(
                    "UPDATE outbox_lease SET owner = :owner, expires_at_ms = :exp "
                    "WHERE name = :name AND (owner = :owner OR expires_at_ms < :now)"
                ),
                {"name": LEASE, "owner": self.owner, "exp": expires, "now": now_ms},
            )
            held = bool(result.rowcount == 1)
        self._held_until_ms = expires if held else 0
        return held

    def release_lease(self) -> None:
        self._held_until_ms = 0
        with self.db.begin() as conn:
            conn.execute(
                text("UPDATE outbox_lease SET expires_at_ms = 0 WHERE name = :name AND owner = :owner"),
                {"name": LEASE, "owner": self.owner},
            )

    # -- publishing ---------------------------------------------------------------------------
    def _pending(self) -> list[Any]:
        """The next unpublished rows in order, as plain rows (ORM objects cost more than the send)."""
        with self.db.connect() as conn:
            return list(conn.execute(_PENDING, {"limit": self.batch_size}).all())

    def _mark(self, sent: list[int], failed: int | None, error: str | None) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            if sent:
                session.execute(
                    update(OutboxRecord)
                    .where(col(OutboxRecord.id).in_(sent))
                    .values(published_at=now, attempts=OutboxRecord.attempts + 1)
                )
            if failed is not None:
                session.execute(
                    update(OutboxRecord)
                    .where(col(OutboxRecord.id) == failed)
                    .values(attempts=OutboxRecord.attempts + 1, last_error=error)
                )

    async def publish_once(self, *, force: bool = False) -> int:
        """Publish one batch if this relay holds the lease; return how many rows were sent."""
        # A fresh lease is known without the store: no thread hop on every wake.
        if not force and not self._lease_fresh() and not await asyncio.to_thread(self._acquire_lease):
            return 0
        rows = await asyncio.to_thread(self._pending)
        if not rows:
            return 0
        results = await self.publisher.send_many(
            [
                (
                    self.topic_prefix + r.topic,
                    r.payload,
                    r.key,
                    [(k, v.encode()) for k, v in json.loads(r.headers)],
                )
                for r in rows
            ]
        )
        # A row is marked sent when its own send succeeded and no earlier row of the same key
        # failed (a key's rows must reach the topic in order). Rows of other keys that went
        # through are kept as sent, so a failure on one partition does not re-send the rest.
        sent: list[int] = []
        failed: int | None = None
        error: str | None = None
        blocked: set[tuple[str, str]] = set()
        for i, row in enumerate(rows):
            assert row.id is not None
            if i >= len(results):  # never queued: nothing after it is known
                failed = failed if failed is not None else row.id
                break
            result = results[i]
            if isinstance(result, BaseException):
                blocked.add((row.topic, row.key))
                if failed is None:
                    failed, error = row.id, f"{type(result).__name__}: {result}"
            elif (row.topic, row.key) not in blocked:
                sent.append(row.id)
        await asyncio.to_thread(self._mark, sent, failed, error)
        self.published_total += len(sent)
        self.last_failed = failed is not None
        if failed is not None:
            log.warning(
                "outbox relay: row %s not published (%s); retrying with a new producer", failed, error
            )
            # After a broker restart an idempotent producer can be stuck in sequence errors
            # (OutOfOrderSequenceNumber) on every retry; a new producer gets a new producer id.
            await self.publisher.reset()
        return len(sent)

    async def run(self) -> None:
        """Publish until stopped; back off while the broker or the store is unavailable."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        delay = self.poll_interval_s
        while not self._stopping:
            # Cleared before reading the outbox, not after: a wake for a commit made while this
            # batch was being published is kept, and the next batch starts at once instead of
            # after the poll interval.
            self._wake.clear()
            try:
                sent = await self.publish_once()
                delay = min(max(delay * 2, 0.2), 5.0) if self.last_failed else self.poll_interval_s
            except Exception:
                log.exception("outbox relay failed; retrying")
                sent = 0
                delay = min(max(delay * 2, 0.2), 5.0)
            if sent >= self.batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
