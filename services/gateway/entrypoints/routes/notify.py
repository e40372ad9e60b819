"""Messages, preferences, newsletters and announcements (notify service).

People see the emails sent to them and set their own newsletter preference; staff see their
programs' messages, resend failed ones, and write, preview and publish newsletters and
announcements. The unsubscribe link in every newsletter works without a login (it is signed)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.gateway.adapters.upstream import checked
from services.gateway.domain.access import PARTICIPANT_ROLES, STAFF_ROLES, can_view_person
from services.gateway.entrypoints import lookups
from services.gateway.entrypoints.deps import (
    API_PREFIX,
    Caller,
    caller,
    gateway_of,
    mutation,
    passthrough,
    seg,
)
from services.gateway.entrypoints.routes.common import id_path, json_body, offset_query, text_field
from services.gateway.errors import Unprocessable
from shared.errors import Forbidden, NotFound

router = APIRouter(prefix=API_PREFIX, tags=["notify"])
public = APIRouter(prefix=API_PREFIX, tags=["notify"])
N = "notify"
MessageId = id_path("msg-3e4f5a", "A message id")
NewsletterId = id_path("nl-prog-mentormt-2026-10", "A newsletter id")
AnnouncementId = id_path("ann-6b7c8d", "An announcement id")
PersonId = id_path("mentee-12", "A mentor, mentee or metamentor id")
Status = Literal["pending", "sending", "sent", "failed"]


def _message_program_filter(c: Caller, program_id: str | None) -> str | None:
    """Staff read messages per program: a coordinator names one of theirs (or has only one)."""
    p = c.principal
    if program_id is not None:
        if p.role in STAFF_ROLES:
            c.require_staff(program_id)
        else:
            c.require_in_program(program_id)
        return program_id
    if p.role in STAFF_ROLES and not p.is_admin:
        if len(p.program_ids) != 1:
            raise Unprocessable("program_id", "required: name one of your programs", "required")
        return next(iter(p.program_ids))
    return None


def _may_see_message(c: Caller, message: dict[str, Any]) -> bool:
    p = c.principal
    program_id = message.get("program_id")
    if program_id is not None and p.is_staff_of(str(program_id)):
        return True
    if program_id is None and p.is_admin:
        return True
    return p.role in PARTICIPANT_ROLES and p.person_id is not None and message.get("recipient_id") == p.person_id


@router.get("/messages", summary="Emails by person, status, kind (staff: their program's; others: their own)")
async def list_messages(
    person_id: str | None = Query(None, max_length=200), status: Status | None = None,
    kind: str | None = Query(None, max_length=100), program_id: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=1000), offset: int = offset_query(), c: Caller = Depends(caller),
) -> dict[str, Any]:
    program_id = _message_program_filter(c, program_id)
    if c.principal.role in PARTICIPANT_ROLES:
        person_id = c.principal.person_id
    page: dict[str, Any] = await c.read(N, "/messages", {
        "person_id": person_id, "status": status, "kind": kind, "program_id": program_id,
        "limit": limit, "offset": offset})
    page["items"] = [m for m in page.get("items", []) if _may_see_message(c, m)]
    return page


@router.get("/messages/failed", summary="Emails that failed after every retry (staff)")
async def failed_messages(program_id: str | None = Query(None, max_length=200),
                          limit: int = Query(100, ge=1, le=1000), offset: int = offset_query(),
                          c: Caller = Depends(caller)) -> dict[str, Any]:
    if c.principal.role not in STAFF_ROLES:
        raise Forbidden("authorization", "only staff see failed messages")
    program_id = _message_program_filter(c, program_id)
    page: dict[str, Any] = await c.read(N, "/messages/failed",
                                        {"program_id": program_id, "limit": limit, "offset": offset})
    page["items"] = [m for m in page.get("items", []) if _may_see_message(c, m)]
    return page


async def _message(c: Caller, message_id: str) -> dict[str, Any]:
    message: dict[str, Any] = await c.read(N, f"/messages/{seg(message_id)}")
    if not _may_see_message(c, message):
        raise NotFound("message_id", f"no message {message_id}")
    return message


@router.get("/messages/{message_id}", summary="One email's delivery record (staff; its recipient)")
async def get_message(message_id: str = MessageId, c: Caller = Depends(caller)) -> dict[str, Any]:
    return await _message(c, message_id)


@router.get("/messages/{message_id}/content", summary="The email as it was sent: subject, text and HTML "
            "(staff; its recipient)")
async def message_content(message_id: str = MessageId, c: Caller = Depends(caller)) -> Response:
    await _message(c, message_id)
    return await c.forward(N)


@router.post("/messages/{message_id}/resend", dependencies=mutation, summary="Send a failed email again (staff)")
async def resend(message_id: str = MessageId, c: Caller = Depends(caller)) -> Response:
    message = await _message(c, message_id)
    program_id = message.get("program_id")
    if not (c.principal.is_admin or (program_id is not None and c.principal.is_staff_of(str(program_id)))):
        raise Forbidden("message_id", "only staff resend messages")
    return await c.forward(N)


# -- preferences ----------------------------------------------------------------------------------
async def _person_in_reach(c: Caller, person_id: str) -> None:
    if c.principal.role in PARTICIPANT_ROLES:
        if c.principal.person_id != person_id:
            raise Forbidden("person_id", "you may only see and change your own preferences")
        return
    program_id = await lookups.person_program(c, person_id)
    if not can_view_person(c.principal, program_id, person_id):
        raise NotFound("person_id", f"no person {person_id}")


@router.get("/people/{person_id}/preferences", summary="Newsletter preference (the person, or staff)")
async def get_preferences(person_id: str = PersonId, c: Caller = Depends(caller)) -> Response:
    await _person_in_reach(c, person_id)
    return await c.forward(N)


@router.put("/people/{person_id}/preferences", dependencies=mutation,
            summary="Opt in or out of the newsletter; transactional email is always sent (the person, or staff)")
async def put_preferences(person_id: str = PersonId, body: dict[str, Any] = json_body({"newsletter": False}),
                          c: Caller = Depends(caller)) -> Response:
    await _person_in_reach(c, person_id)
    return await c.forward(N, json=body)


async def _unsubscribe(request: Request, person_id: str, token: str) -> Response:
    response = await gateway_of(request).upstreams.send(
        N, request.method, f"/unsubscribe/{seg(person_id)}", principal=None,
        request_id=request.state.request_id, params={"token": token})
    return passthrough(checked(N, response))


@public.get("/unsubscribe/{person_id}", summary="The newsletter's unsubscribe link (signed; no login)")
async def unsubscribe_link(request: Request, person_id: str = PersonId,
                           token: str = Query(..., max_length=200)) -> Response:
    return await _unsubscribe(request, person_id, token)


@public.post("/unsubscribe/{person_id}", summary="One-click unsubscribe, RFC 8058 (signed; no login)")
async def unsubscribe_one_click(request: Request, person_id: str = PersonId,
                                token: str = Query(..., max_length=200)) -> Response:
    return await _unsubscribe(request, person_id, token)


# -- newsletters ----------------------------------------------------------------------------------
@router.post("/newsletters", status_code=201, dependencies=mutation,
             summary="Start a month's newsletter for a program (staff)")
async def create_newsletter(body: dict[str, Any] = json_body({"program_id": "prog-mentormt", "month": "2026-10"}),
                            c: Caller = Depends(caller)) -> Response:
    c.require_staff(text_field(body, "program_id"))
    return await c.forward(N, json=body)


@router.get("/newsletters", summary="A program's newsletters, drafts and issues (staff)")
async def list_newsletters(program_id: str = Query(..., max_length=200, examples=["prog-mentormt"]),
                           c: Caller = Depends(caller)) -> Response:
    c.require_staff(program_id)
    return await c.forward(N, params={"program_id": program_id})


async def _newsletter(c: Caller, newsletter_id: str) -> dict[str, Any]:
    newsletter = await lookups.owned(c, N, f"/newsletters/{seg(newsletter_id)}", "newsletter_id", newsletter_id)
    c.require_staff(str(newsletter["program_id"]))
    return newsletter


@router.get("/newsletters/{newsletter_id}", summary="A newsletter draft or issue (staff)")
async def get_newsletter(newsletter_id: str = NewsletterId, c: Caller = Depends(caller)) -> dict[str, Any]:
    return await _newsletter(c, newsletter_id)


@router.post("/newsletters/{newsletter_id}/items", status_code=201, dependencies=mutation,
             summary="Add an item (news, an important date) to a newsletter (staff)")
async def add_newsletter_item(
    newsletter_id: str = NewsletterId,
    body: dict[str, Any] = json_body({"title": "Spring meet-up", "body": "Join us in Helena.", "date": "2027-03-12"}),
    c: Caller = Depends(caller),
) -> Response:
    await _newsletter(c, newsletter_id)
    return await c.forward(N, json=body)


@router.get("/newsletters/{newsletter_id}/preview", summary="The newsletter as a recipient would get it (staff)")
async def preview_newsletter(newsletter_id: str = NewsletterId, c: Caller = Depends(caller)) -> Response:
    await _newsletter(c, newsletter_id)
    return await c.forward(N)


@router.post("/newsletters/{newsletter_id}/publish", dependencies=mutation,
             summary="Send the newsletter to every active participant who has not opted out (staff)")
async def publish_newsletter(newsletter_id: str = NewsletterId, c: Caller = Depends(caller)) -> Response:
    await _newsletter(c, newsletter_id)
    return await c.forward(N)


# -- announcements --------------------------------------------------------------------------------
@router.post("/announcements", status_code=201, dependencies=mutation,
             summary="Write a program-wide update to all mentors or everyone (staff)")
async def create_announcement(
    body: dict[str, Any] = json_body({"program_id": "prog-mentormt", "audience": "mentors",
                                      "title": "Stipend dates", "body": "Statements close on the 3rd."}),
    c: Caller = Depends(caller),
) -> Response:
    c.require_staff(text_field(body, "program_id"))
    return await c.forward(N, json=body)


async def _announcement_staff(c: Caller, announcement_id: str) -> dict[str, Any] | None:
    response = await lookups.read_by_id(c, N, "/announcements/{id}", f"/announcements/{seg(announcement_id)}")
    if lookups.route_missing(response):
        # A notify without a read by id for announcements: the program cannot be checked, so admins only.
        c.require_admin()
        return None
    if response.status_code == 404:
        raise NotFound("announcement_id", f"no announcement {announcement_id}")
    announcement: dict[str, Any] = checked(N, response).json()
    program_id = str(announcement.get("program_id"))
    if not c.principal.in_program(program_id):
        raise NotFound("announcement_id", f"no announcement {announcement_id}")
    c.require_staff(program_id)
    return announcement


@router.get("/announcements/{announcement_id}", summary="An announcement, draft or sent (staff)")
async def get_announcement(announcement_id: str = AnnouncementId, c: Caller = Depends(caller)) -> dict[str, Any]:
    announcement = await _announcement_staff(c, announcement_id)
    if announcement is None:
        return dict(await c.read(N, f"/announcements/{seg(announcement_id)}"))
    return announcement


@router.get("/announcements/{announcement_id}/preview", summary="An announcement as recipients would get it (staff)")
async def preview_announcement(announcement_id: str = AnnouncementId, c: Caller = Depends(caller)) -> Response:
    await _announcement_staff(c, announcement_id)
    return await c.forward(N)


@router.post("/announcements/{announcement_id}/send", dependencies=mutation, summary="Send an announcement (staff)")
async def send_announcement(announcement_id: str = AnnouncementId, c: Caller = Depends(caller)) -> Response:
    await _announcement_staff(c, announcement_id)
    return await c.forward(N)
