"""The one Kafka producer a service process uses (outbox relay and dead-letter records)."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

Headers = Sequence[tuple[str, bytes]]


class KafkaPublisher:
    """An idempotent producer (acks=all): a retried send never writes a record twice."""

    def __init__(self, bootstrap: str, *, client_id: str = "mentoring", linger_ms: int = 5) -> None:
        self.bootstrap = bootstrap
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=linger_ms,
            request_timeout_ms=15000,
            max_batch_size=256 * 1024,
        )
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self._producer.start()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()

    async def send(
        self, topic: str, value: bytes, *, key: str | bytes | None, headers: Headers
    ) -> RecordMetadata:
        await self.start()
        raw_key = key.encode() if isinstance(key, str) else key
        return await self._producer.send_and_wait(topic, value=value, key=raw_key, headers=list(headers))

    async def send_many(
        self, records: Sequence[tuple[str, bytes, str, Headers]]
    ) -> list[RecordMetadata | BaseException]:
        """Send records in order; return, per record, its metadata or the error it met.

        All sends are queued before any is awaited, so they travel in batches; the idempotent
        producer keeps their order within each partition.
        """
        await self.start()
        futures = []
        for topic, value, key, headers in records:
            try:
                futures.append(
                    await self._producer.send(topic, value=value, key=key.encode(), headers=list(headers))
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
