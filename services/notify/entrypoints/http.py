"""The notify HTTP API (internal; the gateway forwards staff and participant requests here)."""

from __future__ import annotations

import html
import json
from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import HTMLResponse
from pydantic import AliasChoices, BaseModel, Field

from services.notify.adapters.tables import AnnouncementRow, MessageRow, NewsletterRow
from services.notify.adapters.templates import Templates
from services.notify.domain.preferences import token_is_valid
from services.notify.service_layer import communications as comms
from services.notify.settings import NotifySettings
from shared.contracts.envelope import Cause
from shared.errors import Forbidden
from shared.service import Service, request_cause

# Past this an offset overflows SQLite's 64-bit INTEGER (a 500 instead of an empty page).
MAX_OFFSET = 2**31 - 1

Status = Literal["pending", "sending", "sent", "failed", "skipped"]


class MessageOut(BaseModel):
    message_id: str
    program_id: str | None
    recipient_id: str
    recipient_email: str
    kind: str
    cause_id: str
    status: str
    attempts: int
    subject: str
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    resends: int
    resent_by: str | None

    @classmethod
    def of(cls, row: MessageRow) -> MessageOut:
        return cls.model_validate(row.model_dump())


class MessagePage(BaseModel):
    total: int
    items: list[MessageOut]


class PreferencesIn(BaseModel):
    newsletter: bool


class PreferencesOut(BaseModel):
    person_id: str
    newsletter: bool
    transactional: bool = True  # always: match, pay and safety emails cannot be switched off


class NewsletterIn(BaseModel):
    program_id: str = Field(min_length=1)
    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")


class NewsletterItemIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=5000)
    # Sent as "date" (or "on"): a date to list under the newsletter's important dates.
    on: date | None = Field(default=None, validation_alias=AliasChoices("date", "on"))


class NewsletterOut(BaseModel):
    newsletter_id: str
    program_id: str
    month: str
    status: str
    items: list[dict[str, Any]]
    content: dict[str, Any] | None
    created_by: str
    published_at: datetime | None
    published_by: str | None
    recipients: int

    @classmethod
    def of(cls, row: NewsletterRow) -> NewsletterOut:
        data = row.model_dump()
        data["items"] = json.loads(row.items)
        data["content"] = json.loads(row.content) if row.content else None
        return cls.model_validate(data)


class AnnouncementIn(BaseModel):
    program_id: str = Field(min_length=1)
    audience: Literal["mentors", "everyone"]
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20000)


class AnnouncementOut(BaseModel):
    announcement_id: str
    program_id: str
    audience: str
    title: str
    body: str
    status: str
    created_by: str
    sent_at: datetime | None
    sent_by: str | None
    recipients: int

    @classmethod
    def of(cls, row: AnnouncementRow) -> AnnouncementOut:
        return cls.model_validate(row.model_dump())


class Preview(BaseModel):
    status: str
    recipients: int
    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]


async def actor(x_actor_id: str | None = Header(default=None)) -> str:
    return x_actor_id or "unknown"


