"""The topic catalog: every topic, its partitions, key, retention and dead-letter topic, in one place.

Each service publishes its domain events to one topic, keyed by the aggregate id so that all
events of one aggregate keep their order on one partition. Domain topics keep their events
forever (retention -1): a consumer group reset to the earliest offset rebuilds its projections.
Every domain topic has a dead-letter topic `<topic>.dlq` for poison messages.
"""

from __future__ import annotations

from dataclasses import dataclass

DLQ_SUFFIX = ".dlq"
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    retention_ms: int
    description: str
    is_dlq: bool = False

    @property
    def dlq(self) -> str:
        if self.is_dlq:
            raise ValueError(f"{self.name} is itself a dead-letter topic")
        return self.name + DLQ_SUFFIX

    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


MATCHING = "matching.events"
ACTIVITY = "activity.events"
PAYMENTS = "payments.events"
NOTIFY = "notify.events"

DOMAIN_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        MATCHING,
        6,
        "aggregate id: program, person or partnership",
        -1,
        "programs, enrolment, matching, pauses, metamentors, incidents",
    ),
    TopicSpec(
        ACTIVITY,
        6,
        "aggregate id: partnership, entry or mentor",
        -1,
        "meetings, activities, time entries, compliance, month close",
    ),
    TopicSpec(
        PAYMENTS,
        6,
        "aggregate id: statement, batch or reimbursement",
        -1,
        "statements, clarification, approvals, payouts, reimbursements",
    ),
    TopicSpec(NOTIFY, 3, "aggregate id: message or newsletter", -1, "emails sent and failed, newsletters"),
)


def dlq_spec(topic: TopicSpec) -> TopicSpec:
    return TopicSpec(
        topic.dlq,
        3,
        "the original record's key",
        30 * DAY_MS,
        f"poison messages from {topic.name}, with the error in headers",
        is_dlq=True,
    )


CATALOG: tuple[TopicSpec, ...] = DOMAIN_TOPICS + tuple(dlq_spec(t) for t in DOMAIN_TOPICS)
BY_NAME: dict[str, TopicSpec] = {t.name: t for t in CATALOG}


def dlq_of(topic: str) -> str:
    """The dead-letter topic of a topic (known or not: tests use their own topics)."""
    spec = BY_NAME.get(topic)
    return spec.dlq if spec else topic + DLQ_SUFFIX
