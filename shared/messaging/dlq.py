"""Dead letters: a poison record is copied to `<topic>.dlq` with why it failed in its headers.

The original key, value and headers are kept, so an operator can read the event with any Kafka
tool and, once the cause is fixed, replay it to its original topic (consumers dedupe replays
by event_id).
"""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord

from shared.clock import Clock
from shared.messaging.kafka import KafkaPublisher
from shared.topics import dlq_of

DLQ_HEADERS = (
    "dlq_reason",
    "dlq_error",
    "dlq_attempts",
    "dlq_consumer",
    "dlq_original_topic",
    "dlq_original_partition",
    "dlq_original_offset",
    "dlq_failed_at",
)
MAX_ERROR_BYTES = 4000


class DeadLetters:
    def __init__(self, publisher: KafkaPublisher, clock: Clock) -> None:
        self.publisher = publisher
        self.clock = clock

    async def send(
        self, consumer: str, record: ConsumerRecord[Any, Any], reason: str, error: str, *, attempts: int
    ) -> None:
        kept = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq_")]
        extra = {
            "dlq_reason": reason,
            "dlq_error": error.encode(errors="replace")[:MAX_ERROR_BYTES].decode(errors="ignore"),
            "dlq_attempts": str(attempts),
            "dlq_consumer": consumer,
            "dlq_original_topic": record.topic,
            "dlq_original_partition": str(record.partition),
            "dlq_original_offset": str(record.offset),
            "dlq_failed_at": self.clock.now().isoformat(),
        }
        headers = kept + [(k, v.encode()) for k, v in extra.items()]
        await self.publisher.send(dlq_of(record.topic), record.value or b"", key=record.key, headers=headers)
