"""The envelope every event travels in. Its fields ride as Kafka headers, so any Kafka tool
shows them; the payload is the event's pydantic model as JSON."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.clock import Clock, ensure_utc

CONTENT_TYPE = "application/json"
ENVELOPE_HEADERS = (
    "event_id",
    "event_type",
    "event_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "key",
)
_REQUIRED = tuple(h for h in ENVELOPE_HEADERS if h != "causation_id")


class EnvelopeError(ValueError):
    """The record's headers do not form a valid envelope."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """Built only by `new_envelope` (trusted values) and `from_headers` (checked there): a plain
    slotted dataclass, since one is read per record consumed (a pydantic model cost 3x as much)."""

    event_id: uuid.UUID
    event_type: str
    event_version: int
    occurred_at: datetime  # aware, UTC
    producer: str
    correlation_id: str
    causation_id: str | None
    key: str

    def to_headers(self) -> list[tuple[str, bytes]]:
        values = {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "event_version": str(self.event_version),
            "occurred_at": self.occurred_at.isoformat(),
            "producer": self.producer,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id or "",
            "key": self.key,
        }
        headers = [(name, values[name].encode()) for name in ENVELOPE_HEADERS]
        headers.append(("content-type", CONTENT_TYPE.encode()))
        return headers

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes]] | None) -> Envelope:
        found: dict[str, str] = {}
        try:
            for name, raw in headers or ():
                found[name] = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"header {name!r} is not UTF-8") from exc
        if not all(found.get(h) for h in _REQUIRED):
            missing = [h for h in _REQUIRED if not found.get(h)]
            raise EnvelopeError(f"missing envelope header(s): {', '.join(missing)}")
        try:
            occurred_at = datetime.fromisoformat(found["occurred_at"])
            if occurred_at.tzinfo is None:
                raise ValueError("occurred_at has no time zone")
            return cls(
                event_id=uuid.UUID(found["event_id"]),
                event_type=found["event_type"],
                event_version=int(found["event_version"]),
                occurred_at=ensure_utc(occurred_at),
                producer=found["producer"],
                correlation_id=found["correlation_id"],
                causation_id=found.get("causation_id") or None,
                key=found["key"],
            )
        except ValueError as exc:
            raise EnvelopeError(f"invalid envelope header: {exc}") from exc


@dataclass(frozen=True)
class Cause:
    """What caused an event: the request or event it answers, and the conversation it is part of."""

    correlation_id: str
    causation_id: str | None

    @classmethod
    def of_event(cls, envelope: Envelope) -> Cause:
        return cls(correlation_id=envelope.correlation_id, causation_id=str(envelope.event_id))

    @classmethod
    def of_request(cls, request_id: str | None = None) -> Cause:
        rid = request_id or str(uuid.uuid4())
        return cls(correlation_id=rid, causation_id=rid)

    @classmethod
    def new(cls) -> Cause:
        return cls.of_request(None)


def new_envelope(
    *, event_type: str, event_version: int, key: str, producer: str, clock: Clock, cause: Cause
) -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        event_version=event_version,
        occurred_at=ensure_utc(clock.now()),
        producer=producer,
        correlation_id=cause.correlation_id,
        causation_id=cause.causation_id,
        key=key,
    )


def header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    for h, v in headers or ():
        if h == name:
            return v.decode(errors="replace")
    return None
