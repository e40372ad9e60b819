"""Event contracts: the envelope, the registry and every event of the catalog."""

from shared.contracts import activity, matching, notify, payments
from shared.contracts.base import (
    ContractError,
    Event,
    InvalidPayloadError,
    UnknownEventError,
    UnknownVersionError,
    decode,
    event,
    lookup,
    registered,
    schema_catalog,
)
from shared.contracts.envelope import Cause, Envelope, EnvelopeError, new_envelope

__all__ = [
    "Cause",
    "ContractError",
    "Envelope",
    "EnvelopeError",
    "Event",
    "InvalidPayloadError",
    "UnknownEventError",
    "UnknownVersionError",
    "activity",
    "decode",
    "event",
    "lookup",
    "matching",
    "new_envelope",
    "notify",
    "payments",
    "registered",
    "schema_catalog",
]
