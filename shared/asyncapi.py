"""AsyncAPI documents generated from the services' FastStream brokers.

Each service's broker carries its consumers' subscribers (the topics it reads and the event types
it handles); the topic it publishes to is declared as a publisher whose payload is the union of
the events registered for that topic, so the document shows every event schema.
"""

from __future__ import annotations

import json
from typing import Any, Union

from faststream.specification import AsyncAPI

from shared.contracts import registered
from shared.service import Service
from shared.topics import ACTIVITY, MATCHING, NOTIFY, PAYMENTS

PUBLISHES = {"matching": MATCHING, "activity": ACTIVITY, "payments": PAYMENTS, "notify": NOTIFY}


def service_asyncapi(service: Service) -> dict[str, Any]:
    service.wire()
    topic = PUBLISHES.get(service.name)
    if topic is not None:
        events = [m for m in registered().values() if m.topic == topic]
        payload: Any = Union[tuple(events)] if len(events) > 1 else events[0]  # noqa: UP007
        service.broker.publisher(
            service.settings.topic_prefix + topic,
            schema=payload,
            title=f"{topic}:publish",
            description="Published through the transactional outbox; key = aggregate id; envelope in "
            "headers (event_id, event_type, event_version, occurred_at, producer, correlation_id, "
            "causation_id, key). Events: " + ", ".join(sorted(e.event_type for e in events)),
        )
    spec = AsyncAPI(service.broker, title=f"{service.name} service events", version="1.0.0")
    doc: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return doc
