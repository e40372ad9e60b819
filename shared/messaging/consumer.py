"""The consumer policy every service uses: inbox, commit after effect, retries, dead letters.

A consumer is a Kafka consumer group (its `name`) with one handler per event class. Records
arrive in batches; for each batch:

1. Each record is decoded: envelope from headers, model from the registry. A record that cannot
   be decoded (no envelope, unknown type or version, invalid payload) is poison: it goes to the
   topic's dead-letter topic with the reason in its headers.
   A record whose type this consumer does not handle is skipped on its type and version
   headers alone (its envelope and payload are left to the consumers that apply it).
2. The handled events are applied in one database transaction, each with its inbox row
   (consumer, event_id); an event already in the inbox is skipped, so a redelivered or
   twice-published event has no second effect. A handler registered with `handles_batch`
   gets each run of consecutive events of its class in one call (set-based work: one
   statement for many rows), still in that transaction and in the batch's order.
3. If a handler fails, the batch is rolled back and its events are applied one by one, so the
   good ones commit and the failing one is retried with backoff; after `attempts` failures it is
   dead-lettered and the partition moves on.
4. A transient failure (the store or the broker unavailable) is never dead-lettered: the whole
   batch is handed back (FastStream's NACK_ON_ERROR seeks the partitions back) after a pause,
   and is read again.
5. Only when all of that is done does FastStream commit the offsets (AckPolicy.NACK_ON_ERROR):
   the offset never passes a record whose effect is not committed or dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy import bindparam, insert
from sqlalchemy import exc as sa_exc
from sqlalchemy import select as sa_select
from sqlmodel import Session

from shared.clock import Clock
from shared.contracts.base import ContractError, Event, decode, lookup
from shared.contracts.envelope import Cause, Envelope, EnvelopeError
from shared.db import Database
from shared.messaging.dlq import DeadLetters
from shared.messaging.outbox import Outbox
from shared.messaging.tables import InboxRecord

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Event)
_INBOX = InboxRecord.__table__  # type: ignore[attr-defined]
# Built once: every batch runs them.
_SEEN = sa_select(_INBOX.c.event_id).where(
    _INBOX.c.consumer == bindparam("consumer"), _INBOX.c.event_id.in_(bindparam("ids", expanding=True))
)
_INBOX_INSERT = insert(_INBOX)


class TransientError(Exception):
    """Raise from a handler when the event cannot be applied *yet* (retry, never dead-letter)."""


TRANSIENT = (
    TransientError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    ConnectionError,
    TimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT)


@dataclass
class HandlerContext:
    """What a handler gets besides the event: its transaction, the envelope, time and the outbox."""

    session: Session
    envelope: Envelope
    clock: Clock
    outbox: Outbox

    def emit(self, event: Event) -> Envelope:
        """Publish an event caused by the one being handled (through the outbox)."""
        return self.outbox.add(self.session, event, Cause.of_event(self.envelope))


Handler = Callable[[HandlerContext, Any], None]
# A run of consecutive events of one class, each with its own context (same session).
BatchHandler = Callable[[Sequence[tuple[HandlerContext, Any]]], None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # a handler failing this many times sends the event to the DLQ
    backoff_s: float = 0.2
    backoff_max_s: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_s * (2 ** max(attempt - 1, 0)), self.backoff_max_s))


@dataclass
class _Item:
    record: ConsumerRecord[Any, Any]
    envelope: Envelope
    event: Event
    handler: Handler


@dataclass
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    retries: int = 0
    transient_failures: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class EventConsumer:
    def __init__(
        self,
        name: str,
        db: Database,
        outbox: Outbox,
        clock: Clock,
        dead_letters: DeadLetters,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.db = db
        self.outbox = outbox
        self.clock = clock
        self.dead_letters = dead_letters
        self.policy = policy or RetryPolicy()
        self.handlers: dict[type[Event], Handler] = {}
        self.batch_handlers: dict[type[Event], BatchHandler] = {}
        self.stats = ConsumerStats()
        self._transient_streak = 0
        self.after_commit: Callable[[], None] | None = None  # e.g. wake the outbox relay

    def handles(self, event_cls: type[E]) -> Callable[[Callable[[HandlerContext, E], None]], Handler]:
        def register(fn: Callable[[HandlerContext, E], None]) -> Handler:
            self.handlers[event_cls] = fn
            self.batch_handlers.pop(event_cls, None)
            return fn

        return register

    def handles_batch(
        self, event_cls: type[E]
    ) -> Callable[[Callable[[Sequence[tuple[HandlerContext, E]]], None]], BatchHandler]:
        """Register a handler for runs of events of `event_cls`: it gets the consecutive events
        of that class in a batch (new ones only, in order) in one call, each with its context.
        It must give the same end state as applying them one by one (a batch that fails is
        applied again one event at a time, each as a run of one)."""

        def register(fn: Callable[[Sequence[tuple[HandlerContext, E]]], None]) -> BatchHandler:
            self.batch_handlers[event_cls] = fn
            self.handlers[event_cls] = lambda ctx, event: fn([(ctx, event)])
            return fn

        return register

    # -- decoding -----------------------------------------------------------------------------
    def _not_ours(self, headers: Sequence[tuple[str, bytes]] | None) -> bool:
        """True when the headers name a known event type this consumer has no handler for.
        Anything else (headers missing or unreadable, an unknown type) takes the full path,
        which dead-letters it with its reason."""
        event_type = event_version = None
        for name, raw in headers or ():
            if name == "event_type":
                event_type = raw
            elif name == "event_version":
                event_version = raw
        if not isinstance(event_type, bytes) or not isinstance(event_version, bytes):
            return False
        try:
            model = lookup(event_type.decode(), int(event_version))
        except (ValueError, ContractError):  # also UnicodeDecodeError
            return False
        return model not in self.handlers

    def _decode(self, record: ConsumerRecord[Any, Any]) -> _Item | None:
        """Return the item to apply, or None when this consumer has no handler for its type."""
        if self._not_ours(record.headers):
            return None
        envelope = Envelope.from_headers(record.headers)
        event = decode(envelope.event_type, envelope.event_version, record.value or b"")
        handler = self.handlers.get(type(event))
        if handler is None:
            return None
        return _Item(record, envelope, event, handler)

    # -- applying -----------------------------------------------------------------------------
    def _apply(self, items: Sequence[_Item]) -> int:
        """Apply items in one transaction with their inbox rows; return how many were new."""
        ids = [str(i.envelope.event_id) for i in items]
        applied = 0
        now = self.clock.now()
        inbox_rows: list[dict[str, Any]] = []
        with self.db.session() as session:
            seen = set(session.execute(_SEEN, {"consumer": self.name, "ids": ids}).scalars())
            run: list[tuple[HandlerContext, Event]] = []
            run_handler: BatchHandler | None = None
            for item in items:
                event_id = str(item.envelope.event_id)
                if event_id in seen:
                    continue  # already applied: a redelivery or a second publication
                seen.add(event_id)
                ctx = HandlerContext(session, item.envelope, self.clock, self.outbox)
                batch_handler = self.batch_handlers.get(type(item.event))
                if run and (batch_handler is not run_handler or type(item.event) is not type(run[0][1])):
                    assert run_handler is not None
                    run_handler(run)  # the run ends: apply it before the next event
                    run = []
                if batch_handler is not None:
                    run.append((ctx, item.event))
                    run_handler = batch_handler
                else:
                    item.handler(ctx, item.event)
                inbox_rows.append(
                    {
                        "consumer": self.name,
                        "event_id": event_id,
                        "event_type": item.envelope.event_type,
                        "processed_at": now,
                    }
                )
                applied += 1
            if run:
                assert run_handler is not None
                run_handler(run)
            if inbox_rows:
                # One executemany in the same transaction (ORM objects cost more than the effect).
                session.flush()
                session.execute(_INBOX_INSERT, inbox_rows)
        return applied

    async def _pause_for_transient(self, exc: BaseException) -> None:
        self._transient_streak += 1
        self.stats.transient_failures += 1
        delay = self.policy.delay(self._transient_streak)
        log.warning("%s: transient failure (%s); retrying the batch in %.1fs", self.name, exc, delay)
        await asyncio.sleep(delay)

    def _count(self, items: Sequence[_Item], applied: int) -> None:
        self.stats.processed += applied
        self.stats.duplicates += len(items) - applied
        for item in items:
            t = item.envelope.event_type
            self.stats.by_type[t] = self.stats.by_type.get(t, 0) + 1

    async def process_batch(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Apply a batch; raise only for a transient failure (the batch will be read again)."""
        items: list[_Item] = []
        for record in records:
            try:
                item = self._decode(record)
            except (EnvelopeError, ContractError) as exc:
                reason = exc.reason if isinstance(exc, ContractError) else "undecodable"
                await self.dead_letters.send(self.name, record, reason, str(exc), attempts=1)
                self.stats.dead_lettered += 1
                continue
            if item is None:
                self.stats.ignored += 1
            else:
                items.append(item)
        if not items:
            return
        try:
            applied = await asyncio.to_thread(self._apply, items)
            self._count(items, applied)
            self._transient_streak = 0
            self._after_commit()
            return
        except Exception as exc:
            if is_transient(exc):
                await self._pause_for_transient(exc)
                raise
            log.warning("%s: batch of %d failed (%s); applying one by one", self.name, len(items), exc)
        for item in items:
            await self._apply_alone(item)
        self._after_commit()

    async def _apply_alone(self, item: _Item) -> None:
        for attempt in range(1, self.policy.attempts + 1):
            try:
                applied = await asyncio.to_thread(self._apply, [item])
                self._count([item], applied)
                self._transient_streak = 0
                return
            except Exception as exc:
                if is_transient(exc):
                    await self._pause_for_transient(exc)
                    raise
                if attempt == self.policy.attempts:
                    log.error(
                        "%s: %s %s failed %d times; dead-lettering it: %s",
                        self.name,
                        item.envelope.event_type,
                        item.envelope.event_id,
                        attempt,
                        exc,
                    )
                    error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
                    await self.dead_letters.send(
                        self.name, item.record, "handler_failed", error, attempts=attempt
                    )
                    self.stats.dead_lettered += 1
                    return
                self.stats.retries += 1
                await asyncio.sleep(self.policy.delay(attempt))

    def _after_commit(self) -> None:
        if self.after_commit is not None:
            self.after_commit()

    # -- wiring -------------------------------------------------------------------------------
    def subscribe(
        self, broker: KafkaBroker, *topics: str, max_records: int = 500, batch_timeout_ms: int = 100,
        fetch_min_bytes: int = 1, fetch_max_wait_ms: int = 500,
    ) -> Any:
        """Attach this consumer to a FastStream broker as one batch subscriber.

        NACK_ON_ERROR: offsets are committed after the handler returns, and a raised (transient)
        failure seeks the partitions back so the batch is read again. Never ACK_FIRST.
        """

        async def on_batch(msg: KafkaMessage) -> None:
            raw = msg.raw_message
            records = raw if isinstance(raw, tuple) else (raw,)
            await self.process_batch(records)

        on_batch.__name__ = f"{self.name}_batch"
        return broker.subscriber(
            *topics,
            group_id=self.name,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=batch_timeout_ms,
            fetch_min_bytes=fetch_min_bytes,
            fetch_max_wait_ms=fetch_max_wait_ms,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            # Never let FastStream parse bodies: a non-JSON body would raise before on_batch,
            # be nacked and read again forever. _decode parses and dead-letters it instead.
            decoder=_raw_body,
            title=f"{self.name}:{','.join(topics)}",
            description=", ".join(sorted(c.event_type for c in self.handlers)),
        )(on_batch)


async def _raw_body(msg: Any) -> Any:
    return msg.body
