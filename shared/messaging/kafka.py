"""The one Kafka producer a service process uses (outbox relay and dead-letter records)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

Headers = Sequence[tuple[str, bytes]]


class KafkaPublisher:
    """An idempotent producer (acks=all): a retried send never writes a record twice."""

    def __init__(self, bootstrap: str, *, client_id: str = "mentoring", linger_ms: int = 5) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.linger_ms = linger_ms
        # Created in start(): aiokafka binds a producer to the running event loop.
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                enable_idempotence=True,
                acks="all",
                linger_ms=self.linger_ms,
                request_timeout_ms=15000,
                max_batch_size=256 * 1024,
            )
            await producer.start()
            self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def reset(self) -> None:
        """Drop the producer; the next send starts a new one (with a new producer id)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)

    async def _started(self) -> AIOKafkaProducer:
        await self.start()
        assert self._producer is not None
        return self._producer

    async def send(
        self, topic: str, value: bytes, *, key: str | bytes | None, headers: Headers
    ) -> RecordMetadata:
        producer = await self._started()
        raw_key = key.encode() if isinstance(key, str) else key
        return await producer.send_and_wait(topic, value=value, key=raw_key, headers=list(headers))

    async def send_many(
        self, records: Sequence[tuple[str, bytes, str, Headers]]
    ) -> list[RecordMetadata | BaseException]:
        """Send records in order; return, per record, its metadata or the error it met.

        All sends are queued before any is awaited, so they travel in batches; the idempotent
        producer keeps their order within each partition.
        """
        producer = await self._started()
        futures = []
        for topic, value, key, headers in records:
            try:
                futures.append(
                    await producer.send(topic, value=value, key=key.encode(), headers=list(headers))
                )
            except Exception as exc:  # queueing failed: later records must not overtake it
                futures.append(exc)
                break
        results: list[RecordMetadata | BaseException] = []
        for fut in futures:
            if isinstance(fut, BaseException):
                results.append(fut)
                continue
            try:
                results.append(await fut)
            except Exception as exc:
                results.append(exc)
        return results
