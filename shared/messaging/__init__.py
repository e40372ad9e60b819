"""Messaging: outbox, relay, inbox consumer policy, dead letters, topic creation."""

from shared.messaging.consumer import (
    EventConsumer,
    HandlerContext,
    RetryPolicy,
    TransientError,
    is_transient,
)
from shared.messaging.dlq import DeadLetters
from shared.messaging.kafka import KafkaPublisher
from shared.messaging.outbox import Outbox
from shared.messaging.relay import OutboxRelay
from shared.messaging.tables import MESSAGING_TABLES, InboxRecord, OutboxRecord, RelayLease

__all__ = [
    "MESSAGING_TABLES",
    "DeadLetters",
    "EventConsumer",
    "HandlerContext",
    "InboxRecord",
    "KafkaPublisher",
    "Outbox",
    "OutboxRecord",
    "OutboxRelay",
    "RelayLease",
    "RetryPolicy",
    "TransientError",
    "is_transient",
]
