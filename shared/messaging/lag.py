"""Consumer lag from the broker: end offset minus committed offset, per group and partition."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class Lag:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


async def consumer_lag(bootstrap: str, group: str | None = None) -> list[Lag]:
    """Committed offset vs end offset for every partition of every (or one) consumer group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        groups = [group] if group else sorted(g[0] for g in await admin.list_consumer_groups())
        out: list[Lag] = []
        for g in groups:
            committed = await admin.list_consumer_group_offsets(g)
            if not committed:
                continue
            ends = await consumer.end_offsets(list(committed))
            for tp, meta in sorted(committed.items()):
                out.append(
                    Lag(g, tp.topic, tp.partition, meta.offset if meta.offset >= 0 else None, ends[tp])
                )
        return out
    finally:
        await consumer.stop()
        await admin.close()
