"""Every kind of email, through the real sender to a real SMTP server (aiosmtpd): who gets it,
its subject and the facts in its body (plain text and HTML)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.notify.service_layer import communications as comms
from services.notify.tests.support import Mail, RecordingSMTP, Store, settings_for, smtp_server
from shared.contracts.activity import ActivityRecorded, MeetingLogged, PartnershipAtRisk, TimeEntryRecorded
from shared.contracts.envelope import Cause
from shared.contracts.matching import (
    IncidentReported,
    MenteeEnrolled,
    MenteeMatched,
    MentorEnrolled,
    MentorPaused,
    MetamentorAssigned,
    MetamentorEnrolled,
    PartnershipEnded,
    ProgramConfigured,
    RematchRequested,
)
from shared.contracts.payments import (
    ClarificationRequested,
    PaymentApproved,
    PayoutIssued,
    PayoutItem,
    ReimbursementApproved,
    ReimbursementRefused,
)
from shared.contracts.program import CommunicationPolicy, ProgramPolicy, TimeEntryKind
from shared.money import Money

pytestmark = [pytest.mark.integration]

PROGRAM = "mentormt"
ANA, BEN, CAL, DEE, MIA = "ana@school.example", "ben@school.example", "cal@school.example", "dee@school.example", "mia@school.example"


@dataclass
class Env:
    store: Store
    smtp: RecordingSMTP

    def deliver(self) -> None:
        stats = self.store.runtime.deliver_now()
        assert stats.failed == 0 and stats.waiting == 0, stats

    def only(self, address: str) -> Mail:
        got = self.smtp.to(address)
        assert len(got) == 1, f"{address} got {len(got)} emails: {[g.subject for g in got]}"
        return got[0]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with smtp_server() as smtp:
        store = Store(settings_for(tmp_path, smtp.port))
        policy = ProgramPolicy(communication=CommunicationPolicy(reply_to="staff@mentormt.example"))
        store.apply(
            ProgramConfigured(program_id=PROGRAM, name="MentorMT", policy=policy),
            MentorEnrolled(person_id="ana", program_id=PROGRAM, name="Ana Alvarez", email=ANA, capacity=2),
            MenteeEnrolled(person_id="ben", program_id=PROGRAM, name="Ben Brooks", email=BEN),
            MenteeEnrolled(person_id="cal", program_id=PROGRAM, name="Cal Chen", email=CAL),
            MetamentorEnrolled(person_id="mia", program_id=PROGRAM, name="Mia Meyer", email=MIA),
            MentorEnrolled(person_id="dee", program_id=PROGRAM, name="Dee Diaz", email=DEE, capacity=1),
        )
        yield Env(store, smtp)


def match(partnership: str = "p1", mentor: str = "ana", mentee: str = "ben", previous: str | None = None) -> MenteeMatched:
    return MenteeMatched(partnership_id=partnership, program_id=PROGRAM, mentor_id=mentor, mentee_id=mentee,
                         started_at=datetime(2026, 11, 2, 16, 0, tzinfo=UTC), previous_partnership_id=previous)


def test_match_introduction_goes_to_both_partners_with_contact_and_first_meeting(env: Env) -> None:
    env.store.apply(match())
    env.deliver()
    to_mentor, to_mentee = env.only(ANA), env.only(BEN)
    assert to_mentor.subject == "Meet your mentee: Ben Brooks"
    assert to_mentee.subject == "Meet your mentor: Ana Alvarez"
    text = to_mentor.body()
    assert "Hello Ana Alvarez" in text and BEN in text
    assert "within 14 days (by 2026-11-16)" in text and "2 intentional meetings a month" in text
    assert ANA in to_mentee.body() and "Ana Alvarez" in to_mentee.body("html")
    assert to_mentor.message["Reply-To"] == "staff@mentormt.example"
    assert to_mentor.message["To"] == f"Ana Alvarez <{ANA}>"


def test_rematch_and_new_match_after_rematch(env: Env) -> None:
    env.store.apply(match(), RematchRequested(partnership_id="p1", program_id=PROGRAM, mentee_id="ben",
                                              previous_mentor_id="ana", requested_by="ben", reason="schedules clash"))
    env.store.apply(match("p2", "dee", "ben", previous="p1"))
    env.deliver()
    ben = {r.subject for r in env.smtp.to(BEN)}
    assert ben == {"Meet your mentor: Ana Alvarez", "We received your request for a new mentor",
                   "Your new mentor: Dee Diaz"}
    to_ana = next(r for r in env.smtp.to(ANA) if "new mentor" in r.subject)
    assert to_ana.subject == "Ben Brooks will move to a new mentor"
    assert "schedules clash" in to_ana.body()
    assert "As you asked, you have a new mentor" in next(r for r in env.smtp.to(BEN) if "Dee" in r.subject).body()


def test_pause_notifies_mentor_and_each_mentee_with_a_transition_notice(env: Env) -> None:
    env.store.apply(match("p1", "ana", "ben"), match("p2", "ana", "cal"))
    env.store.apply(MentorPaused(person_id="ana", program_id=PROGRAM, reason="parental leave",
                                 partnership_ids=["p1", "p2"]))
    env.deliver()
    paused = [r for r in env.smtp.to(ANA) if "paused" in r.subject]
    assert [r.subject for r in paused] == ["Your mentoring is paused"]
    assert "parental leave" in paused[0].body() and "Ben Brooks, Cal Chen" in paused[0].body()
    for address in (BEN, CAL):
        [notice] = [r for r in env.smtp.to(address) if "change" in r.subject]
        assert notice.subject == "A change for your mentoring: Ana Alvarez is pausing"
        assert "transition plan" in notice.body()


def test_partnership_ended_tells_both(env: Env) -> None:
    env.store.apply(match(), PartnershipEnded(partnership_id="p1", program_id=PROGRAM, mentor_id="ana",
                                              mentee_id="ben", ended_at=datetime(2026, 11, 20, tzinfo=UTC),
                                              reason="mentee left the school"))
    env.deliver()
    for address, other in ((ANA, "Ben Brooks"), (BEN, "Ana Alvarez")):
        [ended] = [r for r in env.smtp.to(address) if "ended" in r.subject]
        assert ended.subject == f"Your partnership with {other} has ended"
        assert "2026-11-20" in ended.body() and "mentee left the school" in ended.body()


def test_cadence_reminder_to_the_mentor_when_behind_not_when_on_track(env: Env) -> None:
    env.store.apply(match())
    env.store.apply(PartnershipAtRisk(partnership_id="p1", program_id=PROGRAM, mentor_id="ana", status="behind",
                                      previous_status="on_track", reasons=["1 of 2 intentional meetings in October"]))
    env.store.apply(PartnershipAtRisk(partnership_id="p1", program_id=PROGRAM, mentor_id="ana", status="on_track",
                                      previous_status="behind"))
    env.deliver()
    reminders = [r for r in env.smtp.to(ANA) if r.subject.startswith("Reminder")]
    assert [r.subject for r in reminders] == ["Reminder: your partnership with Ben Brooks is behind"]
    body = reminders[0].body()
    assert "1 of 2 intentional meetings in October" in body and "at least 2 intentional meetings a month" in body
    assert env.smtp.to(BEN) and not [r for r in env.smtp.to(BEN) if "Reminder" in r.subject]


def test_clarification_request_lists_the_entries_and_the_question(env: Env) -> None:
    env.store.apply(
        TimeEntryRecorded(entry_id="te-1", mentor_id="ana", program_id=PROGRAM, kind=TimeEntryKind.PLANNING,
                          work_date=date(2026, 10, 14), minutes=240),
        TimeEntryRecorded(entry_id="te-2", mentor_id="ana", program_id=PROGRAM, kind=TimeEntryKind.WORKSHOP,
                          work_date=date(2026, 10, 15), minutes=90),
        ClarificationRequested(statement_id="st-1", program_id=PROGRAM, mentor_id="ana", month="2026-10",
                               entry_ids=["te-1", "te-2"], question="Was the planning for the 15 October workshop?",
                               requested_by="staff-1"),
    )
    env.deliver()
    mail = env.only(ANA)
    assert mail.subject == "Question about your 2026-10 time entries"
    text = mail.body()
    assert "te-1: 2026-10-14, planning, 240 min" in text and "te-2: 2026-10-15, workshop, 90 min" in text
    assert "Was the planning for the 15 October workshop?" in text
    assert "<td>te-2</td><td>2026-10-15</td>" in mail.body("html")


def test_payment_approved_and_payout_issued_with_amounts(env: Env) -> None:
    env.store.apply(
        PaymentApproved(statement_id="st-1", program_id=PROGRAM, mentor_id="ana", month="2026-10",
                        amount=Money(amount=Decimal("1234.5")), approved_by="staff-1"),
        PayoutIssued(batch_id="b-1", program_id=PROGRAM, pay_date=date(2026, 11, 2),
                     total=Money(amount=Decimal("1284.50")),
                     items=[PayoutItem(reference="st-1", payee_id="ana", amount=Money(amount=Decimal("1234.50"))),
                            PayoutItem(reference="rb-1", payee_id="ana", amount=Money(amount=Decimal("50")))]),
    )
    env.deliver()
    subjects = sorted(r.subject for r in env.smtp.to(ANA))
    assert subjects == ["Payout issued: USD 1,284.50 on 2026-11-02", "Your 2026-10 stipend is approved: USD 1,234.50"]
    payout = next(r for r in env.smtp.to(ANA) if r.subject.startswith("Payout"))
    assert "st-1: USD 1,234.50" in payout.body() and "rb-1: USD 50.00" in payout.body()


def test_reimbursement_decisions(env: Env) -> None:
    env.store.apply(
        ReimbursementApproved(reimbursement_id="rb-1", program_id=PROGRAM, partnership_id="p1", payee_id="ana",
                              kind="book", amount=Money(amount=Decimal("24.99")),
                              remaining_budget=Money(amount=Decimal("25.01"))),
        ReimbursementRefused(reimbursement_id="rb-2", program_id=PROGRAM, partnership_id="p1", payee_id="ben",
                             kind="travel", amount=Money(amount=Decimal("400")),
                             remaining_budget=Money(amount=Decimal("300")), reason="over the yearly travel budget"),
    )
    env.deliver()
    approved, refused = env.only(ANA), env.only(BEN)
    assert approved.subject == "Your book reimbursement of USD 24.99 is approved"
    assert "USD 25.01" in approved.body()
    assert refused.subject == "Your travel reimbursement of USD 400.00 was not approved"
    assert "over the yearly travel budget" in refused.body() and "USD 300.00" in refused.body()


def test_incident_acknowledgement_to_the_reporter_only(env: Env) -> None:
    env.store.apply(match())
    env.store.apply(IncidentReported(incident_id="inc-9", partnership_id="p1", program_id=PROGRAM,
                                     reported_by="ben", description="disrespectful comments"))
    env.deliver()
    [ack] = [r for r in env.smtp.to(BEN) if "report" in r.subject]
    assert ack.subject == "We received your report" and "inc-9" in ack.body()
    assert "disrespectful" not in ack.body()
    assert not [r for r in env.smtp.to(ANA) if "report" in r.subject]
    # Filed by staff on someone's behalf: no acknowledgement to an address nobody has.
    env.store.apply(IncidentReported(incident_id="inc-10", partnership_id="p1", program_id=PROGRAM,
                                     reported_by="staff-7", description="reported by phone"))
    assert env.store.runtime.deliver_now().waiting == 0
    assert len(env.smtp.received) == 3


def test_metamentor_digest_on_the_digest_weekday_with_status_and_changes(env: Env) -> None:
    env.store.apply(match("p1", "ana", "ben"), match("p2", "dee", "cal"))
    env.store.apply(MetamentorAssigned(partnership_id="p1", program_id=PROGRAM, metamentor_id="mia"),
                    MetamentorAssigned(partnership_id="p2", program_id=PROGRAM, metamentor_id="mia"))
    env.store.apply(PartnershipAtRisk(partnership_id="p2", program_id=PROGRAM, mentor_id="dee", status="at_risk",
                                      previous_status="on_track", reasons=["no meeting in 30 days"]))
    env.store.apply(MeetingLogged(meeting_id="m1", partnership_id="p1", program_id=PROGRAM, mentor_id="ana",
                                  mentee_id="ben", started_at=datetime(2026, 11, 3, 17, tzinfo=UTC),
                                  duration_minutes=45, mode="video", intentional=True))
    env.deliver()
    clock = env.store.clock
    clock.set(datetime(2026, 11, 8, 18, tzinfo=UTC))  # Sunday in Denver: not the digest day
    assert env.store.runtime.record_digests_now() == 0
    clock.set(datetime(2026, 11, 9, 15, tzinfo=UTC))  # Monday 08:00 in Denver
    assert env.store.runtime.record_digests_now() == 1
    assert env.store.runtime.record_digests_now() == 0  # once per metamentor and day
    env.deliver()
    digest = env.only(MIA)
    assert digest.subject == "Your caseload this week: 2 partnerships, 1 at risk, 0 behind"
    text = digest.body()
    assert text.index("Dee Diaz with Cal Chen: at risk") < text.index("Ana Alvarez with Ben Brooks: on track")
    assert "now at risk (was on track): no meeting in 30 days" in text
    assert "intentional meeting on 2026-11-03 (45 min)" in text


def test_newsletter_with_highlights_dates_items_and_unsubscribe(env: Env) -> None:
    env.store.apply(match("p1", "ana", "ben"))
    env.store.apply(
        MeetingLogged(meeting_id="m1", partnership_id="p1", program_id=PROGRAM, mentor_id="ana", mentee_id="ben",
                      started_at=datetime(2026, 11, 3, 17, tzinfo=UTC), duration_minutes=60, mode="video",
                      intentional=True),
        MeetingLogged(meeting_id="m2", partnership_id="p1", program_id=PROGRAM, mentor_id="ana", mentee_id="ben",
                      started_at=datetime(2026, 11, 17, 17, tzinfo=UTC), duration_minutes=30, mode="phone",
                      intentional=True),
        *[ActivityRecorded(activity_id=f"a-{s}", partnership_id="p1", program_id=PROGRAM, kind="pip_stage", stage=s,
                           occurred_on=date(2026, 11, d), details={"pip_id": "pip-1"})
          for s, d in (("exploration", 4), ("collaboration", 10), ("application", 18))],
        ActivityRecorded(activity_id="rec-1", partnership_id="p1", program_id=PROGRAM, kind="recognition",
                         occurred_on=date(2026, 11, 20), details={"nominee_id": "ben", "reason": "great PIP"}),
    )
    env.deliver()
    db = env.store.runtime.service.db
    now = env.store.clock.now()
    with db.session() as s:
        comms.set_preferences(s, "cal", False, "cal", now)
        nid = comms.create_newsletter(s, PROGRAM, "2026-11", "staff-1", now).newsletter_id
        comms.add_newsletter_item(s, nid, "Spring workshop", "Sign up for the Spring workshop.", date(2026, 12, 10))
    with env.store.runtime.service.transaction(Cause.new()) as tx:
        row = comms.publish_newsletter(tx, nid, "staff-1", now)
    assert row.recipients == 4  # ana, ben, dee, mia; cal opted out
    env.deliver()
    assert env.smtp.to(CAL) == []
    mail = next(iter(env.smtp.to(DEE)))
    assert mail.subject == "MentorMT newsletter: November 2026"
    text = mail.body()
    assert "2 meetings held (1.5 hours together)" in text
    assert "1 Partners in Practice activity (PIPs) completed" in text and "1 new match" in text
    assert "Recognition: Ben Brooks: great PIP" in text
    assert "2026-12-01: pay day for November 2026" in text
    assert "2026-12-10: Spring workshop" in text and "Sign up for the Spring workshop." in text
    unsubscribe = str(mail.message["List-Unsubscribe"])
    assert unsubscribe.startswith("<http://127.0.0.1:8000/unsubscribe/dee?token=")
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe.strip("<>") in text


def test_announcement_to_mentors_only_with_a_preview(env: Env) -> None:
    db = env.store.runtime.service.db
    now = env.store.clock.now()
    runtime = env.store.runtime
    with db.session() as s:
        aid = comms.create_announcement(s, PROGRAM, "mentors", "Survey open", "Please fill in the mentor survey.",
                                        "staff-1", now).announcement_id
        preview = comms.preview_announcement(s, aid, runtime.settings, runtime.templates, now)
    assert preview["recipients"] == 2 and preview["subject"] == "Survey open"
    assert "pass this update on to your mentees" in preview["text"]
    assert env.smtp.received == []  # a preview sends nothing
    with db.session() as s:
        comms.send_announcement(s, aid, "staff-1", now)
    env.deliver()
    assert sorted(a for r in env.smtp.received for a in r.rcpt_tos) == [ANA, DEE]
    assert env.only(ANA).subject == "Survey open"



def test_handlers_are_idempotent_by_state_without_the_inbox(env: Env) -> None:
    events = [match(), PartnershipAtRisk(partnership_id="p1", program_id=PROGRAM, mentor_id="ana", status="behind",
                                         previous_status="on_track"),
              PaymentApproved(statement_id="st-1", program_id=PROGRAM, mentor_id="ana", month="2026-10",
                              amount=Money(amount=Decimal("10")), approved_by="staff-1")]
    envelopes = env.store.apply(*events)
    for event, envelope in zip(events, envelopes, strict=True):
        env.store.apply_as(event, envelope)  # the same event again, past the inbox
    env.deliver()
    assert len(env.smtp.to(ANA)) == 3 and len(env.smtp.to(BEN)) == 1


def test_a_newsletter_switched_off_after_publishing_is_not_sent(env: Env) -> None:
    db, now = env.store.runtime.service.db, env.store.clock.now()
    with db.session() as s:
        nid = comms.create_newsletter(s, PROGRAM, "2026-10", "staff-1", now).newsletter_id
    with env.store.runtime.service.transaction(Cause.new()) as tx:
        assert comms.publish_newsletter(tx, nid, "staff-1", now).recipients == 5
    with db.session() as s:
        comms.set_preferences(s, "ben", False, "ben", now)
    stats = env.store.runtime.deliver_now()
    assert (stats.sent, stats.skipped) == (4, 1)
    assert env.smtp.to(BEN) == [] and len(env.smtp.received) == 4
