"""Which emails an event causes, to whom, and with which facts. Pure: no I/O.

An event becomes zero or more MessageIntents. An intent names its recipient by person id and
carries the facts its template needs; people it mentions are named by id in `people` and looked
up in the contact directory when the email is rendered (so an email never waits on the order in
which enrolment and match events arrive, and always uses the newest address).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from shared.contracts.activity import FeedbackReviewed, PartnershipAtRisk, SurveyInvited
from shared.contracts.matching import (
    IncidentReported,
    MenteeMatched,
    MentorPaused,
    PartnershipEnded,
    RematchRequested,
)
from shared.contracts.payments import (
    ClarificationRequested,
    PaymentApproved,
    PayoutIssued,
    ReimbursementApproved,
    ReimbursementRefused,
)
from shared.contracts.program import ProgramPolicy
from shared.money import Money, round_money


class MessageKind(StrEnum):
    MATCH_INTRODUCTION = "match_introduction"
    REMATCH_REQUESTED = "rematch_requested"
    MENTOR_PAUSED = "mentor_paused"
    TRANSITION_NOTICE = "transition_notice"
    PARTNERSHIP_ENDED = "partnership_ended"
    CADENCE_REMINDER = "cadence_reminder"
    CLARIFICATION_REQUEST = "clarification_request"
    PAYMENT_APPROVED = "payment_approved"
    PAYOUT_ISSUED = "payout_issued"
    REIMBURSEMENT_APPROVED = "reimbursement_approved"
    REIMBURSEMENT_REFUSED = "reimbursement_refused"
    INCIDENT_ACKNOWLEDGEMENT = "incident_acknowledgement"
    METAMENTOR_DIGEST = "metamentor_digest"
    NEWSLETTER = "newsletter"
    ANNOUNCEMENT = "announcement"
    SURVEY_INVITATION = "survey_invitation"
    SURVEY_REMINDER = "survey_reminder"
    FEEDBACK_REVIEW = "feedback_review"

    @property
    def opt_out_allowed(self) -> bool:
        """Only the newsletter can be switched off; transactional mail always goes."""
        return self is MessageKind.NEWSLETTER


@dataclass(frozen=True)
class MessageIntent:
    recipient_id: str
    kind: MessageKind
    program_id: str | None
    facts: dict[str, Any] = field(default_factory=dict)


def money_facts(money: Money) -> dict[str, str]:
    return {"amount": str(round_money(money.amount)), "currency": money.currency}


def format_money(amount: str | Decimal, currency: str) -> str:
    """1234.5, USD -> 'USD 1,234.50' (exact: Decimal, rounded once, half-up)."""
    return f"{currency} {round_money(Decimal(str(amount))):,.2f}"


# -- matching --------------------------------------------------------------------------------
def on_matched(event: MenteeMatched, policy: ProgramPolicy) -> list[MessageIntent]:
    common = {
        "partnership_id": event.partnership_id,
        "started_on": event.started_at.date().isoformat(),
        "first_meeting_within_days": policy.cadence.first_meeting_within_days,
        "first_meeting_by": (
            (event.started_at.date() + timedelta(days=policy.cadence.first_meeting_within_days)).isoformat()
            if policy.cadence.first_meeting_within_days else None
        ),
        "meetings_per_month": policy.cadence.intentional_meetings_per_month,
        "rematch": event.previous_partnership_id is not None,
    }
    return [
        MessageIntent(event.mentor_id, MessageKind.MATCH_INTRODUCTION, event.program_id,
                      {**common, "role": "mentor", "people": {"other": event.mentee_id}}),
        MessageIntent(event.mentee_id, MessageKind.MATCH_INTRODUCTION, event.program_id,
                      {**common, "role": "mentee", "people": {"other": event.mentor_id}}),
    ]


def on_rematch_requested(event: RematchRequested) -> list[MessageIntent]:
    facts = {"partnership_id": event.partnership_id, "reason": event.reason}
    return [
        MessageIntent(event.mentee_id, MessageKind.REMATCH_REQUESTED, event.program_id,
                      {**facts, "role": "mentee", "people": {"other": event.previous_mentor_id}}),
        MessageIntent(event.previous_mentor_id, MessageKind.REMATCH_REQUESTED, event.program_id,
                      {**facts, "role": "mentor", "people": {"other": event.mentee_id}}),
    ]


def on_mentor_paused(event: MentorPaused, mentee_of: Mapping[str, str]) -> list[MessageIntent]:
    """The mentor gets a confirmation; each mentee of the listed partnerships a transition notice."""
    mentees = [mentee_of[p] for p in event.partnership_ids if p in mentee_of]
    intents = [
        MessageIntent(event.person_id, MessageKind.MENTOR_PAUSED, event.program_id,
                      {"leaving": event.leaving, "reason": event.reason, "people": {},
                       "mentee_ids": mentees})
    ]
    for partnership_id in event.partnership_ids:
        mentee = mentee_of.get(partnership_id)
        if mentee is not None:
            intents.append(
                MessageIntent(mentee, MessageKind.TRANSITION_NOTICE, event.program_id,
                              {"leaving": event.leaving, "partnership_id": partnership_id,
                               "people": {"mentor": event.person_id}})
            )
    return intents


def on_partnership_ended(event: PartnershipEnded) -> list[MessageIntent]:
    facts = {"partnership_id": event.partnership_id, "reason": event.reason,
             "ended_on": event.ended_at.date().isoformat()}
    return [
        MessageIntent(event.mentor_id, MessageKind.PARTNERSHIP_ENDED, event.program_id,
                      {**facts, "role": "mentor", "people": {"other": event.mentee_id}}),
        MessageIntent(event.mentee_id, MessageKind.PARTNERSHIP_ENDED, event.program_id,
                      {**facts, "role": "mentee", "people": {"other": event.mentor_id}}),
    ]


def on_incident_reported(event: IncidentReported) -> list[MessageIntent]:
    return [
        MessageIntent(event.reported_by, MessageKind.INCIDENT_ACKNOWLEDGEMENT, event.program_id,
                      {"incident_id": event.incident_id, "partnership_id": event.partnership_id, "people": {}})
    ]


# -- activity --------------------------------------------------------------------------------
STATUS_WORDS = {"on_track": "on track", "behind": "behind", "at_risk": "at risk"}


def on_partnership_at_risk(
    event: PartnershipAtRisk, mentee_id: str | None, policy: ProgramPolicy
) -> list[MessageIntent]:
    """A reminder to the mentor when the partnership falls behind or at risk (not when it recovers)."""
    if event.status == "on_track":
        return []
    if event.previous_status == event.status:
        return []  # no change: one reminder per fall, not one per evaluation
    return [
        MessageIntent(event.mentor_id, MessageKind.CADENCE_REMINDER, event.program_id, {
            "partnership_id": event.partnership_id,
            "status": event.status,
            "status_words": STATUS_WORDS[event.status],
            "reasons": list(event.reasons),
            "meetings_per_month": policy.cadence.intentional_meetings_per_month,
            "pips_per_semester": policy.cadence.pips_per_semester,
            "people": {"mentee": mentee_id} if mentee_id else {},
        })
    ]


# -- payments --------------------------------------------------------------------------------
def on_clarification_requested(
    event: ClarificationRequested, entries: Mapping[str, dict[str, Any]]
) -> list[MessageIntent]:
    listed = [entries.get(e, {"entry_id": e}) for e in event.entry_ids]
    return [
        MessageIntent(event.mentor_id, MessageKind.CLARIFICATION_REQUEST, event.program_id, {
            "statement_id": event.statement_id, "month": event.month, "question": event.question,
            "entries": listed, "people": {},
        })
    ]


def on_payment_approved(event: PaymentApproved) -> list[MessageIntent]:
    return [
        MessageIntent(event.mentor_id, MessageKind.PAYMENT_APPROVED, event.program_id, {
            "statement_id": event.statement_id, "month": event.month, **money_facts(event.amount), "people": {},
        })
    ]


def on_payout_issued(event: PayoutIssued) -> list[MessageIntent]:
    """One email per payee listing their items in the batch, with their total."""
    by_payee: dict[str, list[Money]] = defaultdict(list)
    refs: dict[str, list[dict[str, str]]] = defaultdict(list)
    for item in event.items:
        by_payee[item.payee_id].append(item.amount)
        refs[item.payee_id].append({"reference": item.reference, **money_facts(item.amount)})
    intents = []
    for payee, amounts in by_payee.items():
        total = amounts[0]
        for m in amounts[1:]:
            total = total + m
        intents.append(
            MessageIntent(payee, MessageKind.PAYOUT_ISSUED, event.program_id, {
                "batch_id": event.batch_id, "pay_date": event.pay_date.isoformat(),
                "items": refs[payee], **money_facts(total), "people": {},
            })
        )
    return intents


def on_reimbursement(event: ReimbursementApproved | ReimbursementRefused) -> list[MessageIntent]:
    refused = isinstance(event, ReimbursementRefused)
    facts: dict[str, Any] = {
        "reimbursement_id": event.reimbursement_id, "partnership_id": event.partnership_id,
        "what": event.kind, **money_facts(event.amount),
        "remaining_budget": str(round_money(event.remaining_budget.amount)),
        "people": {},
    }
    if isinstance(event, ReimbursementRefused):
        facts["reason"] = event.reason
    kind = MessageKind.REIMBURSEMENT_REFUSED if refused else MessageKind.REIMBURSEMENT_APPROVED
    return [MessageIntent(event.payee_id, kind, event.program_id, facts)]


# -- activity: surveys -----------------------------------------------------------------------
def on_survey_invited(event: SurveyInvited) -> list[MessageIntent]:
    """The invitation (or its one reminder) to answer a survey round, with where to answer it."""
    kind = MessageKind.SURVEY_REMINDER if event.reminder else MessageKind.SURVEY_INVITATION
    return [MessageIntent(event.person_id, kind, event.program_id, {
        "title": event.title, "round_id": event.round_id, "survey_id": event.survey_id,
        "answer_path": f"/api/v1/programs/{event.program_id}/survey-rounds/{event.round_id}/answers",
        "questions_path": f"/api/v1/programs/{event.program_id}/people/{event.person_id}/survey-invitations",
        "people": {},
    })]


def on_feedback_reviewed(event: FeedbackReviewed) -> list[MessageIntent]:
    """The mentor hears how one of their written feedback entries was scored, and the comment."""
    return [MessageIntent(event.mentor_id, MessageKind.FEEDBACK_REVIEW, event.program_id, {
        "month": event.month, "entry_id": event.entry_id, "review_id": event.review_id,
        "scores": [{"criterion": k, "score": v} for k, v in sorted(event.scores.items())],
        "comment": event.comment, "people": {},
    })]
