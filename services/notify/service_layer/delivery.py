"""The sender: claim due messages, render them, send them over SMTP, record what happened.

Recording is one transaction per claimed batch: each row becomes 'sent' (and EmailSent goes to
the outbox), 'pending' again with a later due time (a transient failure, attempts left), or
'failed' (EmailFailed). Only rows this claim still holds are recorded, so a sender that lost its
claim (it took longer than mail_claim_seconds) cannot overwrite another's outcome.

Delivery guarantee: a message is sent at most once unless its sender dies (or stalls for longer
than mail_claim_seconds) after the SMTP server accepted it and before its batch is recorded;
then the claim expires and it is sent again, with the same Message-ID header, which mail clients
use to drop the copy. SMTP has no way to make that window zero; it spans one batch at most.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from services.notify.adapters import message_log
from services.notify.adapters.smtp import Delivery, OutgoingEmail, SmtpMailer
from services.notify.adapters.tables import (
    AnnouncementRow,
    MessageRow,
    NewsletterRow,
    PersonRow,
    PreferenceRow,
    ProgramRow,
)
from services.notify.adapters.templates import Rendered, Templates
from services.notify.domain.messages import MessageKind
from services.notify.domain.preferences import unsubscribe_url
from services.notify.settings import NotifySettings
from shared.clock import Clock
from shared.contracts.envelope import Cause
from shared.contracts.notify import EmailFailed, EmailSent
from shared.db import Database
from shared.messaging import Outbox

log = logging.getLogger(__name__)


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0  # recipient not in the directory yet
    skipped: int = 0  # newsletter switched off after it was queued

    def add(self, other: DeliveryStats) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.waiting += other.waiting
        self.skipped += other.skipped


class Unresolved(Exception):
    """The email names a person the contact directory does not know yet."""


class OptedOut(Exception):
    """The recipient switched the newsletter off after it was queued for them."""


def backoff_ms(settings: NotifySettings, attempts: int) -> int:
    """Delay before the next attempt after `attempts` failed ones: exponential, capped."""
    delay = settings.mail_backoff_seconds * (2 ** max(attempts - 1, 0))
    return int(min(delay, settings.mail_backoff_max_seconds) * 1000)


class Directory:
    """The people, programs, newsletters and announcements one batch of messages needs."""

    def __init__(self, session: Session, rows: Sequence[MessageRow]) -> None:
        facts = {r.id: json.loads(r.facts) for r in rows}
        ids = {r.recipient_id for r in rows}
        for f in facts.values():
            ids.update(p for p in f.get("people", {}).values() if p)
            ids.update(f.get("mentee_ids", []))
        self.facts = facts
        self.people: dict[tuple[str, str], PersonRow] = {}
        self.anywhere: dict[str, PersonRow] = {}
        for person in session.exec(select(PersonRow).where(col(PersonRow.person_id).in_(ids))).all():
            self.people[(person.program_id, person.person_id)] = person
            self.anywhere.setdefault(person.person_id, person)
        program_ids = {r.program_id for r in rows if r.program_id}
        self.programs = {
            p.program_id: p
            for p in session.exec(select(ProgramRow).where(col(ProgramRow.program_id).in_(program_ids))).all()
        }
        causes = {r.cause_id for r in rows if r.kind in (MessageKind.NEWSLETTER, MessageKind.ANNOUNCEMENT)}
        self.newsletters = {
            n.newsletter_id: n
            for n in session.exec(select(NewsletterRow).where(col(NewsletterRow.newsletter_id).in_(causes))).all()
        }
        newsletter_readers = {r.recipient_id for r in rows if r.kind == MessageKind.NEWSLETTER}
        self.opted_out = set(session.exec(
            select(PreferenceRow.person_id).where(
                col(PreferenceRow.person_id).in_(newsletter_readers), col(PreferenceRow.newsletter).is_(False)
            )
        ).all()) if newsletter_readers else set()
        self.announcements = {
            a.announcement_id: a
            for a in session.exec(
                select(AnnouncementRow).where(col(AnnouncementRow.announcement_id).in_(causes))
            ).all()
        }

    def person(self, program_id: str | None, person_id: str) -> PersonRow | None:
        if program_id is not None and (program_id, person_id) in self.people:
            return self.people[(program_id, person_id)]
        return self.anywhere.get(person_id)


def program_context(program: ProgramRow | None, program_id: str | None) -> dict[str, Any]:
    if program is None:
        return {"id": program_id, "name": "Your mentoring program", "reply_to": None}
    policy = json.loads(program.policy)
    return {"id": program.program_id, "name": program.name,
            "reply_to": policy.get("communication", {}).get("reply_to")}


def compose(
    row: MessageRow, directory: Directory, templates: Templates, settings: NotifySettings,
    sent_at: datetime | None = None,
) -> OutgoingEmail:
    """Render one message for its recipient; raise Unresolved when someone it names is unknown."""
    recipient = directory.person(row.program_id, row.recipient_id)
    if recipient is None:
        raise Unresolved(f"recipient {row.recipient_id} is not in the contact directory")
    facts = dict(directory.facts[row.id])
    people: dict[str, dict[str, str]] = {}
    for label, person_id in (facts.pop("people", None) or {}).items():
        person = directory.person(row.program_id, person_id)
        if person is None:
            raise Unresolved(f"{label} {person_id} is not in the contact directory")
        people[label] = {"name": person.name, "email": person.email, "person_id": person.person_id}
    context: dict[str, Any] = {
        **facts,
        "recipient": {"name": recipient.name, "email": recipient.email, "person_id": recipient.person_id,
                      "role": recipient.role},
        "program": program_context(directory.programs.get(row.program_id or ""), row.program_id),
        "people": people,
        "links": {},
    }
    headers: dict[str, str] = {}
    if context["program"]["reply_to"]:
        headers["Reply-To"] = context["program"]["reply_to"]
    kind = MessageKind(row.kind)
    if kind is MessageKind.MENTOR_PAUSED:
        mentees = [directory.person(row.program_id, m) for m in facts.get("mentee_ids", [])]
        context["mentees"] = [{"name": m.name} for m in mentees if m is not None]
    elif kind is MessageKind.NEWSLETTER:
        if recipient.person_id in directory.opted_out:
            raise OptedOut(recipient.person_id)
        newsletter = directory.newsletters.get(row.cause_id)
        if newsletter is None or newsletter.content is None:
            raise ValueError(f"newsletter {row.cause_id} is not published")
        context.update(json.loads(newsletter.content))
        secret = settings.unsubscribe_secret.get_secret_value()
        link = unsubscribe_url(settings.public_base_url, secret, recipient.person_id)
        context["links"]["unsubscribe"] = link
        headers["List-Unsubscribe"] = f"<{link}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        headers["List-Id"] = f"{context['program']['name']} newsletter <newsletter.{row.program_id}.mentoring>"
    elif kind is MessageKind.ANNOUNCEMENT:
        announcement = directory.announcements.get(row.cause_id)
        if announcement is None:
            raise ValueError(f"announcement {row.cause_id} does not exist")
        context.update({"title": announcement.title, "body": announcement.body, "audience": announcement.audience})
    rendered: Rendered = templates.render(kind, context)
    return OutgoingEmail(
        message_id=row.message_id, to_name=recipient.name, to_address=recipient.email,
        subject=rendered.subject, text=rendered.text, html=rendered.html, headers=headers, sent_at=sent_at,
    )


@dataclass
class _Batch:
    """Claimed rows, rendered: the emails to send and what is already decided without sending."""

    owner: str
    rows: Sequence[MessageRow]
    emails: list[OutgoingEmail] = field(default_factory=list)
    outcomes: dict[int, Delivery] = field(default_factory=dict)
    waiting: dict[int, str] = field(default_factory=dict)
    skipped: set[int] = field(default_factory=set)


class MailSender:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        clock: Clock,
        settings: NotifySettings,
        *,
        mailer: SmtpMailer | None = None,
        templates: Templates | None = None,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.clock = clock
        self.settings = settings
        self.mailer = mailer or SmtpMailer(settings)
        self.templates = templates or Templates()
        self.stopping = False
        self.totals = DeliveryStats()

    def stop(self) -> None:
        """Finish the batch in hand and claim no more (the job runs in a worker thread)."""
        self.stopping = True

    def deliver_due(self, max_batches: int = 1_000_000) -> DeliveryStats:
        """Send every message due now, batch after batch, and return what happened.

        Pipelined: while one batch is on the wire (SMTP threads), the next is claimed and
        rendered and the previous one recorded, so the CPU work overlaps the network wait."""
        total = DeliveryStats()
        in_flight: tuple[_Batch, Future[list[Delivery]]] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-send") as wire:
            try:
                for claims_left in range(max_batches, -1, -1):
                    batch = None if self.stopping or claims_left == 0 else self._claim_and_render()
                    if in_flight is not None:
                        done, future = in_flight
                        deliveries = future.result()
                        in_flight = (batch, wire.submit(self.mailer.send, batch.emails)) if batch else None
                        total.add(self._finish(done, deliveries))
                    elif batch is not None:
                        in_flight = (batch, wire.submit(self.mailer.send, batch.emails))
                    if in_flight is None:
                        break
            finally:
                if in_flight is not None:  # an error mid-way: still record what went out
                    done, future = in_flight
                    total.add(self._finish(done, future.result()))
        self.totals.add(total)
        return total

    def _claim_and_render(self) -> _Batch | None:
        owner, rows = message_log.claim(
            self.db, self.clock.now(),
            hold_ms=int(self.settings.mail_claim_seconds * 1000), limit=self.settings.mail_batch_size,
        )
        if not rows:
            return None
        batch = _Batch(owner, rows)
        with self.db.session() as session:
            directory = Directory(session, rows)
        now = self.clock.now()
        for row in rows:
            assert row.id is not None
            try:
                batch.emails.append(compose(row, directory, self.templates, self.settings, now))
            except Unresolved as exc:
                batch.waiting[row.id] = str(exc)
            except OptedOut:
                batch.skipped.add(row.id)
            except Exception as exc:  # a template or data error: retrying will not help
                log.exception("cannot render message %s", row.message_id)
                batch.outcomes[row.id] = Delivery(row.message_id, False, f"render: {type(exc).__name__}: {exc}", True)
        return batch

    def _finish(self, batch: _Batch, deliveries: list[Delivery]) -> DeliveryStats:
        by_message = {r.message_id: r for r in batch.rows}
        for delivery in deliveries:
            row_id = by_message[delivery.message_id].id
            assert row_id is not None
            batch.outcomes[row_id] = delivery
        stats = DeliveryStats()
        addressed = {e.message_id: e for e in batch.emails}
        self._record(batch.owner, batch.rows, batch.outcomes, batch.waiting, batch.skipped, addressed, stats)
        return stats

    def _record(
        self,
        owner: str,
        rows: Sequence[MessageRow],
        outcomes: dict[int, Delivery],
        waiting: dict[int, str],
        skipped: set[int],
        addressed: dict[str, OutgoingEmail],
        stats: DeliveryStats,
    ) -> None:
        now = self.clock.now()
        now_ms = message_log.epoch_ms(now)
        wait_limit = now - timedelta(seconds=self.settings.unknown_recipient_wait_seconds)
        changes: list[dict[str, Any]] = []
        with self.db.session() as session:
            held = message_log.still_claimed(session, owner)
            for row in rows:
                assert row.id is not None
                if row.id not in held:
                    continue  # our claim expired and another sender took the row
                cause = Cause(correlation_id=row.cause_id, causation_id=row.cause_id)
                if row.id in skipped:
                    stats.skipped += 1
                    changes.append({"b_id": row.id, "status": "skipped", "claimed_by": None,
                                    "last_error": "the recipient switched the newsletter off"})
                    continue
                if row.id in waiting:
                    if as_utc(row.created_at) < wait_limit:
                        outcomes[row.id] = Delivery(row.message_id, False, waiting[row.id], True)
                    else:
                        stats.waiting += 1
                        changes.append({"b_id": row.id, "status": "pending", "claimed_by": None,
                                        "due_at_ms": now_ms + min(backoff_ms(self.settings, 1), 60_000),
                                        "last_error": waiting[row.id]})
                        continue
                outcome = outcomes[row.id]
                email = addressed.get(row.message_id)
                attempts = row.attempts + 1
                if outcome.ok and email is not None:
                    stats.sent += 1
                    changes.append({"b_id": row.id, "status": "sent", "claimed_by": None, "attempts": attempts,
                                    "sent_at": now, "subject": email.subject, "recipient_email": email.to_address,
                                    "last_error": None})
                    self.outbox.add(session, EmailSent(
                        message_id=row.message_id, program_id=row.program_id, recipient=email.to_address,
                        recipient_id=row.recipient_id, kind=row.kind, subject=email.subject,
                        cause_event_id=row.cause_id, attempts=attempts,
                    ), cause)
                elif not outcome.permanent and attempts < self.settings.mail_attempts:
                    stats.retried += 1
                    changes.append({"b_id": row.id, "status": "pending", "claimed_by": None, "attempts": attempts,
                                    "due_at_ms": now_ms + backoff_ms(self.settings, attempts),
                                    "last_error": outcome.error})
                else:
                    stats.failed += 1
                    changes.append({"b_id": row.id, "status": "failed", "claimed_by": None, "attempts": attempts,
                                    "failed_at": now, "last_error": outcome.error,
                                    "subject": email.subject if email else row.subject,
                                    "recipient_email": email.to_address if email else row.recipient_email})
                    self.outbox.add(session, EmailFailed(
                        message_id=row.message_id, program_id=row.program_id,
                        recipient=email.to_address if email else row.recipient_id,
                        recipient_id=row.recipient_id, kind=row.kind, error=outcome.error[:1000],
                        attempts=attempts, cause_event_id=row.cause_id,
                    ), cause)
            message_log.update_claimed(session, changes)
        if stats.failed or stats.retried:
            log.warning("mail delivery: %s", stats)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
