"""Topic creation from the catalog: idempotent, on any broker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.topics import CATALOG, TopicSpec


async def ensure_topics(
    bootstrap: str, specs: Iterable[TopicSpec] = CATALOG, *, prefix: str = ""
) -> list[str]:
    """Create the topics that do not exist yet (names with `prefix`); return those created now."""
    specs = [replace(s, name=prefix + s.name) for s in specs]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        cluster = await admin.describe_cluster()
        replication = min(3, max(1, len(cluster.get("brokers", [])) or 1))
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        # Another process may create some between our listing and our request: that is fine.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(
                        name=s.name,
                        num_partitions=s.partitions,
                        replication_factor=replication,
                        topic_configs=s.config(),
                    )
                    for s in wanted
                ]
            )
        return [s.name for s in wanted]
    finally:
        await admin.close()
