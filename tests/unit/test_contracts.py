"""Envelope, registry and money: the contracts every service relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.clock import ManualClock
from shared.contracts import (
    Cause,
    Envelope,
    EnvelopeError,
    InvalidPayloadError,
    UnknownEventError,
    UnknownVersionError,
    decode,
    new_envelope,
    registered,
    schema_catalog,
)
from shared.contracts.activity import MeetingLogged
from shared.contracts.matching import MenteeMatched, ProgramConfigured
from shared.contracts.program import ProgramPolicy
from shared.money import Money, round_money
from shared.topics import CATALOG, DOMAIN_TOPICS, dlq_of

pytestmark = pytest.mark.unit

CATALOG_EVENTS = {
    "ProgramConfigured",
    "MentorEnrolled",
    "MenteeEnrolled",
    "MentorProfileUpdated",
    "MentorCapacityChanged",
    "MentorPaused",
    "MentorResumed",
    "MenteeMatched",
    "PartnershipEnded",
    "RematchRequested",
    "MetamentorAssigned",
    "IncidentReported",
    "MeetingLogged",
    "MeetingCorrected",
    "ActivityRecorded",
    "TimeEntryRecorded",
    "TimeEntryAmended",
    "PartnershipAtRisk",
    "MonthClosed",
    "StatementPrepared",
    "ClarificationRequested",
    "PaymentApproved",
    "PayoutIssued",
    "ReimbursementApproved",
    "ReimbursementRefused",
    "EmailSent",
    "EmailFailed",
    "NewsletterPublished",
}


def test_every_catalog_event_is_registered_on_a_catalog_topic() -> None:
    types = {t for (t, _v) in registered()}
    assert types >= CATALOG_EVENTS
    topics = {t.name for t in DOMAIN_TOPICS}
    for model in registered().values():
        if model.event_type.startswith("Test"):
            continue  # tests register their own events on their own topics
        assert model.topic in topics, model
        assert model.key_field in model.model_fields


def test_envelope_round_trips_through_headers() -> None:
    clock = ManualClock(datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-7))))
    env = new_envelope(
        event_type="MeetingLogged",
        event_version=1,
        key="partnership-9",
        producer="activity",
        clock=clock,
        cause=Cause(correlation_id="corr-1", causation_id="evt-0"),
    )
    headers = env.to_headers()
    names = [h for h, _ in headers]
    assert names[:8] == [
        "event_id",
        "event_type",
        "event_version",
        "occurred_at",
        "producer",
        "correlation_id",
        "causation_id",
        "key",
    ]
    back = Envelope.from_headers(headers)
    assert back == env
    assert back.occurred_at.tzinfo is not None and back.occurred_at.utcoffset() == timedelta(0)
    assert back.occurred_at == datetime(2026, 12, 1, 6, 30, tzinfo=UTC)


def test_envelope_refuses_missing_or_bad_headers() -> None:
    with pytest.raises(EnvelopeError, match="missing envelope header"):
        Envelope.from_headers([("event_type", b"MeetingLogged")])
    env = Cause.new()
    good = new_envelope(
        event_type="X",
        event_version=1,
        key="k",
        producer="p",
        clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)),
        cause=env,
    )
    broken = [(k, b"not-a-uuid" if k == "event_id" else v) for k, v in good.to_headers()]
    with pytest.raises(EnvelopeError, match="invalid envelope header"):
        Envelope.from_headers(broken)
    naive = [(k, b"2026-01-01T00:00:00" if k == "occurred_at" else v) for k, v in good.to_headers()]
    with pytest.raises(EnvelopeError):
        Envelope.from_headers(naive)


def test_cause_of_event_links_correlation_and_causation() -> None:
    env = new_envelope(
        event_type="X",
        event_version=1,
        key="k",
        producer="p",
        clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)),
        cause=Cause.of_request("req-1"),
    )
    cause = Cause.of_event(env)
    assert cause.correlation_id == "req-1"
    assert cause.causation_id == str(env.event_id)


def test_registry_decodes_and_refuses_with_reasons() -> None:
    matched = MenteeMatched(
        partnership_id="p1",
        program_id="prog",
        mentor_id="m1",
        mentee_id="e1",
        started_at=datetime(2026, 9, 1, tzinfo=UTC),
        score=7,
        reasons=["subjects"],
    )
    assert decode("MenteeMatched", 1, matched.to_json()) == matched
    assert matched.aggregate_key() == "p1"
    with pytest.raises(UnknownEventError, match="unknown event type 'Nope'"):
        decode("Nope", 1, b"{}")
    with pytest.raises(UnknownVersionError, match=r"version 2 is not known \(known versions: \[1\]\)"):
        decode("MenteeMatched", 2, matched.to_json())
    with pytest.raises(InvalidPayloadError, match="mentor_id: Field required"):
        decode(
            "MenteeMatched",
            1,
            b'{"partnership_id":"p1","program_id":"x","mentee_id":"e","started_at":"2026-09-01T00:00:00Z"}',
        )
    with pytest.raises(InvalidPayloadError, match="duration_minutes"):
        decode(
            "MeetingLogged",
            1,
            MeetingLogged(
                meeting_id="m",
                partnership_id="p",
                program_id="g",
                mentor_id="a",
                mentee_id="b",
                started_at=datetime(2026, 9, 1, tzinfo=UTC),
                duration_minutes=30,
                mode="video",
                intentional=True,
            )
            .to_json()
            .replace(b'"duration_minutes":30', b'"duration_minutes":900'),
        )


def test_readers_ignore_fields_added_later() -> None:
    payload = b'{"program_id":"p","name":"n","policy":{},"added_in_a_later_release":1}'
    event = decode("ProgramConfigured", 1, payload)
    assert isinstance(event, ProgramConfigured) and event.policy == ProgramPolicy()


def test_program_policy_refuses_unknown_time_zone_and_bad_school_year() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        ProgramPolicy(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="inside the school year"):
        ProgramPolicy.model_validate(
            {
                "school_year": {
                    "start": "2026-08-01",
                    "end": "2027-07-31",
                    "semesters": [{"name": "S", "start": "2025-01-01", "end": "2026-01-01"}],
                }
            }
        )


def test_schema_catalog_describes_every_event() -> None:
    catalog = schema_catalog()
    assert catalog["MonthClosed v1"]["topic"] == "activity.events"
    assert catalog["MonthClosed v1"]["key"] == "mentor_id"
    assert "entries" in catalog["MonthClosed v1"]["schema"]["properties"]  # type: ignore[index]


def test_money_is_exact_and_refuses_float() -> None:
    a = Money(amount=Decimal("0.10"), currency="usd")
    total = a + Money(amount="0.20", currency="USD")
    assert total.amount == Decimal("0.30") and total.currency == "USD"
    assert total.model_dump(mode="json") == {"amount": "0.30", "currency": "USD"}
    with pytest.raises(ValueError, match="float"):
        Money(amount=0.1, currency="USD")
    with pytest.raises(ValueError, match="cannot combine"):
        _ = a + Money(amount="1", currency="EUR")
    assert round_money(Decimal("2.345")) == Decimal("2.35")
    assert round_money(Decimal("-2.345")) == Decimal("-2.35")
    assert round_money(Decimal("2.344999")) == Decimal("2.34")


def test_topic_catalog_has_a_dlq_for_every_domain_topic() -> None:
    names = {t.name for t in CATALOG}
    for t in DOMAIN_TOPICS:
        assert dlq_of(t.name) in names
        assert t.retention_ms == -1
        assert t.partitions >= 3
    assert dlq_of("test.x") == "test.x.dlq"
