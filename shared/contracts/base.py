"""Event models and the registry (event_type, event_version) -> model.

An event declares its type, version, topic and key field with the @event decorator. Events evolve
by adding optional fields; a breaking change is a new version registered beside the old one.
Unknown types or versions and invalid payloads raise errors whose text names the reason, which
the consumer puts in the dead-letter record's headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError


class Event(BaseModel):
    # Readers ignore fields they do not know yet, so producers can add optional fields first.
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    event_version: ClassVar[int]
    topic: ClassVar[str]
    key_field: ClassVar[str]

    def aggregate_key(self) -> str:
        return str(getattr(self, self.key_field))

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


class ContractError(ValueError):
    """An event that no consumer can accept; `reason` is a short machine-readable class."""

    reason = "contract"


class UnknownEventError(ContractError):
    reason = "unknown_type"


class UnknownVersionError(ContractError):
    reason = "unknown_version"


class InvalidPayloadError(ContractError):
    reason = "invalid_payload"


E = TypeVar("E", bound=type[Event])
_REGISTRY: dict[tuple[str, int], type[Event]] = {}


def event(event_type: str, *, topic: str, key: str, version: int = 1) -> Callable[[E], E]:
    """Register an event model under its type and version."""

    def register(cls: E) -> E:
        if key not in cls.__pydantic_fields__:
            raise TypeError(f"{cls.__name__}: key field {key!r} is not a field")
        existing = _REGISTRY.get((event_type, version))
        if existing is not None and existing is not cls:
            raise TypeError(f"{event_type} v{version} is registered twice")
        cls.event_type = event_type
        cls.event_version = version
        cls.topic = topic
        cls.key_field = key
        _REGISTRY[(event_type, version)] = cls
        return cls

    return register


def lookup(event_type: str, event_version: int) -> type[Event]:
    model = _REGISTRY.get((event_type, event_version))
    if model is not None:
        return model
    known = sorted(v for (t, v) in _REGISTRY if t == event_type)
    if known:
        raise UnknownVersionError(
            f"{event_type} version {event_version} is not known (known versions: {known})"
        )
    raise UnknownEventError(f"unknown event type {event_type!r}")


def decode(event_type: str, event_version: int, payload: bytes) -> Event:
    model = lookup(event_type, event_version)
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<payload>'}: {err['msg']}"
            for err in exc.errors()[:10]
        )
        raise InvalidPayloadError(f"{event_type} v{event_version}: {problems}") from exc


def registered() -> dict[tuple[str, int], type[Event]]:
    return dict(sorted(_REGISTRY.items()))


def schema_catalog() -> dict[str, dict[str, object]]:
    """Every registered event with its topic, key and JSON schema (for the operator CLI and docs)."""
    return {
        f"{t} v{v}": {
            "topic": m.topic,
            "key": m.key_field,
            "schema": json.loads(json.dumps(m.model_json_schema())),
        }
        for (t, v), m in registered().items()
    }