def build_router(service: Service, settings: NotifySettings, templates: Templates) -> APIRouter:
    router = APIRouter(tags=["notify"])
    db, clock = service.db, service.clock

    def preview_of(data: dict[str, Any]) -> Preview:
        return Preview.model_validate({**data, "headers": json.loads(data["headers"])})

    # -- messages --------------------------------------------------------------------------
    @router.get("/messages", response_model=MessagePage)
    def list_messages(
        person_id: str | None = None, status: Status | None = None, kind: str | None = None,
        program_id: str | None = None, limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
    ) -> MessagePage:
        with db.session() as s:
            total, rows = comms.list_messages(s, person_id=person_id, status=status, kind=kind,
                                              program_id=program_id, limit=limit, offset=offset)
            return MessagePage(total=total, items=[MessageOut.of(r) for r in rows])

    @router.get("/messages/failed", response_model=MessagePage)
    def failed_messages(
        program_id: str | None = None, limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
    ) -> MessagePage:
        return list_messages(None, "failed", None, program_id, limit, offset)

    @router.get("/messages/{message_id}", response_model=MessageOut)
    def get_message(message_id: str) -> MessageOut:
        with db.session() as s:
            return MessageOut.of(comms.get_message(s, message_id))

    @router.get("/messages/{message_id}/content", response_model=Preview)
    def message_content(message_id: str) -> Preview:
        with db.session() as s:
            row = comms.get_message(s, message_id)
            data = comms.render_message(s, message_id, settings, templates)
            return preview_of({**data, "status": row.status, "recipients": 1})

    @router.post("/messages/{message_id}/resend", response_model=MessageOut)
    def resend(message_id: str, who: str = Depends(actor)) -> MessageOut:
        with db.session() as s:
            return MessageOut.of(comms.resend(s, message_id, who, clock.now()))

    # -- preferences -----------------------------------------------------------------------
    @router.get("/people/{person_id}/preferences", response_model=PreferencesOut)
    def get_preferences(person_id: str) -> PreferencesOut:
        with db.session() as s:
            row = comms.get_preferences(s, person_id)
            return PreferencesOut(person_id=person_id, newsletter=row.newsletter if row else True)

    @router.put("/people/{person_id}/preferences", response_model=PreferencesOut)
    def put_preferences(person_id: str, body: PreferencesIn, who: str = Depends(actor)) -> PreferencesOut:
        with db.session() as s:
            row = comms.set_preferences(s, person_id, body.newsletter, who, clock.now())
            return PreferencesOut(person_id=person_id, newsletter=row.newsletter)

    def check_token(person_id: str, token: str) -> None:
        # A real token is hex; anything else (non-ASCII above all, which compare_digest refuses
        # with a TypeError) is simply not valid.
        secret = settings.unsubscribe_secret.get_secret_value()
        if not token.isascii() or not token_is_valid(secret, person_id, token):
            raise Forbidden("token", "this unsubscribe link is not valid", "bad_token")

    @router.get("/unsubscribe/{person_id}", response_class=HTMLResponse)
    def unsubscribe_page(person_id: str, token: str) -> HTMLResponse:
        """The link in the newsletter's text: a page with one button. A GET changes nothing, so
        mail scanners that open links cannot unsubscribe anyone."""
        check_token(person_id, token)
        page = (
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head>"
            "<body><p>Stop receiving the monthly newsletter? Emails about your matches, meetings and "
            "payments will still come.</p>"
            f"<form method=\"post\" action=\"?token={html.escape(token)}\">"
            "<button type=\"submit\">Unsubscribe from the newsletter</button></form></body></html>"
        )
        return HTMLResponse(page)

    @router.post("/unsubscribe/{person_id}", response_model=PreferencesOut)
    def unsubscribe(person_id: str, token: str) -> PreferencesOut:
        """One-click unsubscribe (RFC 8058, List-Unsubscribe-Post): signed per person, no login."""
        check_token(person_id, token)
        with db.session() as s:
            row = comms.set_preferences(s, person_id, False, f"unsubscribe-link:{person_id}", clock.now())
            return PreferencesOut(person_id=person_id, newsletter=row.newsletter)

    # -- newsletters -----------------------------------------------------------------------
    @router.post("/newsletters", status_code=201, response_model=NewsletterOut)
    def create_newsletter(body: NewsletterIn, who: str = Depends(actor)) -> NewsletterOut:
        with db.session() as s:
            return NewsletterOut.of(comms.create_newsletter(s, body.program_id, body.month, who, clock.now()))

    @router.get("/newsletters", response_model=list[NewsletterOut])
    def list_newsletters(program_id: str) -> list[NewsletterOut]:
        with db.session() as s:
            return [NewsletterOut.of(r) for r in comms.list_newsletters(s, program_id)]

    @router.get("/newsletters/{newsletter_id}", response_model=NewsletterOut)
    def get_newsletter(newsletter_id: str) -> NewsletterOut:
        with db.session() as s:
            return NewsletterOut.of(comms.get_newsletter(s, newsletter_id))

    @router.post("/newsletters/{newsletter_id}/items", status_code=201, response_model=NewsletterOut)
    def add_item(newsletter_id: str, body: NewsletterItemIn) -> NewsletterOut:
        with db.session() as s:
            return NewsletterOut.of(comms.add_newsletter_item(s, newsletter_id, body.title, body.body, body.on))

    @router.get("/newsletters/{newsletter_id}/preview", response_model=Preview)
    def preview_newsletter(newsletter_id: str) -> Preview:
        with db.session() as s:
            return preview_of(comms.preview_newsletter(s, newsletter_id, settings, templates, clock.now()))

    @router.post("/newsletters/{newsletter_id}/publish", response_model=NewsletterOut)
    def publish(newsletter_id: str, who: str = Depends(actor), cause: Cause = Depends(request_cause)) -> NewsletterOut:
        with service.transaction(cause) as tx:
            row = comms.publish_newsletter(tx, newsletter_id, who, clock.now())
        return NewsletterOut.of(row)

    # -- announcements ---------------------------------------------------------------------
    @router.post("/announcements", status_code=201, response_model=AnnouncementOut)
    def create_announcement(body: AnnouncementIn, who: str = Depends(actor)) -> AnnouncementOut:
        with db.session() as s:
            return AnnouncementOut.of(comms.create_announcement(
                s, body.program_id, body.audience, body.title, body.body, who, clock.now()))

    @router.get("/announcements/{announcement_id}", response_model=AnnouncementOut)
    def get_announcement(announcement_id: str) -> AnnouncementOut:
        with db.session() as s:
            return AnnouncementOut.of(comms.get_announcement(s, announcement_id))

    @router.get("/announcements/{announcement_id}/preview", response_model=Preview)
    def preview_announcement(announcement_id: str) -> Preview:
        with db.session() as s:
            return preview_of(comms.preview_announcement(s, announcement_id, settings, templates, clock.now()))

    @router.post("/announcements/{announcement_id}/send", response_model=AnnouncementOut)
    def send_announcement(announcement_id: str, who: str = Depends(actor)) -> AnnouncementOut:
        with db.session() as s:
            return AnnouncementOut.of(comms.send_announcement(s, announcement_id, who, clock.now()))

    return router
