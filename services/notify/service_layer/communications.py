"""Staff-facing use cases: metamentor digests, newsletters, announcements, preferences, the
message log and resending failed messages. Each takes the session of a transaction; what it
sends is recorded as pending messages (the sender delivers them)."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from services.notify.adapters import message_log
from services.notify.adapters.tables import (
    AnnouncementRow,
    MessageRow,
    NewsletterRow,
    PartnershipChangeRow,
    PartnershipRow,
    PersonRow,
    PreferenceRow,
    ProgramActivityRow,
    ProgramRow,
)
from services.notify.adapters.templates import Templates
from services.notify.domain import digest as digest_rules
from services.notify.domain import newsletter as newsletter_rules
from services.notify.domain.messages import MessageIntent, MessageKind
from services.notify.service_layer.delivery import Directory, OptedOut, Unresolved, as_utc, compose
from services.notify.service_layer.handlers import policy_of
from services.notify.settings import NotifySettings
from shared.clock import local_date
from shared.contracts.notify import NewsletterPublished
from shared.errors import Conflict, NotFound
from shared.service import Transaction

Audience = Literal["mentors", "everyone"]


# -- metamentor digests ----------------------------------------------------------------------
def enqueue_due_digests(session: Session, now: datetime) -> int:
    """On each program's digest weekday (in its time zone) record one digest per metamentor.

    The cause is the program and the local date, so running this many times a day, or on two
    instances at once, records each digest once."""
    added = 0
    since_ms = message_log.epoch_ms(digest_rules.week_window(now)[0])
    for program in session.exec(select(ProgramRow)).all():
        policy = policy_of(session, program.program_id)
        today = local_date(now, policy.timezone)
        if not digest_rules.digest_due(today, policy.communication.digest_weekday):
            continue
        cause = f"digest:{program.program_id}:{today.isoformat()}"
        if session.exec(select(MessageRow.id).where(MessageRow.cause_id == cause).limit(1)).first() is not None:
            continue  # today's digests are recorded (the job runs every scheduler interval)
        partnerships = session.exec(
            select(PartnershipRow).where(
                PartnershipRow.program_id == program.program_id,
                col(PartnershipRow.metamentor_id).is_not(None),
            )
        ).all()
        week_start = digest_rules.week_window(now)[0]
        caseloads: dict[str, list[PartnershipRow]] = defaultdict(list)
        for p in partnerships:
            if p.ended_at is not None and as_utc(p.ended_at) < week_start:
                continue  # ended before this week: no longer in the caseload
            assert p.metamentor_id is not None
            caseloads[p.metamentor_id].append(p)
        if not caseloads:
            continue
        ids = [p.partnership_id for ps in caseloads.values() for p in ps]
        changes: dict[str, list[str]] = defaultdict(list)
        for change in session.exec(
            select(PartnershipChangeRow)
            .where(col(PartnershipChangeRow.partnership_id).in_(ids), PartnershipChangeRow.at_ms >= since_ms)
            .order_by(col(PartnershipChangeRow.at_ms))
        ).all():
            changes[change.partnership_id].append(change.description)
        names = {
            p.person_id: p.name
            for p in session.exec(select(PersonRow).where(PersonRow.program_id == program.program_id)).all()
        }
        intents = []
        for metamentor_id, caseload in sorted(caseloads.items()):
            entries = [
                digest_rules.CaseloadEntry(
                    partnership_id=p.partnership_id, mentor_name=names.get(p.mentor_id, p.mentor_id),
                    mentee_name=names.get(p.mentee_id, p.mentee_id), status=p.status,
                    changes=tuple(changes.get(p.partnership_id, ())), ended=p.ended_at is not None,
                )
                for p in caseload
            ]
            intents.append(MessageIntent(metamentor_id, MessageKind.METAMENTOR_DIGEST, program.program_id,
                                         digest_rules.digest_facts(entries, today)))
        added += message_log.enqueue(session, intents, cause, now)
    return added


def draft_due_newsletters(session: Session, now: datetime) -> int:
    """On each program's newsletter day (its time zone) open the draft for the month just ended,
    so staff find it ready to preview, add to and publish. Idempotent (unique program + month)."""
    added = 0
    for program in session.exec(select(ProgramRow)).all():
        policy = policy_of(session, program.program_id)
        today = local_date(now, policy.timezone)
        if today.day != policy.communication.newsletter_day:
            continue
        previous = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
        month = f"{previous.year:04d}-{previous.month:02d}"
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        result = session.execute(
            insert(NewsletterRow.__table__)  # type: ignore[attr-defined]
            .values(newsletter_id=str(uuid.uuid4()), program_id=program.program_id, month=month, status="draft",
                    items="[]", created_at=now, created_by="schedule", recipients=0)
            .on_conflict_do_nothing()
        )
        added += max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]
    return added


# -- audiences -------------------------------------------------------------------------------
def audience_of(session: Session, program_id: str, audience: Audience, *, newsletter: bool = False) -> list[PersonRow]:
    """Active participants of a program (mentors only for a mentors' update); for the newsletter,
    without those who opted out."""
    stmt = select(PersonRow).where(PersonRow.program_id == program_id, col(PersonRow.active).is_(True))
    if audience == "mentors":
        stmt = stmt.where(PersonRow.role == "mentor")
    people = list(session.exec(stmt.order_by(col(PersonRow.person_id))).all())
    if newsletter:
        opted_out = set(session.exec(select(PreferenceRow.person_id).where(col(PreferenceRow.newsletter).is_(False))).all())
        people = [p for p in people if p.person_id not in opted_out]
    return people


def _program(session: Session, program_id: str) -> ProgramRow:
    program = session.get(ProgramRow, program_id)
    if program is None:
        raise NotFound("program_id", f"program {program_id!r} is not known to the notify service")
    return program


# -- newsletters -----------------------------------------------------------------------------
def create_newsletter(session: Session, program_id: str, month: str, actor: str, now: datetime) -> NewsletterRow:
    _program(session, program_id)
    newsletter_rules.parse_month(month)
    existing = session.exec(
        select(NewsletterRow).where(NewsletterRow.program_id == program_id, NewsletterRow.month == month)
    ).first()
    if existing is not None:
        raise Conflict("month", f"the {month} newsletter of {program_id} exists: {existing.newsletter_id}",
                       "newsletter_exists")
    row = NewsletterRow(newsletter_id=str(uuid.uuid4()), program_id=program_id, month=month,
                        created_at=now, created_by=actor)
    session.add(row)
    return row


def list_newsletters(session: Session, program_id: str) -> list[NewsletterRow]:
    return list(session.exec(
        select(NewsletterRow).where(NewsletterRow.program_id == program_id).order_by(col(NewsletterRow.month).desc())
    ).all())


def get_newsletter(session: Session, newsletter_id: str) -> NewsletterRow:
    row = session.get(NewsletterRow, newsletter_id)
    if row is None:
        raise NotFound("newsletter_id", f"no newsletter {newsletter_id!r}")
    return row


def add_newsletter_item(
    session: Session, newsletter_id: str, title: str, body: str, on: date | None
) -> NewsletterRow:
    row = get_newsletter(session, newsletter_id)
    if row.status != "draft":
        raise Conflict("newsletter_id", "a published newsletter cannot change", "already_published")
    items = json.loads(row.items)
    items.append({"title": title, "body": body, "date": on.isoformat() if on else None})
    row.items = json.dumps(items)
    session.add(row)
    return row


def newsletter_content(session: Session, row: NewsletterRow) -> dict[str, Any]:
    """Highlights from the month's events, important dates, and staff items, as of now."""
    policy = policy_of(session, row.program_id)
    facts = [
        newsletter_rules.ActivityFact(a.kind, a.month, a.minutes, a.detail)
        for a in session.exec(select(ProgramActivityRow).where(ProgramActivityRow.program_id == row.program_id)).all()
    ]
    names = {
        p.person_id: p.name
        for p in session.exec(select(PersonRow).where(PersonRow.program_id == row.program_id)).all()
    }
    items = json.loads(row.items)
    staff_dates = [(date.fromisoformat(i["date"]), i["title"]) for i in items if i.get("date")]
    return {
        "month": row.month,
        "month_name": newsletter_rules.month_name(row.month),
        "highlights": newsletter_rules.highlights(facts, row.month, names),
        "dates": newsletter_rules.important_dates(policy, row.month, staff_dates),
        "items": [{"title": i["title"], "body": i["body"]} for i in items],
    }


def _preview(
    session: Session, kind: MessageKind, program_id: str, cause_id: str, reader: PersonRow | None,
    settings: NotifySettings, templates: Templates, now: datetime,
    newsletter: NewsletterRow | None = None, announcement: AnnouncementRow | None = None,
) -> dict[str, str]:
    reader = reader or PersonRow(program_id=program_id, person_id="preview", role="mentor",
                                 name="Preview Reader", email="preview@example.invalid")
    row = MessageRow(id=0, message_id="preview", program_id=program_id, recipient_id=reader.person_id,
                     kind=str(kind), cause_id=cause_id, facts="{}", due_at_ms=0, created_at=now)
    directory = Directory(session, [row])
    directory.people[(program_id, reader.person_id)] = reader
    if newsletter is not None:
        directory.newsletters[cause_id] = newsletter
    if announcement is not None:
        directory.announcements[cause_id] = announcement
    email = compose(row, directory, templates, settings)
    return {"to": email.to_address, "subject": email.subject, "text": email.text, "html": email.html,
            "headers": json.dumps(email.headers)}


def preview_newsletter(
    session: Session, newsletter_id: str, settings: NotifySettings, templates: Templates, now: datetime
) -> dict[str, Any]:
    row = get_newsletter(session, newsletter_id)
    readers = audience_of(session, row.program_id, "everyone", newsletter=True)
    shown = row.model_copy()
    if shown.content is None:
        shown.content = json.dumps(newsletter_content(session, row))
    preview = _preview(session, MessageKind.NEWSLETTER, row.program_id, newsletter_id,
                       readers[0] if readers else None, settings, templates, now, newsletter=shown)
    return {**preview, "recipients": len(readers) if row.status == "draft" else row.recipients,
            "status": row.status}


def publish_newsletter(tx: Transaction, newsletter_id: str, actor: str, now: datetime) -> NewsletterRow:
    session = tx.session
    row = get_newsletter(session, newsletter_id)
    content = newsletter_content(session, row)
    claimed = session.execute(
        update(NewsletterRow)
        .where(col(NewsletterRow.newsletter_id) == newsletter_id, col(NewsletterRow.status) == "draft")
        .values(status="published", content=json.dumps(content), published_at=now, published_by=actor)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("newsletter_id", "this newsletter is already published", "already_published")
    readers = audience_of(session, row.program_id, "everyone", newsletter=True)
    message_log.enqueue(
        session, (MessageIntent(p.person_id, MessageKind.NEWSLETTER, row.program_id, {}) for p in readers),
        newsletter_id, now,
    )
    session.execute(
        update(NewsletterRow).where(col(NewsletterRow.newsletter_id) == newsletter_id).values(recipients=len(readers))
    )
    tx.emit(NewsletterPublished(newsletter_id=newsletter_id, program_id=row.program_id, month=row.month,
                                recipients=len(readers)))
    session.expire_all()
    return get_newsletter(session, newsletter_id)


# -- announcements ---------------------------------------------------------------------------
def create_announcement(
    session: Session, program_id: str, audience: Audience, title: str, body: str, actor: str, now: datetime
) -> AnnouncementRow:
    _program(session, program_id)
    row = AnnouncementRow(announcement_id=str(uuid.uuid4()), program_id=program_id, audience=audience,
                          title=title, body=body, created_at=now, created_by=actor)
    session.add(row)
    return row


def get_announcement(session: Session, announcement_id: str) -> AnnouncementRow:
    row = session.get(AnnouncementRow, announcement_id)
    if row is None:
        raise NotFound("announcement_id", f"no announcement {announcement_id!r}")
    return row


def preview_announcement(
    session: Session, announcement_id: str, settings: NotifySettings, templates: Templates, now: datetime
) -> dict[str, Any]:
    row = get_announcement(session, announcement_id)
    readers = audience_of(session, row.program_id, row.audience)  # type: ignore[arg-type]
    preview = _preview(session, MessageKind.ANNOUNCEMENT, row.program_id, announcement_id,
                       readers[0] if readers else None, settings, templates, now, announcement=row)
    return {**preview, "recipients": len(readers) if row.status == "draft" else row.recipients,
            "status": row.status}


def send_announcement(session: Session, announcement_id: str, actor: str, now: datetime) -> AnnouncementRow:
    row = get_announcement(session, announcement_id)
    claimed = session.execute(
        update(AnnouncementRow)
        .where(col(AnnouncementRow.announcement_id) == announcement_id, col(AnnouncementRow.status) == "draft")
        .values(status="sent", sent_at=now, sent_by=actor)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("announcement_id", "this announcement was already sent", "already_sent")
    readers = audience_of(session, row.program_id, row.audience)  # type: ignore[arg-type]
    message_log.enqueue(
        session, (MessageIntent(p.person_id, MessageKind.ANNOUNCEMENT, row.program_id, {}) for p in readers),
        announcement_id, now,
    )
    session.execute(
        update(AnnouncementRow).where(col(AnnouncementRow.announcement_id) == announcement_id)
        .values(recipients=len(readers))
    )
    session.expire_all()
    return get_announcement(session, announcement_id)


# -- preferences -----------------------------------------------------------------------------
def get_preferences(session: Session, person_id: str) -> PreferenceRow | None:
    return session.get(PreferenceRow, person_id)


def set_preferences(session: Session, person_id: str, newsletter: bool, actor: str, now: datetime) -> PreferenceRow:
    row = session.get(PreferenceRow, person_id)
    if row is None:
        row = PreferenceRow(person_id=person_id, newsletter=newsletter, updated_at=now, updated_by=actor)
    else:
        row.newsletter, row.updated_at, row.updated_by = newsletter, now, actor
    session.add(row)
    return row


# -- the message log -------------------------------------------------------------------------
def list_messages(
    session: Session, *, person_id: str | None, status: str | None, kind: str | None, program_id: str | None,
    limit: int, offset: int,
) -> tuple[int, list[MessageRow]]:
    stmt = select(MessageRow)
    count = select(func.count()).select_from(MessageRow)
    for column, value in ((MessageRow.recipient_id, person_id), (MessageRow.status, status),
                          (MessageRow.kind, kind), (MessageRow.program_id, program_id)):
        if value is not None:
            stmt = stmt.where(column == value)
            count = count.where(column == value)
    total = session.exec(count).one()
    rows = session.exec(stmt.order_by(col(MessageRow.id).desc()).offset(offset).limit(limit)).all()
    return int(total), list(rows)


def get_message(session: Session, message_id: str) -> MessageRow:
    row = session.exec(select(MessageRow).where(MessageRow.message_id == message_id)).first()
    if row is None:
        raise NotFound("message_id", f"no message {message_id!r}")
    return row


def resend(session: Session, message_id: str, actor: str, now: datetime) -> MessageRow:
    """Put a failed message back in the queue with a fresh set of attempts (same message id)."""
    row = get_message(session, message_id)
    result = session.execute(
        update(MessageRow)
        .where(col(MessageRow.message_id) == message_id, col(MessageRow.status) == "failed")
        .values(status="pending", attempts=0, due_at_ms=message_log.epoch_ms(now), claimed_by=None,
                resends=MessageRow.resends + 1, resent_by=actor)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("message_id", f"only a failed message can be sent again; this one is {row.status}",
                       "not_failed")
    session.expire_all()
    return get_message(session, message_id)



def render_message(
    session: Session, message_id: str, settings: NotifySettings, templates: Templates
) -> dict[str, str]:
    """A logged message rendered from today's directory (the newsletter from its frozen content)."""
    row = get_message(session, message_id)
    try:
        email = compose(row, Directory(session, [row]), templates, settings)
    except (Unresolved, OptedOut) as exc:
        raise Conflict("message_id", f"this message cannot be shown now: {exc}", "not_renderable") from exc
    return {"to": email.to_address, "subject": email.subject, "text": email.text, "html": email.html,
            "headers": json.dumps(email.headers)}
