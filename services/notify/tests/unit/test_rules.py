"""Pure rules: which emails an event causes, newsletter highlights and dates, digests, backoff,
unsubscribe tokens."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.notify.domain import digest, newsletter
from services.notify.domain import messages as rules
from services.notify.domain.messages import MessageKind
from services.notify.domain.preferences import token_is_valid, unsubscribe_token
from services.notify.service_layer.delivery import backoff_ms
from services.notify.settings import NotifySettings
from shared.contracts.activity import PartnershipAtRisk
from shared.contracts.matching import MenteeMatched, MentorPaused
from shared.contracts.payments import PayoutIssued, PayoutItem
from shared.contracts.program import CadencePolicy, PayPolicy, ProgramPolicy
from shared.errors import DomainError
from shared.money import Money

pytestmark = [pytest.mark.unit]


def test_a_match_introduces_each_partner_to_the_other() -> None:
    event = MenteeMatched(partnership_id="p1", program_id="x", mentor_id="m", mentee_id="e",
                          started_at=datetime(2026, 11, 30, 23, tzinfo=UTC))
    mentor, mentee = rules.on_matched(event, ProgramPolicy(cadence=CadencePolicy(first_meeting_within_days=7)))
    assert (mentor.recipient_id, mentor.facts["people"], mentor.facts["role"]) == ("m", {"other": "e"}, "mentor")
    assert (mentee.recipient_id, mentee.facts["people"], mentee.facts["role"]) == ("e", {"other": "m"}, "mentee")
    assert mentor.facts["first_meeting_by"] == "2026-12-07"
    no_deadline = rules.on_matched(event, ProgramPolicy(cadence=CadencePolicy(first_meeting_within_days=None)))
    assert no_deadline[0].facts["first_meeting_by"] is None


@pytest.mark.parametrize(
    ("status", "previous", "expected"),
    [("behind", "on_track", 1), ("at_risk", "behind", 1), ("on_track", "behind", 0), ("behind", "behind", 0),
     ("at_risk", None, 1)],
)
def test_a_cadence_reminder_only_when_a_partnership_falls(status: str, previous: str | None, expected: int) -> None:
    event = PartnershipAtRisk(partnership_id="p", program_id="x", mentor_id="m", status=status,
                              previous_status=previous)
    intents = rules.on_partnership_at_risk(event, "e", ProgramPolicy())
    assert len(intents) == expected
    assert all(i.recipient_id == "m" and i.kind is MessageKind.CADENCE_REMINDER for i in intents)


def test_a_pause_notifies_the_mentees_of_known_partnerships_only() -> None:
    event = MentorPaused(person_id="m", program_id="x", leaving=True, partnership_ids=["p1", "p2", "p-unknown"])
    intents = rules.on_mentor_paused(event, {"p1": "e1", "p2": "e2"})
    assert [(i.recipient_id, i.kind) for i in intents] == [
        ("m", MessageKind.MENTOR_PAUSED), ("e1", MessageKind.TRANSITION_NOTICE), ("e2", MessageKind.TRANSITION_NOTICE)]
    assert intents[0].facts["mentee_ids"] == ["e1", "e2"]


def test_a_payout_is_one_email_per_payee_with_their_exact_total() -> None:
    usd = lambda s: Money(amount=Decimal(s))  # noqa: E731
    event = PayoutIssued(batch_id="b", program_id="x", pay_date=date(2026, 12, 1), total=usd("0.30"), items=[
        PayoutItem(reference="s1", payee_id="a", amount=usd("0.10")),
        PayoutItem(reference="s2", payee_id="b", amount=usd("0.10")),
        PayoutItem(reference="r1", payee_id="a", amount=usd("0.20")),
    ])
    by_payee = {i.recipient_id: i.facts for i in rules.on_payout_issued(event)}
    assert by_payee["a"]["amount"] == "0.30" and [x["reference"] for x in by_payee["a"]["items"]] == ["s1", "r1"]
    assert by_payee["b"]["amount"] == "0.10"


def test_money_is_formatted_exactly() -> None:
    assert rules.format_money("1234.005", "USD") == "USD 1,234.01"
    assert rules.format_money(Decimal("0.1") + Decimal("0.2"), "EUR") == "EUR 0.30"


def test_only_the_newsletter_can_be_switched_off() -> None:
    assert [k for k in MessageKind if k.opt_out_allowed] == [MessageKind.NEWSLETTER]


def test_highlights_count_the_month_only_and_pips_when_their_last_stage_is_done() -> None:
    F = newsletter.ActivityFact
    facts = [
        F("meeting", "2026-11", 60), F("meeting", "2026-11", 30), F("meeting", "2026-10", 45),
        F("pip_stage", "2026-10", detail="pip-1"), F("pip_stage", "2026-10", detail="pip-1"),
        F("pip_stage", "2026-11", detail="pip-1"),  # completes in November
        F("pip_stage", "2026-11", detail="pip-2"), F("pip_stage", "2026-11", detail="pip-2"),  # not complete
        F("pip", "2026-11", detail="a book study"), F("match", "2026-11"), F("match", "2026-10"),
        F("recognition", "2026-11", detail="e1\tled a workshop"),
    ]
    got = newsletter.highlights(facts, "2026-11", {"e1": "Eve"})
    assert got == {"meetings": 2, "meeting_hours": "1.5", "pips": 2, "matches": 1,
                   "recognitions": ["Eve: led a workshop"]}


def test_important_dates_pay_day_semester_end_and_staff_dates() -> None:
    policy = ProgramPolicy()  # Fall semester ends 2027-01-15; pay on the first working day
    dates = newsletter.important_dates(policy, "2026-12", [(date(2027, 1, 9), "mentor meet-up")])
    assert dates == [
        {"date": "2027-01-01", "what": "pay day for December 2026"},
        {"date": "2027-01-09", "what": "mentor meet-up"},
        {"date": "2027-01-15", "what": "Fall semester ends: last day to complete 2 PIPs for the semester"},
    ]
    # 2027-05-01 is a Saturday: the first working day is Monday 3 May
    assert newsletter.pay_day_for(policy, "2027-04") == date(2027, 5, 3)
    assert newsletter.pay_day_for(ProgramPolicy(pay=PayPolicy(pay_day=31)), "2027-01") == date(2027, 2, 28)


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-01", "november"])
def test_a_month_must_be_yyyy_mm(bad: str) -> None:
    with pytest.raises(DomainError) as err:
        newsletter.parse_month(bad)
    assert err.value.problems[0].field == "month"


def test_digest_lists_the_most_urgent_first_and_counts_statuses() -> None:
    E = digest.CaseloadEntry
    facts = digest.digest_facts([E("p1", "Ana", "Ben", "on_track"), E("p2", "Zed", "Cal", "at_risk", ["now at risk"]),
                                 E("p3", "Bo", "Dee", "behind")], date(2026, 11, 9))
    assert [p["partnership_id"] for p in facts["partnerships"]] == ["p2", "p3", "p1"]
    assert facts["counts"] == {"at_risk": 1, "behind": 1, "on_track": 1}
    assert digest.digest_due(date(2026, 11, 9), 0) and not digest.digest_due(date(2026, 11, 10), 0)


def test_backoff_doubles_up_to_the_cap() -> None:
    s = NotifySettings(mail_backoff_seconds=30, mail_backoff_max_seconds=100, embedded_sink=False)
    assert [backoff_ms(s, n) for n in (1, 2, 3, 4)] == [30_000, 60_000, 100_000, 100_000]


def test_unsubscribe_tokens_are_per_person() -> None:
    token = unsubscribe_token("secret", "ana")
    assert token_is_valid("secret", "ana", token)
    assert not token_is_valid("secret", "ben", token) and not token_is_valid("other", "ana", token)


def test_settings_refuse_two_tls_modes() -> None:
    with pytest.raises(ValueError, match="not both"):
        NotifySettings(smtp_tls=True, smtp_starttls=True)
